//! A payload that must keep some state alive until the outside has seen it (descriptors held, a
//! cgroup left for the kernel's release agent) says so and waits for the outside's word, instead
//! of holding it for a fixed time that a loaded guest may overrun.
//!
//! The inside blocks [`NUDGE_SIGNAL`] and takes a name (its comm) that only this attempt uses;
//! the outside, once it has seen what it needed, signals the processes of that name
//! ([`nudge_named`]). Blocked, the signal only ends the inside's wait, never the process. Where
//! the mask or the name cannot be set (a filter refusing rt_sigprocmask or prctl), the inside
//! holds for the fixed time it held before.

use super::watch::{Look, Watcher};
use nix::errno::Errno;
use nix::sys::signal::{kill, pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;
use std::ffi::{CStr, CString};
use std::time::{Duration, Instant};

/// What the outside sends a waiting payload.
pub const NUDGE_SIGNAL: Signal = Signal::SIGUSR1;

/// How [`hold_until_nudged`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// The outside's signal came.
    Nudged,
    /// No signal within the bound.
    TimedOut,
    /// The payload could not say it was waiting; it held for the fixed time instead.
    Fixed,
}

/// The inside's half: names itself `name` (at most 15 bytes, the kernel's TASK_COMM_LEN) and
/// waits up to `bound` for [`NUDGE_SIGNAL`]; holds `fixed` instead where it cannot. Call it from
/// the payload's only thread: a process-directed signal could otherwise land on a thread that
/// does not block it and end the process.
pub fn hold_until_nudged(name: &CStr, fixed: Duration, bound: Duration) -> Held {
    let hold_fixed = || {
        std::thread::sleep(fixed);
        Held::Fixed
    };
    let mut set = SigSet::empty();
    set.add(NUDGE_SIGNAL);
    if pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).is_err() {
        return hold_fixed();
    }
    // A signal left pending from before would end the wait before the outside looked.
    while wait_for(&set, Duration::ZERO) == Waited::Signal {}
    if nix::sys::prctl::set_name(name).is_err() {
        return hold_fixed();
    }
    let deadline = Instant::now() + bound;
    loop {
        match wait_for(&set, deadline.saturating_duration_since(Instant::now())) {
            Waited::Signal => return Held::Nudged,
            Waited::TimedOut => return Held::TimedOut,
            Waited::Interrupted => continue,
            Waited::Refused => return hold_fixed(),
        }
    }
}

/// The outside's half: sends [`NUDGE_SIGNAL`] to the process `pid` (as the outside's /proc
/// names it) when its comm is `name`; true when it was sent.
pub fn nudge_if_named(pid: i32, name: &CStr) -> bool {
    is_named(pid, name) && kill(Pid::from_raw(pid), NUDGE_SIGNAL).is_ok()
}

/// Sends [`NUDGE_SIGNAL`] to every process of the guest whose comm is `name` (a name unique to
/// one attempt); how many were signalled.
pub fn nudge_named(name: &CStr) -> usize {
    proc_pids().filter(|pid| nudge_if_named(*pid, name)).count()
}

/// The pids of the processes /proc lists (none where it cannot be read).
pub fn proc_pids() -> impl Iterator<Item = i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
}

/// A watcher like [`Watcher::first_hit`] whose hit also releases the payload: once `look` has
/// found something, it nudges the processes named `name` at every look until one was nudged
/// (the payload may take its name a moment after the outside saw its effect).
pub fn first_hit_then_nudge(
    interval: Duration,
    name: CString,
    mut look: impl FnMut() -> Option<String> + Send + 'static,
) -> Watcher<Option<String>> {
    Watcher::start(interval, None, move |seen: &mut Option<String>| {
        if seen.is_none() {
            *seen = look();
        }
        if seen.is_some() && nudge_named(&name) > 0 {
            Look::Enough
        } else {
            Look::Again
        }
    })
}

/// True when `/proc/<pid>/comm` is `name`.
pub fn is_named(pid: i32, name: &CStr) -> bool {
    std::fs::read(format!("/proc/{pid}/comm"))
        .is_ok_and(|c| c.strip_suffix(b"\n") == Some(name.to_bytes()))
}

#[derive(Debug, PartialEq, Eq)]
enum Waited {
    Signal,
    TimedOut,
    Interrupted,
    Refused,
}

/// sigtimedwait(2) for a blocked set.
fn wait_for(set: &SigSet, timeout: Duration) -> Waited {
    let ts = libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(timeout.subsec_nanos()),
    };
    // SAFETY: `set` is a valid sigset_t, the siginfo pointer may be null, and `ts` outlives the
    // call; the kernel writes nothing else.
    let r = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &ts) };
    if r >= 0 {
        return Waited::Signal;
    }
    match Errno::last() {
        Errno::EAGAIN => Waited::TimedOut,
        Errno::EINTR => Waited::Interrupted,
        _ => Waited::Refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_waits_for_its_nudge() {
        // A child process (the test harness has threads, the payload has not): it holds until
        // nudged, and exits 0 only when the nudge ended the wait.
        // SAFETY: the child only calls async-signal-safe functions and the wait, then _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let held = hold_until_nudged(
                    c"bo-test-nudge",
                    Duration::from_secs(30),
                    Duration::from_secs(30),
                );
                // SAFETY: _exit ends the child without running the parent's destructors.
                unsafe { libc::_exit(if held == Held::Nudged { 0 } else { 1 }) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let start = Instant::now();
                while !nudge_if_named(child.as_raw(), c"bo-test-nudge") {
                    assert!(start.elapsed() < Duration::from_secs(20), "never named");
                    std::thread::sleep(Duration::from_millis(5));
                }
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
                assert!(start.elapsed() < Duration::from_secs(20));
            }
        }
    }
}
