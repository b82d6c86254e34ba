//! One attempt of one probe, start to finish: arrange the world, launch the inside half through a
//! [`Launcher`], parse its report, judge from the outside. Also [`DirectLauncher`], which runs the
//! payload with no sandbox at all: the positive control.
//!
//! The driver never turns a failure to observe into `blocked`: a timeout, a runtime setup failure
//! or a payload that died without a report and without a layer's evidence is `inconclusive`
//! (unless the outside oracle saw an escape anyway).

use crate::pipe::drain;
use crate::world::{AttemptCgroup, World};
use crate::{
    InsideReport, Judgement, LaunchRequest, Launched, Launcher, Limits, Probe, ProbeError,
    RunObservation, Verdict,
};
use breakout_runtime::{CgroupEvidence, ExitKind, Outcome};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How much of the payload's stderr a result keeps.
pub const STDERR_TAIL_BYTES: usize = 4096;

/// Everything one attempt produced.
#[derive(Debug)]
pub struct ProbeRun {
    pub judgement: Judgement,
    pub inside: Option<InsideReport>,
    pub outcome: Option<Outcome>,
    pub stderr_tail: String,
    pub timed_out: bool,
    pub duration: Duration,
    /// Where `duration` went; `None` when the attempt ended before its launch.
    pub phases: Option<Phases>,
}

/// The wall time of one attempt's parts, so a slower launch shows where it got slower.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Phases {
    /// The outside prepares (victims, secrets, listeners).
    pub arrange: Duration,
    /// The launcher starts the payload and waits for it to end (setup, the inside's run,
    /// teardown, its output read).
    pub launch: Duration,
    /// The outside looks for the effect (including any wait for a late one).
    pub judge: Duration,
}

/// Arrange, launch, parse, judge.
pub fn run_probe(
    probe: &dyn Probe,
    world: &World,
    limits: &Limits,
    launcher: &dyn Launcher,
    timeout: Duration,
) -> ProbeRun {
    let start = Instant::now();
    let id = probe.meta().id;
    let finished = |judgement: Judgement| ProbeRun {
        judgement,
        inside: None,
        outcome: None,
        stderr_tail: String::new(),
        timed_out: false,
        duration: start.elapsed(),
        phases: None,
    };
    let arrangement = match probe.arrange(world, limits) {
        Ok(a) => a,
        Err(e @ ProbeError::Unsupported { .. }) => {
            return finished(Judgement::skipped(e.to_string()))
        }
        Err(e) => return finished(Judgement::inconclusive(e.to_string())),
    };
    if arrangement.stdin.is_some() && arrangement.controlling_tty.is_some() {
        return finished(Judgement::inconclusive(format!(
            "probe {id}: the arrangement asks for a terminal and a channel as stdin at once"
        )));
    }
    // The payload and whatever it starts run in a cgroup of this attempt's own: the
    // arrangement's (a resource probe's safety cgroup, torn down with the arrangement) or a fresh
    // one the world makes, killed below once the attempt is judged.
    let attempt_cgroup = match arrangement.cgroup {
        Some(_) => None,
        None => match world.attempt_cgroup() {
            Ok(cgroup) => cgroup,
            Err(e) => {
                drop(arrangement);
                return finished(Judgement::inconclusive(format!(
                    "probe {id}: the attempt's cgroup could not be made: {e}"
                )));
            }
        },
    };
    let mut argv = vec![world.probe_bin().display().to_string(), id.to_string()];
    argv.extend(arrangement.args.iter().cloned());
    let request = LaunchRequest {
        argv,
        cgroup: arrangement
            .cgroup
            .clone()
            .or_else(|| attempt_cgroup.as_ref().map(|c| c.path().to_path_buf())),
        timeout,
        controlling_tty: arrangement
            .controlling_tty
            .as_ref()
            .map(|fd| fd.as_raw_fd()),
        stdin: arrangement.stdin.as_ref().map(|fd| fd.as_raw_fd()),
    };
    let arranged = start.elapsed();
    let launched = match launcher.launch(&request) {
        Ok(l) => l,
        Err(message) => {
            // Judge anyway: drop the arrangement only after the launcher is done with it.
            let cgroup = request.cgroup.clone();
            drop(arrangement);
            let judgement = Judgement::inconclusive(format!("launching `{id}` failed: {message}"));
            return finished(end_attempt(judgement, attempt_cgroup, cgroup.as_deref()));
        }
    };
    let ran = start.elapsed();
    let inside = parse_report(id, &launched.stdout);
    let stderr_tail = tail(&launched.stderr, STDERR_TAIL_BYTES);
    let observation = RunObservation {
        outcome: launched.outcome.as_ref(),
        inside: inside.as_ref(),
        stderr: &stderr_tail,
        timed_out: launched.timed_out,
        limits,
    };
    let judgement = probe.judge(world, arrangement, &observation);
    let judgement = settle(judgement, &observation);
    // Judged: nothing of this attempt may live on into the next one.
    let judgement = end_attempt(judgement, attempt_cgroup, request.cgroup.as_deref());
    ProbeRun {
        judgement,
        inside,
        outcome: launched.outcome,
        stderr_tail,
        timed_out: launched.timed_out,
        duration: start.elapsed(),
        phases: Some(Phases {
            arrange: arranged,
            launch: ran - arranged,
            judge: start.elapsed() - ran,
        }),
    }
}

