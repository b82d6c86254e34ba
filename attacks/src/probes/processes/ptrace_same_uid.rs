//! ptrace-same-uid: the same attempt against a victim running as the sandbox's uid (1000).

use super::ptrace_outside::{arrange_victim, attempt_read, judge_read};
use crate::world::{VictimKind, World};
use crate::{
    Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError, ProbeMeta,
    RunObservation,
};

pub struct PtraceSameUid;

static META: ProbeMeta = ProbeMeta {
    id: "ptrace-same-uid",
    title: "ptrace an outside process of the sandbox's own uid",
    technique: "The payload attaches with PTRACE_ATTACH (and reads with process_vm_readv) to a \
        victim outside the sandbox that runs as uid 101000, the uid the `uid` layer gives the \
        payload. Between equal uids the kernel needs no capability, so dropping root does not \
        help here. Only hiding the victim (pid-ns), a user namespace that owns no victim, a \
        seccomp filter or Yama stop it.",
    oracle: "The victim's per-attempt secret (only in the victim's memory) appears in the \
        payload's report.",
    layers: &[
        Layer::PidNs,
        Layer::UserNs,
        Layer::Caps,
        Layer::Seccomp,
        Layer::Landlock,
    ],
    references: &[
        "ptrace(2) access mode checks",
        "Yama ptrace_scope",
        "CDK check_ptrace",
    ],
    class: ProbeClass::Plain,
};

impl Probe for PtraceSameUid {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }
    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        arrange_victim(META.id, world, VictimKind::SandboxUid)
    }
    fn attempt(&self, args: &[String]) -> InsideReport {
        attempt_read(META.id, args)
    }
    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        judge_read(arrangement, run, META.id)
    }
}
