//! open-by-handle: open an outside file by its file handle ("shocker").

use crate::kit::handle::{name_to_handle, open_by_handle, Handle};
use crate::kit::{hex, judge_by_secret, parse_or_report, plant_canary_file, unhex};
use crate::world::{Planted, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use nix::errno::Errno;
use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Paths a sandbox's root usually shows (mount-ns binds them from the guest), tried in order as
/// the mount descriptor for open_by_handle_at: it must lie on the canary's filesystem.
const MOUNT_CANDIDATES: &[&str] = &["/etc", "/usr", "/bin", "/"];

static META: ProbeMeta = ProbeMeta {
    id: "open-by-handle",
    title: "Open an outside file by its handle (shocker)",
    technique: "open_by_handle_at(2) opens a file from a filesystem handle (inode number and \
        generation) relative to any descriptor on the same filesystem, with no path lookup, so \
        a bind-mounted directory or a chroot does not limit what it reaches. The outside takes \
        the handle of a secret file outside the sandbox root on the filesystem that also backs \
        /etc (on ext4 the handle is guessable by brute force, which is what the shocker exploit \
        did); the inside opens it through /etc. The kernel demands CAP_DAC_READ_SEARCH in the \
        initial user namespace.",
    oracle: "The inside reports the content of the secret file, which it can only reach through \
        the handle.",
    layers: &[
        Layer::Caps,
        Layer::UserNs,
        Layer::Uid,
        Layer::Seccomp,
        Layer::MountNs,
        Layer::Landlock,
    ],
    references: &[
        "shocker.c (Docker 0.11 escape, 2014)",
        "CDK cap-dac-read-search exploit",
    ],
    class: ProbeClass::Plain,
};

pub struct OpenByHandle;

struct State {
    _file: Planted,
    secret: String,
}

impl Probe for OpenByHandle {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let id = META.id;
        let (file, secret) = plant_canary_file(world, id, "handle-canary")?;
        let dev = fs::metadata(file.path())
            .map_err(|e| ProbeError::arrange(id, "stat of the canary", e))?
            .dev();
        let mount = MOUNT_CANDIDATES
            .iter()
            .find(|p| fs::metadata(p).map(|m| m.dev() == dev).unwrap_or(false))
            .ok_or_else(|| {
                ProbeError::unsupported(
                    id,
                    format!(
                        "none of {MOUNT_CANDIDATES:?} is on the filesystem of {} (the world \
                         directory must share a filesystem with what a sandbox root shows)",
                        file.path().display()
                    ),
                )
            })?;
        let handle = name_to_handle(None, file.path(), 0).map_err(|e| {
            if e == Errno::EOPNOTSUPP {
                ProbeError::unsupported(id, "the world's filesystem does not export file handles")
            } else {
                ProbeError::arrange(id, "name_to_handle_at of the canary", e.into())
            }
        })?;
        Ok(Arrangement::new(
            vec![
                kv("mount", mount),
                kv("type", handle.handle_type),
                kv("handle", hex(&handle.bytes)),
            ],
            State {
                _file: file,
                secret,
            },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        let parsed = parse_or_report(&mut steps, args, |a| {
            let bytes =
                unhex("handle", a.str("handle")?).map_err(|reason| crate::ArgError::Invalid {
                    key: "handle".into(),
                    value: a.opt_str("handle").unwrap_or("").into(),
                    reason,
                })?;
            Ok((
                a.str("mount")?.to_string(),
                Handle {
                    handle_type: a.get("type")?,
                    bytes,
                },
            ))
        });
        if let Some((mount, handle)) = parsed {
            attempt(&mut steps, Path::new(&mount), &handle);
        }
        steps.finish()
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        judge_by_secret(
            &arrangement,
            run,
            META.id,
            |s: &State| &s.secret,
            "the canary opened by handle",
        )
    }
}

fn attempt(steps: &mut Steps, mount: &Path, handle: &Handle) {
    let mount_fd = steps.io(
        "a descriptor on the target's filesystem",
        // Not O_PATH: open_by_handle_at refuses O_PATH descriptors (EBADF).
        format!("open({}, O_RDONLY)", mount.display()),
        || fs::File::open(mount).map(OwnedFd::from),
    );
    let Some(mount_fd) = mount_fd else { return };
    let file = steps.call(
        "open the canary by its handle",
        format!(
            "open_by_handle_at({}, type {}, {} bytes)",
            mount.display(),
            handle.handle_type,
            handle.bytes.len()
        ),
        || open_by_handle(mount_fd.as_fd(), handle, libc::O_RDONLY),
    );
    if let Some(mut file) = file {
        let mut content = String::new();
        if steps
            .io("read the canary", "read(handle fd)", || {
                file.read_to_string(&mut content)
            })
            .is_some()
        {
            steps.data(content.trim().to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::testing::{judge_needs_the_secret, temp_world};

    #[test]
    fn judge_escapes_only_with_the_secret() {
        let (_dir, world) = temp_world();
        judge_needs_the_secret(&OpenByHandle, &world, |s: &State| s.secret.clone());
    }

    #[test]
    fn a_bad_handle_is_reported() {
        let report = OpenByHandle.attempt(&[
            "mount=/nonexistent-breakout".into(),
            "type=1".into(),
            "handle=zz".into(),
        ]);
        assert_eq!(report.steps[0].action, "parse arguments");
        assert!(report.steps[0].data.as_deref().unwrap().contains("handle"));
    }

    #[test]
    fn handle_of_a_temp_file_is_taken() {
        // name_to_handle_at needs no privilege: the handle is not the secret, opening it is.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, "x").unwrap();
        match name_to_handle(None, &path, 0) {
            Ok(h) => assert!(!h.bytes.is_empty()),
            Err(e) => assert_eq!(e, Errno::EOPNOTSUPP, "unexpected errno {e}"),
        }
    }
}
