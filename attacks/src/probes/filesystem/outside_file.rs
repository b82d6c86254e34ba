//! outside-file: read a file of the outside by its own path.

use crate::kit::{judge_by_secret, parse_or_report, plant_canary_file, read_step};
use crate::world::{Planted, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use std::path::PathBuf;

static META: ProbeMeta = ProbeMeta {
    id: "outside-file",
    title: "Read a file outside the sandbox's trees by its own path",
    technique: "The simplest filesystem escape: open a file the sandbox was never meant to \
        see, by the path it has outside. A sandbox without its own mount namespace shares the \
        outside's whole tree, so the outside's world directory (/srv/breakout) is right there; \
        only a layer that hides the path, refuses the uid, or refuses the access by policy \
        stops the read. The file is root's and mode 0600.",
    oracle: "The inside reports the fresh per-attempt secret of a root-only file in the outside's \
        world directory, which no sandbox root contains and no read-only bind covers.",
    layers: &[Layer::MountNs, Layer::UserNs, Layer::Uid, Layer::Landlock],
    references: &[
        "Landlock: unprivileged access control (Documentation/userspace-api/landlock.rst)",
        "a sandbox sharing the host's mount tree (bind-everything setups, --privileged)",
    ],
    class: ProbeClass::Plain,
};

pub struct OutsideFile;

struct State {
    _file: Planted,
    secret: String,
}

impl Probe for OutsideFile {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let (file, secret) = plant_canary_file(world, META.id, "outside-file-canary")?;
        Ok(Arrangement::new(
            vec![kv("path", file.path().display())],
            State {
                _file: file,
                secret,
            },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        if let Some(path) = parse_or_report(&mut steps, args, |a| Ok(PathBuf::from(a.str("path")?)))
        {
            read_step(&mut steps, "read the outside file by its path", &path);
        }
        steps.finish()
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        judge_by_secret(
            &arrangement,
            run,
            META.id,
            |s: &State| &s.secret,
            "the outside file's secret",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::testing::{judge_needs_the_secret, temp_world};

    #[test]
    fn judge_escapes_only_with_the_secret() {
        let (_dir, world) = temp_world();
        judge_needs_the_secret(&OutsideFile, &world, |s: &State| s.secret.clone());
    }

    #[test]
    fn bad_arguments_are_reported() {
        let report = OutsideFile.attempt(&[]);
        assert_eq!(report.steps[0].action, "parse arguments");
    }

    #[test]
    fn reads_the_file_it_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "abc123").unwrap();
        let report = OutsideFile.attempt(&[kv("path", path.display())]);
        assert!(report.step_with("abc123").is_some(), "{report:?}");
    }
}
