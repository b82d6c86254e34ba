//! proc-root: read an outside file through a victim's /proc/PID/root.

use crate::kit::{judge_by_secret, parse_or_report, plant_canary_file, read_step, through_root};
use crate::world::{Planted, Victim, VictimKind, VictimOptions, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use std::path::PathBuf;

static META: ProbeMeta = ProbeMeta {
    id: "proc-root",
    title: "Walk into another process's root through /proc/PID/root",
    technique: "/proc/PID/root is a magic link to the root directory of process PID, in its \
        mount namespace: opening a path through it resolves the path as that process sees its \
        filesystem. If the inside can see an outside process in /proc and passes the ptrace \
        access check, it reads any file of the outside's filesystem, whatever its own mount \
        namespace shows. The inside tries the outside victim's root and that of PID 1.",
    oracle: "The inside reports the secret of a file in the outside's world directory, which no \
        sandbox root contains.",
    layers: &[
        Layer::PidNs,
        Layer::Uid,
        Layer::Caps,
        Layer::UserNs,
        Layer::Seccomp,
        Layer::Landlock,
    ],
    references: &[
        "proc(5): /proc/pid/root, ptrace access mode PTRACE_MODE_READ_FSCREDS",
        "CVE-2019-5736-style host access through /proc of host processes",
    ],
    class: ProbeClass::Plain,
};

pub struct ProcRoot;

struct State {
    _victim: Victim,
    _file: Planted,
    secret: String,
}

impl Probe for ProcRoot {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let id = META.id;
        let (file, secret) = plant_canary_file(world, id, "proc-root-canary")?;
        // The victim holds an unrelated secret: the oracle is the file, reached through its root.
        let decoy = world.fresh_secret().map_err(ProbeError::world(id))?;
        let victim = world
            .spawn_victim(VictimKind::Root, &decoy, &VictimOptions::default())
            .map_err(ProbeError::world(id))?;
        Ok(Arrangement::new(
            vec![kv("pid", victim.pid()), kv("path", file.path().display())],
            State {
                _victim: victim,
                _file: file,
                secret,
            },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        if let Some((pid, path)) = parse_or_report(&mut steps, args, |a| {
            Ok((a.get::<u32>("pid")?, PathBuf::from(a.str("path")?)))
        }) {
            for target in [pid, 1] {
                let through = through_root(target, &path);
                if read_step(&mut steps, "read through the process's root", &through).is_some() {
                    break;
                }
            }
        }
        steps.finish()
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        judge_by_secret(
            &arrangement,
            run,
            META.id,
            |s: &State| &s.secret,
            "the outside file reached through /proc/PID/root",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_arguments_are_reported() {
        let report = ProcRoot.attempt(&["pid=self".into(), "path=/x".into()]);
        assert_eq!(report.steps[0].action, "parse arguments");
        assert!(report.steps[0].data.as_deref().unwrap().contains("pid"));
    }
}
