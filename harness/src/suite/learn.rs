//! The work behind `breakout learn` (cli/learn.rs): record a command or the shipped workloads
//! under `none` with the runtime's recording filter (runtime/src/seccomp/record.rs), each
//! checked to work there, and hand back the recordings.

use crate::suite::launcher::{limits_of, RuntimeLauncher};
use breakout_attacks::workloads::{self, WorkloadVerdict};
use breakout_attacks::{LaunchRequest, Launched, Launcher};
use breakout_runtime::seccomp::Recording;
use breakout_runtime::{spawn, Payload, SandboxConfig};
use serde::{Deserialize, Serialize};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;
use std::time::Duration;

/// Why a learn run gives no recording.
#[derive(Debug, thiserror::Error)]
pub enum LearnRunError {
    /// The input is wrong: a command that is not there or fails under `none`, an unknown
    /// workload, one that does not work under `none`.
    #[error("{0}")]
    BadInput(String),
    /// A recording may lack calls.
    #[error("{0}")]
    Incomplete(String),
}

/// Tries of a workload that is broken under the recorder (see `record_workloads`).
pub const ATTEMPTS: u32 = 3;

/// What the guest sends the host: one result line per recorded command or workload.
#[derive(Debug, Serialize, Deserialize)]
pub struct LearnResult {
    /// What was learned from (`the command "sh -c ..."`, `workload python`).
    pub source: String,
    /// The workload's id, for `--workload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// Part of the profile (a named workload, or the command); false: only checked against it.
    pub learned: bool,
    pub recording: Recording,
}

pub fn source_of(command: &[String]) -> String {
    format!("the command `{}`", command.join(" "))
}

/// Record `command` under `none` on this machine.
pub fn record_command(command: &[String], timeout: Duration) -> Result<Recording, LearnRunError> {
    let mut cfg =
        SandboxConfig::builtin("none").map_err(|e| LearnRunError::BadInput(e.to_string()))?;
    cfg.set_record_syscalls(true);
    let mut payload = Payload::new(command.iter().map(String::as_str));
    // The command's output goes to our stderr: stdout may be the profile.
    payload.stdout = dup_stderr();
    payload.stderr = dup_stderr();
    let mut sb = spawn(&cfg, payload).map_err(|e| LearnRunError::BadInput(e.to_string()))?;
    let outcome = match sb.wait_timeout(timeout) {
        Ok(Some(o)) => o,
        Ok(None) => {
            sb.kill();
            let _ = sb.wait();
            return Err(LearnRunError::BadInput(format!(
                "{} did not end within {}s under `none` (--timeout)",
                source_of(command),
                timeout.as_secs()
            )));
        }
        Err(e) => return Err(LearnRunError::BadInput(e.to_string())),
    };
    let where_ = if breakout_vm::guest::in_vm() {
        "in the guest"
    } else {
        "on this machine"
    };
    if let Some(f) = &outcome.setup_failure {
        let missing = f.syscall.starts_with("execve") && outcome.status.code() == 127;
        return Err(LearnRunError::BadInput(if missing {
            format!(
                "`{}` does not exist {where_} ({f})",
                command.first().map(String::as_str).unwrap_or("")
            )
        } else {
            format!("{} could not start under `none`: {f}", source_of(command))
        }));
    }
    if outcome.status.code() != 0 {
        return Err(LearnRunError::BadInput(format!(
            "{} failed under `none` {where_} (exit {}): learn from a run that works",
            source_of(command),
            outcome.status.code()
        )));
    }
    let rec = outcome.recording.ok_or(LearnRunError::Incomplete(
        "the runtime returned no recording".to_string(),
    ))?;
    if let Some(e) = &rec.error {
        return Err(LearnRunError::Incomplete(format!(
            "the recording is incomplete: {e}"
        )));
    }
    Ok(rec)
}

fn dup_stderr() -> Option<OwnedFd> {
    std::io::stderr().as_fd().try_clone_to_owned().ok()
}

