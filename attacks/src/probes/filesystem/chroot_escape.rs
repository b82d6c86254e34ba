//! chroot-escape: climb out of a chroot with a second chroot.

use crate::kit::{judge_by_secret, parse_or_report, plant_canary_file, read_step, scratch_name};
use crate::world::{Planted, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use nix::unistd::{chdir, chroot};
use std::fs;
use std::path::Path;

/// More ".." than any real path is deep; the walk stops at the real root anyway.
const CLIMB: usize = 64;

static META: ProbeMeta = ProbeMeta {
    id: "chroot-escape",
    title: "Leave a chroot with the double-chroot trick",
    technique: "chroot(2) changes only the root a path lookup starts from; it does not move the \
        current directory. A process that may call chroot makes a subdirectory its root while \
        its working directory stays outside, then walks up with '..' to the real root and \
        chroots there. A sandbox that uses pivot_root in a mount namespace and detaches the old \
        root leaves nothing above its root to climb to. The inside first simply tries the path.",
    oracle: "The inside reports the secret of a root-only file in the outside's world directory.",
    layers: &[
        Layer::MountNs,
        Layer::Uid,
        Layer::Caps,
        Layer::UserNs,
        Layer::Seccomp,
        Layer::Landlock,
    ],
    references: &[
        "youki/runc no_pivot tests (chroot instead of pivot_root is escapable)",
        "chroot(2) NOTES: the double-chroot escape",
    ],
    class: ProbeClass::Plain,
};

pub struct ChrootEscape;

struct State {
    _file: Planted,
    secret: String,
}

impl Probe for ChrootEscape {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let id = META.id;
        let (file, secret) = plant_canary_file(world, id, "chroot-canary")?;
        Ok(Arrangement::new(
            vec![kv("canary", file.path().display()), kv("scratch", "/tmp")],
            State {
                _file: file,
                secret,
            },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        if let Some((canary, scratch)) = parse_or_report(&mut steps, args, |a| {
            Ok((a.str("canary")?.to_string(), a.str("scratch")?.to_string()))
        }) {
            attempt(&mut steps, Path::new(&canary), Path::new(&scratch));
        }
        steps.finish()
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        judge_by_secret(
            &arrangement,
            run,
            META.id,
            |s: &State| &s.secret,
            "the outside's canary",
        )
    }
}

fn attempt(steps: &mut Steps, canary: &Path, scratch: &Path) {
    if read_step(steps, "read the canary by its path", canary).is_some() {
        return;
    }
    let jail = scratch.join(scratch_name("breakout-chroot"));
    if steps
        .io(
            "a directory to chroot into",
            format!("mkdir({})", jail.display()),
            || fs::create_dir(&jail),
        )
        .is_none()
    {
        return;
    }
    let entered = steps
        .call(
            "chroot below the current directory",
            format!("chroot({})", jail.display()),
            || chroot(&jail),
        )
        .is_some();
    // The directory stays behind either way; after a chroot its path is no longer reachable.
    if !entered {
        steps.io("clean up", format!("rmdir({})", jail.display()), || {
            fs::remove_dir(&jail)
        });
        return;
    }
    steps.call(
        "climb up from outside the new root",
        format!("chdir(\"..\") x {CLIMB}"),
        || {
            for _ in 0..CLIMB {
                chdir("..")?;
            }
            Ok(())
        },
    );
    if steps
        .call("make the top the root again", "chroot(\".\")", || {
            chroot(".")
        })
        .is_some()
    {
        read_step(steps, "read the canary after the climb", canary);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::testing::{judge_needs_the_secret, temp_world};

    #[test]
    fn judge_escapes_only_with_the_secret() {
        let (_dir, world) = temp_world();
        judge_needs_the_secret(&ChrootEscape, &world, |s: &State| s.secret.clone());
    }

    #[test]
    fn bad_arguments_are_reported() {
        let report = ChrootEscape.attempt(&["canary=/x".into()]);
        assert_eq!(report.steps[0].action, "parse arguments");
        assert!(report.steps[0].data.as_deref().unwrap().contains("scratch"));
    }
}
