//! leaked-fds: use a directory descriptor the outside left open across the launch.

use super::scm_rights_import::read_through;
use crate::kit::{judge_secret, with_args, wrong_state};
use crate::world::{write_new_file, Planted, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation,
};
use nix::fcntl::{open, OFlag};
use nix::sys::stat::{fstat, Mode, SFlag};
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};

pub struct LeakedFds;

/// The descriptors the inside scans (3..=MAX_FD).
const MAX_FD: RawFd = 1024;

const SECRET_NAME: &str = "leaked-secret";

static META: ProbeMeta = ProbeMeta {
    id: "leaked-fds",
    title: "climb out through an inherited directory descriptor",
    technique: "A runtime that forgets to close its own descriptors hands them to the payload: a \
        directory descriptor outside the sandbox root lets openat() reach files there, whatever \
        the mount namespace says (runc's CVE-2024-21626 leaked such a descriptor as the \
        working directory). The outside leaves a directory descriptor without O_CLOEXEC open \
        across the launch; the payload scans its descriptors and opens the secret relative to \
        every directory it finds.",
    oracle: "The per-attempt secret in the leaked directory appears in the payload's report.",
    layers: &[Layer::FdHygiene, Layer::Seccomp, Layer::Landlock],
    references: &["CVE-2024-21626", "close_range(2)"],
    class: ProbeClass::Plain,
};

struct State {
    secret: String,
    leaked: OwnedFd,
    _dir: Planted,
}

impl Probe for LeakedFds {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let secret = world.fresh_secret().map_err(ProbeError::world(META.id))?;
        let dir = world
            .scratch_dir("leaked-dir")
            .map_err(ProbeError::world(META.id))?;
        write_new_file(&dir.path().join(SECRET_NAME), &secret, 0o444)
            .map_err(ProbeError::world(META.id))?;
        // Deliberately without O_CLOEXEC: this is the leak the probe is about.
        let fd = open(
            dir.path(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .map_err(|errno| ProbeError::Arrange {
            probe: META.id,
            step: format!("open({}) without O_CLOEXEC", dir.path().display()),
            source: std::io::Error::from(errno),
        })?;
        // SAFETY: `open` just returned this descriptor and nothing else owns it.
        let leaked = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Arrangement::new(
            vec![kv("file", SECRET_NAME), kv("max_fd", MAX_FD)],
            State {
                secret,
                leaked,
                _dir: dir,
            },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        with_args(META.id, args, |args, steps| {
            let file = args.str("file")?;
            let max_fd: RawFd = args.get("max_fd")?;
            let mut dirs = Vec::new();
            for fd in 3..=max_fd {
                if let Ok(st) = fstat(fd) {
                    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
                        dirs.push(fd);
                    }
                }
            }
            steps.note(
                "scan inherited descriptors",
                format!("directory descriptors among 3..={max_fd}: {dirs:?}"),
            );
            for fd in dirs {
                // SAFETY: fd is open in this process (fstat succeeded); we borrow it briefly to
                // duplicate it and never close the original.
                let dup = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned();
                if let Ok(dup) = dup {
                    read_through(steps, &dup, file);
                }
            }
            Ok(())
        })
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        let Ok(state) = arrangement.state.downcast::<State>() else {
            return wrong_state(META.id);
        };
        use std::os::fd::AsRawFd;
        let what = format!(
            "outside directory left open as fd {}",
            state.leaked.as_raw_fd()
        );
        judge_secret(run, &state.secret, &what)
    }
}
