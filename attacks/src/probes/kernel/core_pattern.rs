//! core-pattern: rewrite kernel.core_pattern (the pipe helper the kernel runs as root).

use crate::kit::{conclude, parse_or_report, Oracle, SysctlRestore};
use crate::world::{ExclusiveGuard, World, EXCLUSIVE_WAIT};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use std::fs;
use std::io::Write;
use std::path::Path;

const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";

static META: ProbeMeta = ProbeMeta {
    id: "core-pattern",
    title: "Rewrite kernel.core_pattern",
    technique: "When core_pattern starts with '|', the kernel runs that program as root in the \
        initial namespaces on every crash, so whoever can write it runs code on the host (crash \
        any process afterwards). The sysctl file is root's with mode 0644 and the kernel asks no \
        capability: a container's root only needs a writable /proc/sys. The inside writes a \
        harmless '|/bin/false breakout-<nonce>' and crashes nothing; the outside restores the \
        old pattern at once.",
    oracle: "The outside reads kernel.core_pattern after the attempt and finds the nonce it gave \
        the inside (it then writes the original value back).",
    layers: &[
        Layer::FsHardening,
        Layer::Uid,
        Layer::UserNs,
        Layer::Caps,
        Layer::Seccomp,
        Layer::MountNs,
        Layer::Landlock,
    ],
    references: &[
        "CDK mount-procfs exploit (core_pattern escape)",
        "runc: /proc/sys mounted read-only by default",
    ],
    class: ProbeClass::Plain,
};

pub struct CorePattern;

struct State {
    sysctl: SysctlRestore,
    nonce: String,
    /// Released after the restore above (fields drop in order): one attempt at a time, so no
    /// attempt captures another's pattern as the "original".
    _exclusive: ExclusiveGuard,
}

/// The verdict on the pattern read after the attempt.
fn classify(current: &str, original: &str, nonce: &str) -> Oracle {
    if !nonce.is_empty() && current.contains(nonce) {
        Oracle::Hit(format!(
            "kernel.core_pattern became {current:?} (restored to {original:?})"
        ))
    } else if current != original {
        Oracle::Undecided(format!(
            "kernel.core_pattern changed to {current:?} without the nonce (restored)"
        ))
    } else {
        Oracle::Miss("kernel.core_pattern unchanged".to_string())
    }
}

impl Probe for CorePattern {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let id = META.id;
        let exclusive = world
            .exclusive("sysctl kernel.core_pattern", EXCLUSIVE_WAIT)
            .map_err(ProbeError::world(META.id))?;
        let nonce = world.fresh_secret().map_err(ProbeError::world(id))?;
        let sysctl = SysctlRestore::capture(Path::new(CORE_PATTERN))
            .map_err(|e| ProbeError::arrange(id, "reading kernel.core_pattern", e.into()))?;
        Ok(Arrangement::new(
            vec![
                kv("proc", "/proc"),
                kv("pattern", format!("|/bin/false breakout-{nonce}")),
            ],
            State {
                sysctl,
                nonce,
                _exclusive: exclusive,
            },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        if let Some((proc_dir, pattern)) = parse_or_report(&mut steps, args, |a| {
            Ok((a.str("proc")?.to_string(), a.str("pattern")?.to_string()))
        }) {
            let path = Path::new(&proc_dir).join("sys/kernel/core_pattern");
            steps.io(
                "rewrite the crash helper",
                format!("write({}, {pattern:?})", path.display()),
                || {
                    fs::OpenOptions::new()
                        .write(true)
                        .open(&path)?
                        .write(pattern.as_bytes())
                },
            );
        }
        steps.finish()
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        let Some(state) = arrangement.state::<State>() else {
            return Judgement::inconclusive("core-pattern: arrangement state of the wrong type");
        };
        let oracle = match state.sysctl.current() {
            Ok(current) => {
                let oracle = classify(&current, state.sysctl.original(), &state.nonce);
                match state.sysctl.restore() {
                    Ok(()) => oracle,
                    Err(e) => Oracle::Undecided(format!(
                        "{oracle:?}, and restoring kernel.core_pattern failed: {e}"
                    )),
                }
            }
            Err(e) => Oracle::Undecided(format!("reading kernel.core_pattern failed: {e}")),
        };
        conclude(oracle, run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_nonce_is_an_escape() {
        assert!(matches!(
            classify("|/bin/false breakout-abc", "core", "abc"),
            Oracle::Hit(_)
        ));
        assert!(matches!(classify("core", "core", "abc"), Oracle::Miss(_)));
        assert!(matches!(
            classify("|/x other", "core", "abc"),
            Oracle::Undecided(_)
        ));
        assert!(matches!(classify("core", "core", ""), Oracle::Miss(_)));
    }

    #[test]
    fn bad_arguments_are_reported() {
        let report = CorePattern.attempt(&["pattern=x".into()]);
        assert_eq!(report.steps[0].action, "parse arguments");
        assert!(report.steps[0].data.as_deref().unwrap().contains("proc"));
    }
}
