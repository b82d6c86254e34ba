//! The inside half's report: every step it took, with the syscall, result, errno and signal, and
//! [`Steps`], the small recorder each probe's inside half uses so that no attempt panics and every
//! syscall lands in the report.

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

/// One step of an attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// What the step tried, e.g. "attach to victim".
    pub action: String,
    /// The syscall with key arguments, e.g. "ptrace(PTRACE_ATTACH, 812)".
    pub syscall: String,
    /// The raw return value when the call succeeded.
    pub result: Option<i64>,
    /// errno when it failed, and its name ("EPERM").
    pub errno: Option<i32>,
    pub errno_name: Option<String>,
    /// A signal the step saw (a wait status, a SIGSYS caught), by number.
    #[serde(default)]
    pub signal: Option<i32>,
    /// Data the step obtained that the outside will check (a secret read, a hostname seen).
    pub data: Option<String>,
}

impl Step {
    /// True when the call returned without an errno.
    pub fn succeeded(&self) -> bool {
        self.errno.is_none() && self.result.is_some()
    }
}

/// Everything the inside half says, printed as one JSON object on stdout.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsideReport {
    pub probe: String,
    pub steps: Vec<Step>,
}

impl InsideReport {
    /// Every `data` field of every step, for oracles that look for a secret anywhere in it.
    pub fn data(&self) -> impl Iterator<Item = &str> {
        self.steps.iter().filter_map(|s| s.data.as_deref())
    }

    /// True when some step's data contains `needle` (an empty needle never matches).
    pub fn data_contains(&self, needle: &str) -> bool {
        !needle.is_empty() && self.data().any(|d| d.contains(needle))
    }

    /// The first step whose data contains `needle`.
    pub fn step_with(&self, needle: &str) -> Option<&Step> {
        if needle.is_empty() {
            return None;
        }
        self.steps
            .iter()
            .find(|s| s.data.as_deref().is_some_and(|d| d.contains(needle)))
    }

    /// A one-line summary of the failed steps ("ptrace(PTRACE_ATTACH, 812) = EPERM; ..."), for
    /// `blocked` reasons.
    pub fn failures(&self) -> String {
        let failed: Vec<String> = self
            .steps
            .iter()
            .filter(|s| s.errno.is_some() || s.signal.is_some())
            .map(|s| {
                let mut text = s.syscall.clone();
                if let Some(name) = &s.errno_name {
                    text.push_str(" = ");
                    text.push_str(name);
                }
                if let Some(sig) = s.signal {
                    text.push_str(&format!(" (signal {sig})"));
                }
                text
            })
            .collect();
        if failed.is_empty() {
            "no step failed".to_string()
        } else {
            failed.join("; ")
        }
    }
}

/// A value a successful syscall returned, as it goes into [`Step::result`].
pub trait StepValue {
    fn step_value(&self) -> i64;
}

impl StepValue for () {
    fn step_value(&self) -> i64 {
        0
    }
}

macro_rules! int_step_value {
    ($($t:ty),*) => {$(
        impl StepValue for $t {
            fn step_value(&self) -> i64 {
                i64::try_from(*self).unwrap_or(i64::MAX)
            }
        }
    )*};
}
int_step_value!(i32, i64, u32, u64, usize, isize);

/// Data a call read: the result is its length.
impl StepValue for Vec<u8> {
    fn step_value(&self) -> i64 {
        i64::try_from(self.len()).unwrap_or(i64::MAX)
    }
}

/// Descriptors a call received: the result is how many.
impl StepValue for Vec<std::os::fd::RawFd> {
    fn step_value(&self) -> i64 {
        i64::try_from(self.len()).unwrap_or(i64::MAX)
    }
}

impl StepValue for String {
    fn step_value(&self) -> i64 {
        i64::try_from(self.len()).unwrap_or(i64::MAX)
    }
}

impl StepValue for std::os::fd::OwnedFd {
    fn step_value(&self) -> i64 {
        use std::os::fd::AsRawFd;
        i64::from(self.as_raw_fd())
    }
}

impl StepValue for nix::unistd::Pid {
    fn step_value(&self) -> i64 {
        i64::from(self.as_raw())
    }
}

impl StepValue for nix::unistd::ForkResult {
    fn step_value(&self) -> i64 {
        match self {
            nix::unistd::ForkResult::Parent { child } => i64::from(child.as_raw()),
            nix::unistd::ForkResult::Child => 0,
        }
    }
}

/// Descriptor-owning values: the result is the descriptor number.
macro_rules! fd_step_value {
    ($($t:ty),*) => {$(
        impl StepValue for $t {
            fn step_value(&self) -> i64 {
                use std::os::fd::AsRawFd;
                i64::from(self.as_raw_fd())
            }
        }
    )*};
}
fd_step_value!(
    std::fs::File,
    std::net::TcpStream,
    std::net::TcpListener,
    std::os::unix::net::UnixStream
);

