//! Module arguments from the PAM line. An unknown argument is an error: a typo such as
//! `nulok` must not silently change who gets in.

use std::path::PathBuf;
use tessera_engine::engine::Options;

#[derive(Debug, Clone, Default)]
pub struct ModuleArgs {
    pub config: Option<PathBuf>,
    pub options: Options,
}

pub fn parse<'a>(args: impl IntoIterator<Item = &'a [u8]>) -> Result<ModuleArgs, String> {
    let mut out = ModuleArgs::default();
    for raw in args {
        let arg = std::str::from_utf8(raw)
            .map_err(|_| format!("module argument is not UTF-8: {}", raw.escape_ascii()))?;
        match arg.split_once('=') {
            None => match arg {
                "debug" => out.options.debug = true,
                "use_first_pass" => out.options.use_first_pass = true,
                "try_first_pass" => out.options.try_first_pass = true,
                "nullok" => out.options.nullok = true,
                _ => {
                    return Err(format!(
                        "unknown module argument \"{}\"",
                        arg.escape_debug()
                    ))
                }
            },
            Some(("config", path)) if !path.is_empty() => out.config = Some(PathBuf::from(path)),
            Some(("prompt", text)) => out.options.prompt = Some(text.to_string()),
            Some(_) => {
                return Err(format!(
                    "unknown module argument \"{}\"",
                    arg.escape_debug()
                ))
            }
        }
    }
    if out.options.use_first_pass && out.options.try_first_pass {
        return Err("use_first_pass and try_first_pass exclude each other".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> Result<ModuleArgs, String> {
        parse(a.iter().map(|s| s.as_bytes()))
    }

    #[test]
    fn known_arguments() {
        let a = p(&[
            "config=/x.toml",
            "debug",
            "nullok",
            "try_first_pass",
            "prompt=Your PIN: ",
        ])
        .unwrap();
        assert_eq!(a.config.unwrap(), PathBuf::from("/x.toml"));
        assert!(a.options.debug && a.options.nullok && a.options.try_first_pass);
        assert_eq!(a.options.prompt.as_deref(), Some("Your PIN: "));
    }

    #[test]
    fn unknown_arguments_are_refused() {
        assert!(p(&["nulok"]).unwrap_err().contains("nulok"));
        assert!(p(&["config="]).is_err());
        assert!(p(&["colour=red"]).is_err());
        assert!(p(&["use_first_pass", "try_first_pass"]).is_err());
    }
}