/// The workload ids named (`all` expands), in the shipped order; an unknown id is an error.
pub fn named_workloads(ids: &[String]) -> Result<Vec<&'static str>, String> {
    let all: Vec<&'static str> = workloads::workloads().iter().map(|w| w.meta.id).collect();
    let mut named = Vec::new();
    for id in ids {
        if id == "all" {
            return Ok(all);
        }
        match all.iter().find(|w| *w == id) {
            Some(w) => named.push(*w),
            None => {
                return Err(format!(
                    "--workload {id}: no such workload (breakout list workloads: {})",
                    all.join(", ")
                ))
            }
        }
    }
    Ok(named)
}

/// Our runtime under `none` with the recording filter; keeps the last launch's recording.
struct RecordingLauncher {
    inner: RuntimeLauncher,
    last: Mutex<Option<Recording>>,
}

impl Launcher for RecordingLauncher {
    fn launch(&self, request: &LaunchRequest) -> Result<Launched, String> {
        let launched = self.inner.launch(request)?;
        if let Ok(mut last) = self.last.lock() {
            *last = launched.outcome.as_ref().and_then(|o| o.recording.clone());
        }
        Ok(launched)
    }
}

/// Record every shipped workload under `none`; the named ones must work there (checked from
/// outside, as in a run), the others are recorded to say what the learned profile lacks for them.
pub fn record_workloads(
    ids: &[String],
    timeout: Duration,
) -> Result<Vec<LearnResult>, LearnRunError> {
    let named = named_workloads(ids).map_err(LearnRunError::BadInput)?;
    let mut cfg =
        SandboxConfig::builtin("none").map_err(|e| LearnRunError::BadInput(e.to_string()))?;
    cfg.set_record_syscalls(true);
    let limits = limits_of(&cfg);
    let launcher = RecordingLauncher {
        inner: RuntimeLauncher::new(cfg),
        last: Mutex::new(None),
    };
    let mut out = Vec::new();
    for w in workloads::workloads() {
        let learned = named.contains(&w.meta.id);
        // A signal that arrives while a call waits for the recorder to receive it interrupts
        // the call (EINTR without SA_RESTART, where the kernel alone would restart a fork):
        // a workload broken under the recorder gets up to ATTEMPTS tries, each one said.
        let mut attempt = 1;
        let (run, recording) = loop {
            let run = workloads::run_workload(w, &launcher, &limits, timeout);
            let recording = launcher.last.lock().ok().and_then(|mut l| l.take());
            if run.verdict != WorkloadVerdict::Broken || attempt == ATTEMPTS {
                break (run, recording);
            }
            eprintln!(
                "breakout learn: workload {} attempt {attempt} broken under the recorder ({}); trying again",
                w.meta.id,
                run.step.as_deref().unwrap_or(&run.reason)
            );
            attempt += 1;
        };
        if run.verdict != WorkloadVerdict::Works {
            let line = format!(
                "workload {} is {} under `none` with the recorder: {}{}",
                w.meta.id,
                run.verdict.as_str(),
                run.reason,
                run.step.map(|s| format!(" ({s})")).unwrap_or_default()
            );
            if learned {
                return Err(LearnRunError::BadInput(format!(
                    "{line}: learn from a run that works"
                )));
            }
            eprintln!("breakout learn: {line}: not checked against the profile");
            continue;
        }
        let Some(recording) = recording else {
            return Err(LearnRunError::Incomplete(format!(
                "workload {}: no recording",
                w.meta.id
            )));
        };
        if let Some(e) = &recording.error {
            return Err(LearnRunError::Incomplete(format!(
                "workload {}: the recording is incomplete: {e}",
                w.meta.id
            )));
        }
        out.push(LearnResult {
            source: format!("workload {}", w.meta.id),
            workload: Some(w.meta.id.to_string()),
            learned,
            recording,
        });
    }
    Ok(out)
}
