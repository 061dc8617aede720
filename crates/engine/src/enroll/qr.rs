//! The otpauth URI as a QR code drawn with Unicode half blocks, two modules per character
//! cell, with a quiet zone of two modules, in the code's true colours (dark modules dark: not
//! every scanner reads an inverted code). On a dark terminal (the default) the light modules
//! and the quiet zone are drawn with the terminal's light ink and the dark ones are its
//! background; for a light terminal the dark modules are inked. `tessera token add --qr` and
//! the enrollment dialogue (`tessera enroll`, a registration code at login) draw it.

use crate::error::{Error, Result};
use qrcode::{Color, EcLevel, QrCode};

/// The terminal's background the code is drawn for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Background {
    #[default]
    Dark,
    Light,
}

/// Modules of light colour around the code. ISO/IEC 18004 asks for four; two keep a default
/// TOTP code (19 or 21 rows: its key makes it version 4 or 5) with the serial and a URI of two
/// lines inside an 80x24 terminal, and scanners read it (`a_scanner_reads_the_code_on_either_
/// terminal` decodes it, framed by a dark terminal, with a real decoder).
const QUIET: usize = 2;

pub fn render(text: &str, bg: Background) -> Result<String> {
    // Level L: a terminal shows the code sharp and whole, so the least redundancy is enough,
    // and the code stays small: a default TOTP URI fits in 21 rows.
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::L)
        .map_err(|e| Error::invalid(format!("QR code: {e}")))?;
    let width = code.width();
    let colors = code.to_colors();
    let size = width + 2 * QUIET;
    // Dark modules, quiet zone included (out of the code is light).
    let dark = |x: usize, y: usize| {
        x >= QUIET
            && y >= QUIET
            && x < QUIET + width
            && y < QUIET + width
            && colors[(y - QUIET) * width + (x - QUIET)] == Color::Dark
    };
    // What is drawn with ink (the glyph's foreground): dark modules on a light terminal, light
    // ones on a dark terminal.
    let inked = |x: usize, y: usize| y < size && (dark(x, y) == (bg == Background::Light));
    let mut out = String::with_capacity(size * (size / 2 + 1) * 3);
    for y in (0..size).step_by(2) {
        for x in 0..size {
            out.push(match (inked(x, y), inked(x, y + 1)) {
                (true, true) => '\u{2588}',
                (true, false) => '\u{2580}',
                (false, true) => '\u{2584}',
                (false, false) => ' ',
            });
        }
        out.push('\n');
    }
    out.pop();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "otpauth://totp/tessera:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
                       &issuer=tessera";

    /// The modules back from the half blocks: (dark?) per module, quiet zone included.
    fn modules(art: &str, bg: Background) -> Vec<Vec<bool>> {
        let mut rows = Vec::new();
        for line in art.lines() {
            let (mut top, mut bottom) = (Vec::new(), Vec::new());
            for c in line.chars() {
                let (t, b) = match c {
                    '\u{2588}' => (true, true),
                    '\u{2580}' => (true, false),
                    '\u{2584}' => (false, true),
                    ' ' => (false, false),
                    other => panic!("unexpected {other:?}"),
                };
                // Ink is dark on a light terminal, light on a dark one.
                let light_bg = bg == Background::Light;
                top.push(t == light_bg);
                bottom.push(b == light_bg);
            }
            rows.push(top);
            rows.push(bottom);
        }
        rows
    }

    #[test]
    fn a_default_totp_uri_fits_an_80x24_terminal_with_its_quiet_zone() {
        for bg in [Background::Dark, Background::Light] {
            let art = render(URI, bg).unwrap();
            let lines: Vec<&str> = art.lines().collect();
            assert!(lines.len() <= 21, "{} rows:\n{art}", lines.len());
            let width = lines[0].chars().count();
            assert!(width <= 80 && lines.iter().all(|l| l.chars().count() == width));
            // The modules drawn are the code's, with the light quiet zone around it.
            let code = QrCode::with_error_correction_level(URI.as_bytes(), EcLevel::L).unwrap();
            let n = code.width();
            let m = modules(&art, bg);
            assert_eq!(width, n + 2 * QUIET);
            let colors = code.to_colors();
            for y in 0..n + 2 * QUIET {
                for x in 0..n + 2 * QUIET {
                    let inside = (QUIET..QUIET + n).contains(&x) && (QUIET..QUIET + n).contains(&y);
                    let want = inside && colors[(y - QUIET) * n + (x - QUIET)] == Color::Dark;
                    assert_eq!(m[y][x], want, "module ({x}, {y}) for {bg:?}");
                }
            }
        }
    }

    /// What a phone sees: the drawn modules at 4 pixels each, inside the terminal's own
    /// background (dark for `Dark`: beyond the quiet zone there is no light), decoded by a real
    /// QR decoder (rqrr).
    #[test]
    fn a_scanner_reads_the_code_on_either_terminal() {
        for uri in [
            URI,
            "otpauth://hotp/tessera:a.very.long.user.name@example.org?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=tessera&counter=0&digits=8",
        ] {
            for bg in [Background::Dark, Background::Light] {
                let m = modules(&render(uri, bg).unwrap(), bg);
                let (border, px) = (8, 4);
                let side = (m[0].len() + 2 * border) * px;
                let terminal_dark = bg == Background::Dark;
                let mut img = rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| {
                    let (mx, my) = (x / px, y / px);
                    let inside = (border..border + m[0].len()).contains(&mx)
                        && (border..border + m[0].len()).contains(&my);
                    let dark = if inside {
                        m[my - border].get(mx - border).copied().unwrap_or(false)
                    } else {
                        terminal_dark
                    };
                    if dark {
                        0
                    } else {
                        255
                    }
                });
                let grids = img.detect_grids();
                assert_eq!(grids.len(), 1, "{bg:?}: {uri}");
                let (_, text) = grids[0].decode().unwrap();
                assert_eq!(text, uri, "{bg:?}");
            }
        }
    }

    #[test]
    fn light_and_dark_terminals_get_inverse_ink() {
        let dark = render(URI, Background::Dark).unwrap();
        let light = render(URI, Background::Light).unwrap();
        let swap = |c: char| match c {
            '\u{2588}' => ' ',
            ' ' => '\u{2588}',
            '\u{2580}' => '\u{2584}',
            '\u{2584}' => '\u{2580}',
            c => c,
        };
        // Odd module rows: the last line's lower half is outside the code in both.
        let n = dark.lines().count();
        for (i, (d, l)) in dark.lines().zip(light.lines()).enumerate() {
            if i + 1 < n {
                assert_eq!(d.chars().map(swap).collect::<String>(), l);
            }
        }
    }
}
