//! Kernel settings under /proc/sys and other small kernel files: read, write, and put back what
//! an attempt changed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    #[error("{path}: {what}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl SysctlError {
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        SysctlError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

impl From<SysctlError> for io::Error {
    fn from(e: SysctlError) -> io::Error {
        match e {
            SysctlError::Io { source, .. } => source,
        }
    }
}

/// Reads a sysctl or other small kernel file, trimmed.
pub fn read_trimmed(path: &Path) -> Result<String, SysctlError> {
    fs::read_to_string(path)
        .map(|s| s.trim_end_matches('\n').to_string())
        .map_err(|e| SysctlError::io("reading", path, e))
}

/// Writes a value to a sysctl or other kernel file (no O_CREAT, no truncation games).
pub fn write_existing(path: &Path, value: &str) -> Result<(), SysctlError> {
    use std::io::Write;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| SysctlError::io("opening for writing", path, e))?;
    f.write_all(value.as_bytes())
        .map_err(|e| SysctlError::io("writing", path, e))
}

/// Restores a sysctl to its value from before the attempt when dropped (also when judge never
/// runs), so a probe that changed global state cannot leave it changed.
pub struct SysctlRestore {
    path: PathBuf,
    original: String,
}

impl SysctlRestore {
    pub fn capture(path: &Path) -> Result<SysctlRestore, SysctlError> {
        Ok(SysctlRestore {
            path: path.to_path_buf(),
            original: read_trimmed(path)?,
        })
    }

    pub fn original(&self) -> &str {
        &self.original
    }

    pub fn current(&self) -> Result<String, SysctlError> {
        read_trimmed(&self.path)
    }

    /// Writes the original value back if the current one differs.
    pub fn restore(&self) -> Result<(), SysctlError> {
        if self.current()? != self.original {
            write_existing(&self.path, &self.original)?;
        }
        Ok(())
    }
}

impl Drop for SysctlRestore {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            // Drop cannot return the error; the guest's log is where a failed restore is seen.
            eprintln!("breakout: could not restore {}: {e}", self.path.display());
        }
    }
}
