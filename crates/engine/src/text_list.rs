//! A config value that may be one string or a list of strings (`url = "https://a"` or
//! `url = ["https://a", "https://b"]`; a `[[policy]]` rule's `group`, `service`...). Its own
//! room, below both the config and the policy rules that read it.

use serde::Deserialize;

/// Deserializes one string or a list of strings into a list.
pub(crate) fn one_or_many<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}
