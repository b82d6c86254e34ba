//! The inside half's report: every step it took, with the syscall, result, errno and signal.

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
    /// Data the step obtained that the outside will check (a secret read, a hostname seen).
    pub data: Option<String>,
}

/// Everything the inside half says, printed as one JSON object on stdout.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsideReport {
    pub probe: String,
    pub steps: Vec<Step>,
}
