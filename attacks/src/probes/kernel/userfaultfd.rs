//! userfaultfd: create a userfaultfd, the classic stabiliser of kernel exploits.

use crate::kit::{conclude, parse_or_report, Oracle};
use crate::world::{first_hit_then_nudge, hold_until_nudged, Watcher, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use nix::errno::Errno;
use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// What readlink of a userfaultfd descriptor shows in /proc/PID/fd.
const UFFD_LINK: &str = "anon_inode:[userfaultfd]";

/// UFFD_API and the UFFDIO_API ioctl (_IOWR(0xAA, 0x3F, struct uffdio_api)).
const UFFD_API: u64 = 0xAA;
const UFFDIO_API: libc::c_ulong = 0xc018_aa3f;

/// How long the inside keeps the descriptor where it cannot hear from the outside (its signal
/// mask or name cannot be set), so the outside's watcher sees it.
const HOLD_MS: u64 = 1500;

/// The longest the inside keeps the descriptor waiting for the outside's word that it saw it
/// (the watcher nudges the inside, named after the nonce, on its first sight).
const SEEN_BOUND_MS: u64 = 5000;

/// The name the inside waits under: the nonce's first 15 bytes (a comm's most), unique to the
/// attempt.
fn waiting_comm(nonce: &str) -> Option<CString> {
    CString::new(nonce.get(..15).unwrap_or(nonce)).ok()
}

static META: ProbeMeta = ProbeMeta {
    id: "userfaultfd",
    title: "Create a userfaultfd",
    technique: "A userfaultfd lets a process handle page faults of its own memory, so it can \
        stop the kernel in the middle of a copy_from_user at a moment it chooses: the standard \
        way to win the races of use-after-free exploits. With vm.unprivileged_userfaultfd=0 \
        (the default) a userfaultfd that also catches kernel-mode faults needs CAP_SYS_PTRACE \
        in the initial user namespace. The inside creates one (without UFFD_USER_MODE_ONLY), \
        completes the API handshake and holds it for a moment.",
    oracle: "While the payload runs, the outside scans /proc and finds a userfaultfd descriptor \
        in the process whose command line carries the per-attempt nonce.",
    layers: &[Layer::Caps, Layer::UserNs, Layer::Uid, Layer::Seccomp],
    references: &[
        "vm.unprivileged_userfaultfd (Documentation/admin-guide/sysctl/vm.rst)",
        "Docker's default seccomp profile blocks userfaultfd",
    ],
    class: ProbeClass::Plain,
};

pub struct Userfaultfd;

struct State {
    watcher: Option<Watcher<Option<String>>>,
    nonce: String,
}

/// The pid of a process whose command line contains `nonce` and that holds a userfaultfd.
fn find_holder(nonce: &str) -> Option<String> {
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if !String::from_utf8_lossy(&cmdline).contains(nonce) {
            continue;
        }
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == UFFD_LINK) {
                return Some(format!("pid {pid} holds a userfaultfd"));
            }
        }
    }
    None
}

fn create_uffd() -> Result<OwnedFd, Errno> {
    // SAFETY: userfaultfd(2) takes only flags; a non-negative result is a fresh descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK) };
    let fd = Errno::result(fd)? as i32;
    // SAFETY: fd is fresh and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// struct uffdio_api { u64 api; u64 features; u64 ioctls; }
#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

fn handshake(fd: &OwnedFd) -> Result<i32, Errno> {
    let mut api = UffdioApi {
        api: UFFD_API,
        features: 0,
        ioctls: 0,
    };
    // SAFETY: UFFDIO_API reads and writes one struct uffdio_api, which `api` is.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_API, &mut api as *mut UffdioApi) };
    Errno::result(r)
}

impl Probe for Userfaultfd {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let salt = world.fresh_secret().map_err(ProbeError::world(META.id))?;
        let nonce = format!("uffd-{}", &salt[..16]);
        let wanted = nonce.clone();
        let comm = waiting_comm(&nonce).ok_or_else(|| {
            ProbeError::arrange(
                META.id,
                "naming the attempt",
                std::io::Error::from(std::io::ErrorKind::InvalidData),
            )
        })?;
        let watcher = first_hit_then_nudge(Duration::from_millis(10), comm, move || {
            find_holder(&wanted)
        });
        Ok(Arrangement::new(
            vec![
                kv("nonce", &nonce),
                kv("hold_ms", HOLD_MS),
                kv("bound_ms", SEEN_BOUND_MS),
            ],
            State {
                watcher: Some(watcher),
                nonce,
            },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        // The nonce only marks this process's command line for the outside's scan.
        if let Some((nonce, hold, bound)) = parse_or_report(&mut steps, args, |a| {
            Ok((
                a.str("nonce")?.to_string(),
                a.get::<u64>("hold_ms")?,
                a.get::<u64>("bound_ms")?,
            ))
        }) {
            let fd = steps.call(
                "create a userfaultfd that also traps kernel-mode faults",
                "userfaultfd(O_CLOEXEC|O_NONBLOCK)",
                create_uffd,
            );
            if let Some(fd) = fd {
                steps.call("API handshake", "ioctl(UFFDIO_API)", || handshake(&fd));
                // Held until the outside has seen it (it nudges us), or `hold` where we cannot
                // hear from it.
                let hold = Duration::from_millis(hold);
                match waiting_comm(&nonce) {
                    Some(comm) => {
                        hold_until_nudged(&comm, hold, Duration::from_millis(bound));
                    }
                    None => std::thread::sleep(hold),
                }
            }
        }
        steps.finish()
    }

    fn judge(
        &self,
        _world: &World,
        mut arrangement: Arrangement,
        run: &RunObservation,
    ) -> Judgement {
        let Some(state) = arrangement.state.downcast_mut::<State>() else {
            return Judgement::inconclusive("userfaultfd: arrangement state of the wrong type");
        };
        let oracle = match state.watcher.take().and_then(|w| w.finish().flatten()) {
            Some(seen) => Oracle::Hit(seen),
            None => Oracle::Miss(format!(
                "no process with nonce {} ever held a userfaultfd",
                state.nonce
            )),
        };
        conclude(oracle, run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_holder_for_an_unknown_nonce() {
        assert_eq!(find_holder("breakout-no-such-nonce-0b9e"), None);
    }

    #[test]
    fn bad_arguments_are_reported() {
        let report = Userfaultfd.attempt(&["hold_ms=10".into()]);
        assert_eq!(report.steps[0].action, "parse arguments");
        assert!(report.steps[0].data.as_deref().unwrap().contains("nonce"));
    }
}
