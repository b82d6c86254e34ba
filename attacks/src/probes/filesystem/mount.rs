//! mount: reveal a file the outside hid under an overmount, with a bind mount.

use crate::kit::{judge_by_secret, parse_or_report, read_step};
use crate::world::{Planted, World};
use crate::{
    Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError, ProbeMeta,
    RunObservation, Steps,
};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use std::fs;
use std::path::{Path, PathBuf};

static META: ProbeMeta = ProbeMeta {
    id: "mount",
    title: "Mount to see what the outside hid",
    technique:
        "The outside hides a secret file by mounting an empty tmpfs over its directory. The \
        inside bind-mounts the parent directory (non-recursively, so the tmpfs is not carried \
        along) onto a scratch directory and reads the file underneath: any mount(2) right over \
        the outside's mounts undoes what the mount table hides. The kernel refuses it without \
        CAP_SYS_ADMIN, and from a user namespace it refuses to reveal locked mounts (EINVAL).",
    oracle: "The inside reports the per-attempt secret that only exists under the outside's \
        overmount.",
    layers: &[
        Layer::Caps,
        Layer::UserNs,
        Layer::Uid,
        Layer::Seccomp,
        Layer::MountNs,
        Layer::Landlock,
    ],
    references: &[
        "CDK mount-disk / amicontained (mount as the first escape step)",
        "kernel do_loopback(): has_locked_children() check for mounts copied into a user namespace",
    ],
    class: ProbeClass::Plain,
};

pub struct MountProbe;

/// Tears the outside's mounts down before the directory is removed (field order = drop order).
struct State {
    _mounts: Overmount,
    _dir: Planted,
    secret: String,
}

struct Overmount {
    hidden: PathBuf,
    peek: PathBuf,
}

impl Drop for Overmount {
    fn drop(&mut self) {
        // The inside undoes its bind itself; MNT_DETACH here covers one it left behind (under no
        // sandbox it lands in the outside's namespace). EINVAL = nothing mounted: fine.
        let _ = umount2(&self.peek, MntFlags::MNT_DETACH);
        let _ = umount2(&self.hidden, MntFlags::MNT_DETACH);
    }
}

impl Probe for MountProbe {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let id = META.id;
        let dir = world.scratch_dir("mount").map_err(ProbeError::world(id))?;
        let secret = world.fresh_secret().map_err(ProbeError::world(id))?;
        let hidden = dir.path().join("hidden");
        let peek = dir.path().join("peek");
        for d in [&hidden, &peek] {
            fs::create_dir(d)
                .map_err(|e| ProbeError::arrange(id, format!("mkdir {}", d.display()), e))?;
        }
        fs::write(hidden.join("secret"), &secret)
            .map_err(|e| ProbeError::arrange(id, "writing the hidden secret", e))?;
        mount(
            Some("tmpfs"),
            &hidden,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("size=16k,mode=0755"),
        )
        .map_err(|e| {
            ProbeError::arrange(
                id,
                format!("mount tmpfs over {}", hidden.display()),
                e.into(),
            )
        })?;
        let args = vec![crate::kv("dir", dir.path().display())];
        Ok(Arrangement::new(
            args,
            State {
                _mounts: Overmount { hidden, peek },
                _dir: dir,
                secret,
            },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        if let Some(dir) = parse_or_report(&mut steps, args, |a| Ok(PathBuf::from(a.str("dir")?))) {
            attempt(&mut steps, &dir);
        }
        steps.finish()
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        judge_by_secret(
            &arrangement,
            run,
            META.id,
            |s: &State| &s.secret,
            "the file under the outside's overmount",
        )
    }
}

fn attempt(steps: &mut Steps, dir: &Path) {
    // A private mount namespace first, so nothing we mount propagates to the outside. Without
    // the right to make one, try in the namespace we are in.
    if steps
        .call("private mount namespace", "unshare(CLONE_NEWNS)", || {
            unshare(CloneFlags::CLONE_NEWNS)
        })
        .is_some()
    {
        steps.call(
            "stop propagation",
            "mount(NULL, \"/\", MS_REC|MS_PRIVATE)",
            || {
                mount::<str, str, str, str>(
                    None,
                    "/",
                    None,
                    MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                    None,
                )
            },
        );
    }
    let peek = dir.join("peek");
    let bound = steps
        .call(
            "bind the parent without its submounts",
            format!("mount({}, {}, MS_BIND)", dir.display(), peek.display()),
            || mount::<Path, Path, str, str>(Some(dir), &peek, None, MsFlags::MS_BIND, None),
        )
        .is_some();
    if !bound {
        return;
    }
    read_step(
        steps,
        "read the file under the overmount",
        &peek.join("hidden/secret"),
    );
    steps.call(
        "undo the bind",
        format!("umount2({}, MNT_DETACH)", peek.display()),
        || umount2(&peek, MntFlags::MNT_DETACH),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::testing::*;
    use crate::kit::{conclude, secret_oracle};
    use crate::Verdict;

    #[test]
    fn bad_arguments_are_reported() {
        let report = MountProbe.attempt(&["directory=/x".to_string()]);
        assert_eq!(report.steps[0].action, "parse arguments");
        assert!(report.steps[0].data.as_deref().unwrap().contains("dir"));
    }

    #[test]
    fn judge_needs_the_secret() {
        let run_ok = report_with(&["0011"]);
        let run = observe(Some(&run_ok), None);
        assert_eq!(
            conclude(secret_oracle(&run, "0011", "x"), &run).verdict,
            Verdict::Escaped
        );
        let failed = failed_report();
        let run = observe(Some(&failed), None);
        assert_eq!(
            conclude(secret_oracle(&run, "0011", "x"), &run).verdict,
            Verdict::Blocked
        );
    }
}
