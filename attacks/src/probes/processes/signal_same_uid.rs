//! signal-same-uid: SIGKILL an outside victim running as the sandbox's uid (1000).

use super::signal_outside::{arrange_kill, attempt_kill, judge_kill};
use crate::world::{VictimKind, World};
use crate::{
    Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError, ProbeMeta,
    RunObservation,
};

pub struct SignalSameUid;

static META: ProbeMeta = ProbeMeta {
    id: "signal-same-uid",
    title: "kill an outside process of the sandbox's own uid",
    technique: "The payload sends SIGKILL to a victim outside the sandbox running as the sandbox's outside uid (101000), \
        the uid the `uid` layer runs the payload as. A signal between equal uids needs no \
        capability, even across user namespaces, so dropping to that uid does not help. Only a \
        pid namespace (the victim is invisible) or a seccomp filter stops it; a root payload \
        without CAP_KILL is refused too. \
        Landlock stops it only where the kernel scopes signals (ABI 6, Linux 6.12; not on Debian 12's 6.1).",
    oracle: "The victim is dead, as seen through the pidfd the outside holds on it.",
    layers: &[Layer::PidNs, Layer::Caps, Layer::UserNs, Layer::Seccomp, Layer::Landlock],
    references: &["kill(2) permission rules"],
    class: ProbeClass::Plain,
};

impl Probe for SignalSameUid {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }
    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        arrange_kill(META.id, world, VictimKind::SandboxUid)
    }
    fn attempt(&self, args: &[String]) -> InsideReport {
        attempt_kill(META.id, args)
    }
    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        judge_kill(arrangement, run, META.id)
    }
}