/// Kills what is left of an attempt, after its judgement: the attempt's own cgroup is killed and
/// removed; an arrangement's cgroup (`cgroup`) went with the arrangement, and is killed here
/// only if it is still there. Processes that survive the kill cannot be told from a later
/// attempt's, so the judgement says so (and the guest's stderr).
fn end_attempt(
    judgement: Judgement,
    attempt_cgroup: Option<AttemptCgroup>,
    cgroup: Option<&Path>,
) -> Judgement {
    let ended = match attempt_cgroup {
        Some(own) => own.finish(),
        None => cgroup.map_or(Ok(()), crate::world::kill_cgroup),
    };
    match ended {
        Ok(()) => judgement,
        Err(e) => {
            eprintln!("breakout: processes of an attempt outlived it: {e}");
            Judgement {
                reason: format!(
                    "{}; processes of this attempt outlived it and may act on later attempts: {e}",
                    judgement.reason
                ),
                ..judgement
            }
        }
    }
}

/// The last line of stdout that parses as this probe's report.
pub fn parse_report(id: &str, stdout: &[u8]) -> Option<InsideReport> {
    String::from_utf8_lossy(stdout)
        .lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<InsideReport>(line.trim()).ok())
        .find(|r| r.probe == id)
}

fn tail(bytes: &[u8], max: usize) -> String {
    let start = bytes.len().saturating_sub(max);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// A `blocked` judgement stands only when the run could have shown an escape: the payload ran,
/// finished in time, and either reported or left a layer's evidence (a seccomp kill, a cgroup
/// kill). Otherwise it becomes `inconclusive`.
///
/// A SIGSYS alone is no such evidence: any process allowed to signal the payload can send it
/// (a daemon an earlier attempt left running as the same uid did, and later attempts were
/// credited to seccomp with seccomp off). It counts as the filter's kill only when the runtime
/// ran this launch under a filter and found the kernel's audit record of the kill
/// (`Outcome::seccomp_kill` with `recorded`), which no signal sent by a process leaves.
pub fn settle(judgement: Judgement, run: &RunObservation) -> Judgement {
    if judgement.verdict != Verdict::Blocked {
        return judgement;
    }
    if run.timed_out {
        return Judgement::inconclusive(format!(
            "timed out (killed by the harness); {}",
            judgement.reason
        ));
    }
    if let Some(failure) = run.outcome.and_then(|o| o.setup_failure.as_ref()) {
        return Judgement::inconclusive(format!(
            "the payload never ran: sandbox setup failed at {} ({}, errno {})",
            failure.step, failure.syscall, failure.errno
        ));
    }
    if run.inside.is_some() {
        return judgement;
    }
    let status = run.outcome.map(|o| o.status);
    let cgroup_kill = run
        .outcome
        .and_then(|o| o.cgroup.as_ref())
        .is_some_and(|c| c.oom_kill > 0 || c.pids_max_hits > 0);
    let filter_kill = run.outcome.and_then(|o| o.seccomp_kill.as_ref());
    match status {
        Some(ExitKind::Signaled { signal, .. }) if signal == libc::SIGSYS => match filter_kill {
            Some(kill) if kill.recorded => {
                Judgement::blocked(format!("{}; {kill}", judgement.reason))
            }
            Some(_) => Judgement::inconclusive(format!(
                "the inside printed no report and died of SIGSYS under the seccomp filter, but the kernel logged no filter kill of it: the signal may have come from another process; {}",
                judgement.reason
            )),
            None => Judgement::inconclusive(format!(
                "the inside printed no report and died of SIGSYS without a seccomp filter kill (no filter in this launch, or no runtime evidence of one): the signal came from another process, not from a layer; {}",
                judgement.reason
            )),
        },
        Some(ExitKind::Signaled { signal, .. }) if signal == libc::SIGKILL && cgroup_kill => {
            Judgement::blocked(format!(
                "{}; payload killed by the cgroup's limit",
                judgement.reason
            ))
        }
        Some(status) => Judgement::inconclusive(format!(
            "the inside printed no report (exit {}); {}",
            status.code(),
            judgement.reason
        )),
        None => Judgement::inconclusive(format!(
            "no exit status and no report; {}",
            judgement.reason
        )),
    }
}

/// Runs the payload with no sandbox: fork/exec as the caller (root in the guest), optionally in a
/// cgroup and with a controlling terminal, killed (process group and cgroup) at the timeout.
/// Inherited descriptors without O_CLOEXEC stay open, as in an unsandboxed process.
#[derive(Debug, Default, Clone, Copy)]
pub struct DirectLauncher;

impl Launcher for DirectLauncher {
    fn launch(&self, request: &LaunchRequest) -> Result<Launched, String> {
        let (program, args) = request
            .argv
            .split_first()
            .ok_or_else(|| "empty argv".to_string())?;
        let mut cmd = Command::new(program);
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        let cgroup_procs = match &request.cgroup {
            Some(dir) => {
                let path = dir.join("cgroup.procs");
                Some(
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(|e| format!("opening {}: {e}", path.display()))?,
                )
            }
            None => None,
        };
        match (request.controlling_tty, request.stdin) {
            (Some(tty), _) => {
                // SAFETY: the caller keeps `tty` open for the whole launch (the arrangement owns
                // it); we only borrow it to duplicate it.
                let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(tty) };
                let owned: OwnedFd = borrowed
                    .try_clone_to_owned()
                    .map_err(|e| format!("dup of the controlling tty {tty}: {e}"))?;
                cmd.stdin(Stdio::from(owned));
            }
            (None, Some(fd)) => {
                // SAFETY: as for the terminal: the arrangement owns `fd` for the whole launch.
                let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
                let owned: OwnedFd = borrowed
                    .try_clone_to_owned()
                    .map_err(|e| format!("dup of the stdin descriptor {fd}: {e}"))?;
                cmd.stdin(Stdio::from(owned));
                cmd.process_group(0);
            }
            (None, None) => {
                cmd.stdin(Stdio::null());
                cmd.process_group(0);
            }
        }
        let procs_fd = cgroup_procs.as_ref().map(|f| f.as_raw_fd());
        let want_tty = request.controlling_tty.is_some();
        // SAFETY: the closure runs in the child between fork and exec and only makes
        // async-signal-safe syscalls (write, setsid, ioctl) on descriptors opened before fork.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(fd) = procs_fd {
                    // "0" moves the writing process itself.
                    if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if want_tty {
                    if libc::setsid() < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting {program}: {e}"))?;
        drop(cgroup_procs);
        let pid = child.id() as i32;
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let deadline = Instant::now() + request.timeout;
        let mut timed_out = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    timed_out = true;
                    kill_everything(pid, request.cgroup.as_deref());
                    break child
                        .wait()
                        .map_err(|e| format!("waiting for pid {pid}: {e}"))?;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(format!("waiting for pid {pid}: {e}")),
            }
        };
        // Children the payload left behind (a fork bomb's) die with it.
        kill_everything(pid, request.cgroup.as_deref());
        let status = match (status.code(), status.signal()) {
            (Some(code), _) => ExitKind::Exited { code },
            (None, Some(signal)) => ExitKind::Signaled {
                signal,
                core_dumped: status.core_dumped(),
            },
            (None, None) => return Err(format!("pid {pid}: exit status without code or signal")),
        };
        let cgroup = request.cgroup.as_deref().map(read_evidence);
        Ok(Launched {
            outcome: Some(Outcome {
                status,
                cgroup,
                setup_failure: None,
                landlock: None,
                seccomp_kill: None,
                recording: None,
            }),
            stdout: stdout.collect(),
            stderr: stderr.collect(),
            timed_out,
        })
    }
}

