//! root-owned-file: read a file the host's root owns with mode 0600.

use crate::kit::{judge_by_secret, parse_or_report, read_step};
use crate::world::{Planted, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use std::path::PathBuf;

static META: ProbeMeta = ProbeMeta {
    id: "root-owned-file",
    title: "Read a file only the host's root may read",
    technique: "File permissions compare the caller's uid as the host sees it with the file's \
        owner: a process whose uid is the host's 0 reads a root-owned mode 0600 file without any \
        capability, whatever namespace it sits in. A user namespace that maps the sandbox's root \
        to the host's root (the map `0 0 1`) therefore leaves every root-owned file the sandbox \
        can see open to it, and so does a payload left running as root. The outside plants a \
        fresh secret in a root-owned 0600 file in a directory the sandbox's root shows (under \
        /usr); the inside opens and reads it.",
    oracle: "The inside reports the secret of the root-owned 0600 file, written freshly for this \
        attempt.",
    layers: &[Layer::UserNs, Layer::Uid],
    references: &[
        "user_namespaces(7): unmapped ids and permission checks",
        "podman subordinate ids (subuid(5)), Docker userns-remap",
    ],
    class: ProbeClass::Plain,
};

pub struct RootOwnedFile;

struct State {
    _dir: Planted,
    secret: String,
}

impl Probe for RootOwnedFile {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let id = META.id;
        let secret = world.fresh_secret().map_err(ProbeError::world(id))?;
        let dir = world
            .shared_scratch_dir("root-owned-file")
            .map_err(ProbeError::world(id))?;
        let file = dir.path().join("secret");
        // The world runs as root, so the new file is root's.
        crate::world::write_new_file(&file, &secret, 0o600).map_err(ProbeError::world(id))?;
        Ok(Arrangement::new(
            vec![kv("secret", file.display())],
            State { _dir: dir, secret },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        if let Some(path) =
            parse_or_report(&mut steps, args, |a| Ok(PathBuf::from(a.str("secret")?)))
        {
            read_step(&mut steps, "read the root-owned 0600 file", &path);
        }
        steps.finish()
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        judge_by_secret(
            &arrangement,
            run,
            META.id,
            |s: &State| &s.secret,
            "the root-owned 0600 file",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_arguments_are_reported() {
        let report = RootOwnedFile.attempt(&[]);
        assert_eq!(report.steps[0].action, "parse arguments");
    }
}
