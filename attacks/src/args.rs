//! The inside half's arguments: `key=value` words, so the outside can pass what the inside needs
//! (victim pids, socket paths, ports) to any sandbox runtime unchanged.

use std::collections::BTreeMap;
use std::str::FromStr;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgError {
    #[error("argument {position} `{word}` is not of the form key=value")]
    NotKeyValue { position: usize, word: String },
    #[error("argument `{0}` given twice")]
    Duplicate(String),
    #[error("missing argument `{0}=...`")]
    Missing(String),
    #[error("argument `{key}={value}`: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
}

/// Parsed `key=value` arguments.
#[derive(Debug, Clone, Default)]
pub struct Args {
    map: BTreeMap<String, String>,
}

impl Args {
    pub fn parse(words: &[String]) -> Result<Args, ArgError> {
        let mut map = BTreeMap::new();
        for (i, word) in words.iter().enumerate() {
            let Some((k, v)) = word.split_once('=') else {
                return Err(ArgError::NotKeyValue {
                    position: i + 1,
                    word: word.clone(),
                });
            };
            if k.is_empty() {
                return Err(ArgError::NotKeyValue {
                    position: i + 1,
                    word: word.clone(),
                });
            }
            if map.insert(k.to_string(), v.to_string()).is_some() {
                return Err(ArgError::Duplicate(k.to_string()));
            }
        }
        Ok(Args { map })
    }

    pub fn str(&self, key: &str) -> Result<&str, ArgError> {
        self.map
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| ArgError::Missing(key.to_string()))
    }

    pub fn opt_str(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// A typed value; the error names the key, the value and why it did not parse.
    pub fn get<T: FromStr>(&self, key: &str) -> Result<T, ArgError>
    where
        T::Err: std::fmt::Display,
    {
        let value = self.str(key)?;
        value.parse().map_err(|e: T::Err| ArgError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            reason: e.to_string(),
        })
    }

    /// A hexadecimal value with or without `0x`.
    pub fn hex(&self, key: &str) -> Result<u64, ArgError> {
        let value = self.str(key)?;
        u64::from_str_radix(value.trim_start_matches("0x"), 16).map_err(|e| ArgError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            reason: e.to_string(),
        })
    }
}

/// Builds `key=value` words for an [`crate::Arrangement`].
pub fn kv(key: &str, value: impl std::fmt::Display) -> String {
    format!("{key}={value}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_and_types() {
        let a = Args::parse(&words(&["pid=12", "addr=0x1f", "path=/a=b"])).unwrap();
        assert_eq!(a.get::<i32>("pid"), Ok(12));
        assert_eq!(a.hex("addr"), Ok(0x1f));
        assert_eq!(a.str("path"), Ok("/a=b"));
        assert_eq!(a.str("nope"), Err(ArgError::Missing("nope".into())));
        let err = a.get::<i32>("path").unwrap_err().to_string();
        assert!(err.contains("path=/a=b"), "{err}");
    }

    #[test]
    fn rejects_bad_words() {
        assert!(matches!(
            Args::parse(&words(&["pid"])),
            Err(ArgError::NotKeyValue { position: 1, .. })
        ));
        assert!(matches!(
            Args::parse(&words(&["=1"])),
            Err(ArgError::NotKeyValue { .. })
        ));
        assert_eq!(
            Args::parse(&words(&["a=1", "a=2"])).unwrap_err(),
            ArgError::Duplicate("a".into())
        );
    }
}