fn kill_everything(pid: i32, cgroup: Option<&Path>) {
    if let Some(dir) = cgroup {
        // Best effort: the group may be gone already.
        let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    }
    // The payload leads its own process group (process_group(0) or setsid); ESRCH when empty.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// The cgroup counters of design.md, read after the run.
pub fn read_evidence(dir: &Path) -> CgroupEvidence {
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap_or_default();
    let key = |text: &str, k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0)
    };
    let memory_events = read("memory.events");
    let pids_events = read("pids.events");
    let cpu_stat = read("cpu.stat");
    CgroupEvidence {
        oom: key(&memory_events, "oom"),
        oom_kill: key(&memory_events, "oom_kill"),
        memory_max_hits: key(&memory_events, "max"),
        pids_max_hits: key(&pids_events, "max"),
        memory_peak: read("memory.peak").trim().parse().ok(),
        pids_peak: read("pids.peak").trim().parse().ok(),
        cpu_nr_throttled: key(&cpu_stat, "nr_throttled"),
        cpu_throttled_usec: key(&cpu_stat, "throttled_usec"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::testing::{observe, signaled};
    use breakout_runtime::seccomp::FilterKill;

    fn sigsys(kill: Option<FilterKill>) -> Outcome {
        Outcome {
            seccomp_kill: kill,
            ..signaled(libc::SIGSYS)
        }
    }

    fn filter_kill(recorded: bool) -> FilterKill {
        FilterKill {
            syscall: recorded.then(|| "keyctl".to_string()),
            nr: 250,
            arch: "X86_64".to_string(),
            recorded,
        }
    }

    fn settled(outcome: &Outcome) -> Judgement {
        settle(
            Judgement::blocked("victim pid 812 still alive"),
            &observe(None, Some(outcome)),
        )
    }

    /// A SIGSYS sent by another process (a daemon an earlier attempt left behind) to a payload
    /// with no filter was credited to seccomp.
    #[test]
    fn sigsys_without_a_filter_is_not_a_block() {
        let j = settled(&sigsys(None));
        assert_eq!(j.verdict, Verdict::Inconclusive, "{}", j.reason);
        assert!(j.reason.contains("another process"), "{}", j.reason);
        assert!(
            j.reason.contains("victim pid 812 still alive"),
            "{}",
            j.reason
        );
    }

    /// Under a filter, but the kernel logged no kill by it: the signal may still be forged.
    #[test]
    fn sigsys_under_a_filter_without_its_audit_record_is_not_a_block() {
        let j = settled(&sigsys(Some(filter_kill(false))));
        assert_eq!(j.verdict, Verdict::Inconclusive, "{}", j.reason);
        assert!(j.reason.contains("logged no filter kill"), "{}", j.reason);
    }

    #[test]
    fn a_filter_kill_the_kernel_recorded_blocks_and_names_the_syscall() {
        let j = settled(&sigsys(Some(filter_kill(true))));
        assert_eq!(j.verdict, Verdict::Blocked, "{}", j.reason);
        assert!(j.reason.contains("syscall keyctl"), "{}", j.reason);
        assert!(j.reason.contains("layer seccomp"), "{}", j.reason);
    }

    /// Another signal with filter evidence attached is still no block (the evidence is for
    /// SIGSYS only).
    #[test]
    fn other_signals_stay_inconclusive() {
        let outcome = Outcome {
            seccomp_kill: Some(filter_kill(true)),
            ..signaled(libc::SIGSEGV)
        };
        assert_eq!(settled(&outcome).verdict, Verdict::Inconclusive);
    }
}
