//! results.json: the RunReport as JSON, versioned by `schema_version` and documented in
//! docs/results-schema.json (JSON Schema) and docs/results-schema.md.

use crate::model::{RunReport, SCHEMA_VERSION};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("cannot read results file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `message` is serde_json's, which names the field and the line and column.
    #[error("{origin} is not a breakout results file: {message}")]
    Malformed { origin: String, message: String },
    #[error("{origin} has results schema_version {found}; this breakout reads version {SCHEMA_VERSION} (see docs/results-schema.md)")]
    Version { origin: String, found: u64 },
}

pub fn render(report: &RunReport) -> String {
    let mut text = serde_json::to_string_pretty(report)
        .expect("RunReport has only string keys and plain data, so it always serializes");
    text.push('\n');
    text
}

/// Parses results JSON; `origin` names where it came from for the error messages.
pub fn parse(text: &str, origin: &str) -> Result<RunReport, JsonError> {
    let malformed = |e: serde_json::Error| JsonError::Malformed {
        origin: origin.to_string(),
        message: e.to_string(),
    };
    // Check the version first: a file from another schema version fails with that reason rather
    // than with whichever field happens to differ.
    let value: serde_json::Value = serde_json::from_str(text).map_err(malformed)?;
    match value.get("schema_version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(SCHEMA_VERSION) => {}
        Some(found) => {
            return Err(JsonError::Version {
                origin: origin.to_string(),
                found,
            })
        }
        None => {
            return Err(JsonError::Malformed {
                origin: origin.to_string(),
                message: "missing the integer field `schema_version`".to_string(),
            })
        }
    }
    // Parsed again from the text (not from `value`) so a wrong field is reported with its line.
    serde_json::from_str(text).map_err(malformed)
}

/// Reads and parses a results file.
pub fn load(path: &Path) -> Result<RunReport, JsonError> {
    let text = std::fs::read_to_string(path).map_err(|source| JsonError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}
