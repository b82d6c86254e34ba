//! hostname: change the host's hostname (restored by the outside afterwards).

use crate::kit::{with_args, wrong_state};
use crate::world::{ExclusiveGuard, World, EXCLUSIVE_WAIT};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation,
};

pub struct Hostname;

static META: ProbeMeta = ProbeMeta {
    id: "hostname",
    title: "change the host's hostname",
    technique: "The payload calls sethostname() with a fresh name the outside chose. A bare root \
        process with CAP_SYS_ADMIN renames the whole machine, confusing logs, certificates and \
        cluster membership. A UTS namespace gives the sandbox a hostname of its own, so the \
        change stays inside; the outside restores the original name afterwards either way.",
    oracle: "The outside's own hostname (uname -n, read outside the sandbox) equals the name the \
        payload was asked to set.",
    layers: &[
        Layer::UtsNs,
        Layer::Caps,
        Layer::Uid,
        Layer::UserNs,
        Layer::Seccomp,
    ],
    references: &["runtime-tools hostname", "uts_namespaces(7)"],
    class: ProbeClass::Plain,
};

/// Puts the original hostname back when dropped, then lets the next attempt have it.
struct Restore {
    original: std::ffi::OsString,
    wanted: String,
    /// Dropped after `drop` below has restored the name (fields drop after the struct).
    _hold: ExclusiveGuard,
}

impl Drop for Restore {
    fn drop(&mut self) {
        // Best effort in Drop; judge already restored and reported a failure if there was one.
        if nix::unistd::gethostname().ok().as_ref() != Some(&self.original) {
            let _ = nix::unistd::sethostname(&self.original);
        }
    }
}

impl Probe for Hostname {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let secret = world.fresh_secret().map_err(ProbeError::world(META.id))?;
        // Parallel attempts would overwrite each other's name and each judge the other's.
        let hold = world
            .exclusive("hostname", EXCLUSIVE_WAIT)
            .map_err(ProbeError::world(META.id))?;
        let original = nix::unistd::gethostname().map_err(|errno| ProbeError::Arrange {
            probe: META.id,
            step: "gethostname".into(),
            source: std::io::Error::from(errno),
        })?;
        let wanted = format!("bh-{}", &secret[..16]);
        Ok(Arrangement::new(
            vec![kv("name", &wanted)],
            Restore {
                original,
                wanted,
                _hold: hold,
            },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        with_args(META.id, args, |args, steps| {
            let name = args.str("name")?;
            steps.call(
                "rename the machine",
                format!("sethostname({name:?})"),
                || nix::unistd::sethostname(name),
            );
            Ok(())
        })
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        let Ok(state) = arrangement.state.downcast::<Restore>() else {
            return wrong_state(META.id);
        };
        let now = match nix::unistd::gethostname() {
            Ok(n) => n,
            Err(e) => return Judgement::inconclusive(format!("gethostname outside failed: {e}")),
        };
        if now.to_string_lossy() == state.wanted {
            let restored = nix::unistd::sethostname(&state.original);
            Judgement::escaped(format!(
                "the outside's hostname became {:?} (restored to {:?}: {})",
                state.wanted,
                state.original,
                restored.map_or_else(|e| format!("FAILED {e}"), |_| "ok".into())
            ))
        } else {
            let evidence = run
                .inside
                .map(|r| r.failures())
                .unwrap_or_else(|| "no inside report".into());
            Judgement::blocked(format!(
                "the outside's hostname is still {now:?}; {evidence}"
            ))
        }
    }
}