/// Records an attempt step by step. Every call announces itself on stderr before it runs, so
/// that when a seccomp filter kills the payload the stderr tail still names the syscall.
#[derive(Debug)]
pub struct Steps {
    report: InsideReport,
}

impl Steps {
    pub fn new(probe: &str) -> Self {
        Steps {
            report: InsideReport {
                probe: probe.to_string(),
                steps: Vec::new(),
            },
        }
    }

    fn announce(syscall: &str) {
        eprintln!("breakout-probe: trying {syscall}");
    }

    /// Runs one syscall wrapper and records its result or errno. Returns the value on success.
    pub fn call<T: StepValue>(
        &mut self,
        action: &str,
        syscall: impl Into<String>,
        f: impl FnOnce() -> Result<T, Errno>,
    ) -> Option<T> {
        let syscall = syscall.into();
        Self::announce(&syscall);
        let outcome = f();
        let mut step = Step {
            action: action.to_string(),
            syscall,
            ..Step::default()
        };
        let value = match outcome {
            Ok(v) => {
                step.result = Some(v.step_value());
                Some(v)
            }
            Err(errno) => {
                step.errno = Some(errno as i32);
                step.errno_name = Some(format!("{errno:?}"));
                None
            }
        };
        self.report.steps.push(step);
        value
    }

    /// Like [`Steps::call`] for std's I/O results (the errno comes from `raw_os_error`).
    pub fn io<T: StepValue>(
        &mut self,
        action: &str,
        syscall: impl Into<String>,
        f: impl FnOnce() -> std::io::Result<T>,
    ) -> Option<T> {
        self.call(action, syscall, || {
            f().map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
        })
    }

    /// Attaches data (a secret read, a hostname seen) to the last step.
    pub fn data(&mut self, data: impl Into<String>) {
        if let Some(last) = self.report.steps.last_mut() {
            last.data = Some(data.into());
        }
    }

    /// Attaches a signal (a wait status) to the last step.
    pub fn signal(&mut self, signal: i32) {
        if let Some(last) = self.report.steps.last_mut() {
            last.signal = Some(signal);
        }
    }

    /// Records a step that is no syscall: a bad argument, a parse failure, an observation.
    pub fn note(&mut self, action: &str, data: impl Into<String>) {
        self.report.steps.push(Step {
            action: action.to_string(),
            syscall: String::new(),
            data: Some(data.into()),
            ..Step::default()
        });
    }

    /// Records that the probe could not even start (bad arguments): errno EINVAL, no syscall.
    pub fn bad_args(&mut self, message: impl Into<String>) {
        self.report.steps.push(Step {
            action: "parse arguments".to_string(),
            syscall: String::new(),
            errno: Some(libc::EINVAL),
            errno_name: Some("EINVAL".to_string()),
            data: Some(message.into()),
            ..Step::default()
        });
    }

    pub fn finish(self) -> InsideReport {
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_json_round_trips() {
        let mut steps = Steps::new("demo");
        steps.call("ok", "getpid()", || Ok(nix::unistd::getpid()));
        steps.data("x=1");
        steps.call::<()>("fails", "kill(1, 0)", || Err(Errno::EPERM));
        steps.signal(31);
        let report = steps.finish();
        let line = serde_json::to_string(&report).unwrap();
        assert!(!line.contains('\n'));
        let back: InsideReport = serde_json::from_str(&line).unwrap();
        assert_eq!(back, report);
        assert_eq!(back.steps[1].errno, Some(libc::EPERM));
        assert_eq!(back.steps[1].errno_name.as_deref(), Some("EPERM"));
        assert!(back.steps[0].succeeded());
        assert!(!back.steps[1].succeeded());
        assert!(back.data_contains("x=1"));
        assert!(!back.data_contains(""));
        assert_eq!(back.failures(), "kill(1, 0) = EPERM (signal 31)");
    }

    #[test]
    fn old_reports_without_signal_still_parse() {
        let line = r#"{"probe":"p","steps":[{"action":"a","syscall":"s","result":0,"errno":null,"errno_name":null,"data":null}]}"#;
        let report: InsideReport = serde_json::from_str(line).unwrap();
        assert_eq!(report.steps[0].signal, None);
    }

    #[test]
    fn io_errors_keep_their_errno() {
        let mut steps = Steps::new("demo");
        let r = steps.io("open", "open(/nonexistent)", || {
            std::fs::File::open("/nonexistent/breakout")
        });
        assert!(r.is_none());
        assert_eq!(
            steps.finish().steps[0].errno_name.as_deref(),
            Some("ENOENT")
        );
    }
}
