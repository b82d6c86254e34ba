//! scm-rights-abstract: the same import over an abstract unix socket, which no mount namespace
//! hides (abstract names belong to the network namespace).

use super::scm_rights_import::{arrange_server, attempt_import, judge_import};
use crate::world::World;
use crate::{
    Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError, ProbeMeta,
    RunObservation,
};

pub struct ScmRightsAbstract;

static META: ProbeMeta = ProbeMeta {
    id: "scm-rights-abstract",
    title: "import an outside directory descriptor over an abstract unix socket",
    technique: "An outside service listens on an abstract unix socket (a name starting with a NUL \
        byte, not a file) and hands every client a descriptor of an outside directory with \
        SCM_RIGHTS. The payload connects by name, receives the descriptor and opens the secret \
        relative to it. Abstract names live in the network namespace, so a mount namespace does \
        not hide them; only a network namespace (or a filter, or Landlock scoping) does.",
    oracle: "The per-attempt secret from the file in the handed-out directory appears in the \
        payload's report (the server also counts the clients it served).",
    layers: &[Layer::NetNs, Layer::Seccomp, Layer::Landlock],
    references: &[
        "CVE-2020-15257 (containerd-shim abstract socket)",
        "unix(7) abstract namespace",
    ],
    class: ProbeClass::Plain,
};

impl Probe for ScmRightsAbstract {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }
    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        arrange_server(META.id, world, |w, dir| w.serve_dir_fd_abstract(dir))
    }
    fn attempt(&self, args: &[String]) -> InsideReport {
        attempt_import(META.id, args)
    }
    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        judge_import(arrangement, run, META.id)
    }
}
