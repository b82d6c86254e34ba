//! cgroup-path-leak: read the outside's cgroup path from /proc/self/cgroup.

use crate::kit::{judge_secret, with_args, wrong_state};
use crate::world::{SafetyCgroup, World};
use crate::{
    Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError, ProbeMeta,
    RunObservation,
};

pub struct CgroupPathLeak;

static META: ProbeMeta = ProbeMeta {
    id: "cgroup-path-leak",
    title: "learn the host's cgroup layout from /proc/self/cgroup",
    technique: "/proc/self/cgroup shows the full path of the process's cgroup from the root of \
        the hierarchy, which tells a payload how the host is organised (container ids, service \
        names) and which cgroup files to attack. The outside places the payload in a cgroup whose \
        name carries a fresh secret. A cgroup namespace rooted at the sandbox's cgroup shows \
        only `/`.",
    oracle: "The per-attempt secret (only in the outside's cgroup directory name) appears in the \
        payload's report.",
    layers: &[Layer::CgroupNs],
    references: &["cgroup_namespaces(7)", "CDK cgroup checks"],
    class: ProbeClass::Plain,
};

struct State {
    secret: String,
    _cgroup: SafetyCgroup,
}

impl Probe for CgroupPathLeak {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let secret = world.fresh_secret().map_err(ProbeError::world(META.id))?;
        let cgroup = world
            .safety_cgroup(&format!("leak-{secret}"), None, None)
            .map_err(ProbeError::world(META.id))?;
        let path = cgroup.path().to_path_buf();
        Ok(Arrangement::new(
            Vec::new(),
            State {
                secret,
                _cgroup: cgroup,
            },
        )
        .with_cgroup(path))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        with_args(META.id, args, |_args, steps| {
            if let Some(text) = steps.io(
                "read my cgroup path",
                "open+read(/proc/self/cgroup)",
                || std::fs::read_to_string("/proc/self/cgroup"),
            ) {
                steps.data(text.trim().to_string());
            }
            Ok(())
        })
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        let Ok(state) = arrangement.state.downcast::<State>() else {
            return wrong_state(META.id);
        };
        judge_secret(run, &state.secret, "the outside's cgroup name")
    }
}
