//! The inside half's side of the kit: its `key=value` arguments (a bad one becomes a step of the
//! report, never a panic) and steps for values that are no syscall result.

use crate::report::Steps;
use crate::{ArgError, Args, InsideReport};
use std::fs;
use std::io;
use std::path::Path;

/// Parses the inside's arguments; on error the returned report says what is wrong.
pub(crate) fn inside_args(probe: &str, words: &[String]) -> Result<(Args, Steps), InsideReport> {
    let mut steps = Steps::new(probe);
    match Args::parse(words) {
        Ok(args) => Ok((args, steps)),
        Err(e) => {
            steps.bad_args(e.to_string());
            Err(steps.finish())
        }
    }
}

/// Like [`inside_args`], then runs `attempt`; a missing or malformed argument ends the attempt
/// with a report naming it.
pub(crate) fn with_args(
    probe: &str,
    words: &[String],
    attempt: impl FnOnce(&Args, &mut Steps) -> Result<(), ArgError>,
) -> InsideReport {
    let (args, mut steps) = match inside_args(probe, words) {
        Ok(x) => x,
        Err(report) => return report,
    };
    if let Err(e) = attempt(&args, &mut steps) {
        steps.bad_args(e.to_string());
    }
    steps.finish()
}

/// Parses the inside's `key=value` arguments with `parse`; on failure records the error as a
/// `parse arguments` step and returns None, so the outside judges the run inconclusive.
pub fn parse_or_report<T>(
    steps: &mut Steps,
    args: &[String],
    parse: impl FnOnce(&Args) -> Result<T, ArgError>,
) -> Option<T> {
    match Args::parse(args).and_then(|a| parse(&a)) {
        Ok(v) => Some(v),
        Err(e) => {
            steps.bad_args(e.to_string());
            None
        }
    }
}

/// Like [`Steps::io`] for a value that is no syscall result (a stream, a file): the step records
/// success as 0, and the value comes back to the caller.
pub fn io_keep<T>(
    steps: &mut Steps,
    action: &str,
    syscall: impl Into<String>,
    f: impl FnOnce() -> io::Result<T>,
) -> Option<T> {
    let mut out = None;
    steps.io(action, syscall, || {
        out = Some(f()?);
        Ok(())
    });
    out
}

/// Reads a whole file as one step; its (trimmed, lossy UTF-8) content becomes the step's data.
pub fn read_step(steps: &mut Steps, action: &str, path: &Path) -> Option<String> {
    let mut content = None;
    steps.io(action, format!("read({})", path.display()), || {
        let bytes = fs::read(path)?;
        let n = bytes.len();
        content = Some(String::from_utf8_lossy(&bytes).trim().to_string());
        Ok(n)
    });
    if let Some(text) = &content {
        steps.data(text.clone());
    }
    content
}

/// `path` (absolute, as the outside sees it) reached through process `pid`'s root directory:
/// /proc/PID/root/PATH.
pub fn through_root(pid: u32, path: &Path) -> std::path::PathBuf {
    Path::new("/proc")
        .join(pid.to_string())
        .join("root")
        .join(path.strip_prefix("/").unwrap_or(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_arguments_are_reported_not_panicked() {
        let mut steps = Steps::new("t");
        let words = vec!["pid".to_string()];
        let got = parse_or_report(&mut steps, &words, |a| a.get::<i32>("pid"));
        assert!(got.is_none());
        let report = steps.finish();
        assert_eq!(report.steps[0].action, "parse arguments");
        assert!(report.steps[0].data.as_deref().unwrap().contains("`pid`"));
        let mut steps = Steps::new("t");
        let words = vec!["pid=12".to_string()];
        assert_eq!(
            parse_or_report(&mut steps, &words, |a| a.get::<i32>("pid")),
            Some(12)
        );
    }
}
