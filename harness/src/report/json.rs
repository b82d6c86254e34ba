//! results.json: the RunReport as JSON, versioned by `schema_version` and documented in
//! docs/results-schema.json (JSON Schema) and docs/results-schema.md.

use crate::model::{RunReport, OLDEST_SCHEMA_VERSION, SCHEMA_VERSION};
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
    #[error("{origin} has results schema_version {found}; this breakout reads versions {OLDEST_SCHEMA_VERSION} to {SCHEMA_VERSION} (see docs/results-schema.md)")]
    Version { origin: String, found: u64 },
}

pub fn render(report: &RunReport) -> String {
    let mut text = serde_json::to_string_pretty(report)
        .expect("RunReport has only string keys and plain data, so it always serializes");
    text.push('\n');
    text
}

/// Parses results JSON of any supported schema version (older ones are upgraded, see
/// [`crate::model::upgrade`]); `origin` names where it came from for the error messages.
pub fn parse(text: &str, origin: &str) -> Result<RunReport, JsonError> {
    crate::model::upgrade(text).map_err(|e| match e {
        crate::model::UpgradeError::Version { found } => JsonError::Version {
            origin: origin.to_string(),
            found,
        },
        other => JsonError::Malformed {
            origin: origin.to_string(),
            message: other.to_string(),
        },
    })
}

/// Reads and parses a results file.
pub fn load(path: &Path) -> Result<RunReport, JsonError> {
    let text = std::fs::read_to_string(path).map_err(|source| JsonError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}
