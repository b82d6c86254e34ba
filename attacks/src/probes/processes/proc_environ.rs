//! proc-environ: read an outside process's environment.

use crate::kit::{judge_by_secret, parse_or_report, read_step};
use crate::world::{Victim, VictimKind, VictimOptions, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use std::path::Path;

static META: ProbeMeta = ProbeMeta {
    id: "proc-environ",
    title: "Read another process's environment and command line",
    technique: "Processes carry secrets in their environment (API tokens, passwords passed by \
        orchestrators) and command lines. /proc/PID/environ shows the environment to whoever \
        passes the ptrace read check on PID (same uid and no more capabilities than the caller, \
        or CAP_SYS_PTRACE over it); /proc/PID/cmdline is world-readable. The inside reads both \
        for an outside root victim whose environment holds a fresh secret.",
    oracle: "The inside reports the secret from the victim's environment.",
    layers: &[
        Layer::PidNs,
        Layer::Uid,
        Layer::Caps,
        Layer::UserNs,
        Layer::Seccomp,
        Layer::Landlock,
    ],
    references: &[
        "BOtB -recon; CDK sensitive_env",
        "proc(5): /proc/pid/environ access mode",
    ],
    class: ProbeClass::Plain,
};

pub struct ProcEnviron;

struct State {
    _victim: Victim,
    secret: String,
}

impl Probe for ProcEnviron {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let id = META.id;
        let secret = world.fresh_secret().map_err(ProbeError::world(id))?;
        let victim = world
            .spawn_victim(VictimKind::Root, &secret, &VictimOptions::default())
            .map_err(ProbeError::world(id))?;
        Ok(Arrangement::new(
            vec![kv("pid", victim.pid())],
            State {
                _victim: victim,
                secret,
            },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        if let Some(pid) = parse_or_report(&mut steps, args, |a| a.get::<u32>("pid")) {
            let dir = Path::new("/proc").join(pid.to_string());
            read_step(
                &mut steps,
                "read the victim's environment",
                &dir.join("environ"),
            );
            read_step(
                &mut steps,
                "read the victim's command line",
                &dir.join("cmdline"),
            );
        }
        steps.finish()
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        judge_by_secret(
            &arrangement,
            run,
            META.id,
            |s: &State| &s.secret,
            "the secret in the victim's environment",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_arguments_are_reported() {
        let report = ProcEnviron.attempt(&[]);
        assert_eq!(report.steps[0].action, "parse arguments");
        assert!(report.steps[0].data.as_deref().unwrap().contains("pid"));
    }
}
