//! reboot: use reboot(2)'s authority, harmlessly (the Ctrl-Alt-Del switch).

use crate::kit::{conclude, parse_or_report, Oracle, SysctlRestore};
use crate::world::{ExclusiveGuard, World, EXCLUSIVE_WAIT};
use crate::{
    kv, ArgError, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass,
    ProbeError, ProbeMeta, RunObservation, Steps,
};
use std::path::Path;

const CAD_SYSCTL: &str = "/proc/sys/kernel/ctrl-alt-del";

static META: ProbeMeta = ProbeMeta {
    id: "reboot",
    title: "Call reboot(2) on the whole machine",
    technique: "reboot(2) halts, powers off, restarts or kexecs the machine; inside a PID \
        namespace the kernel turns restart and power-off into ending that namespace instead, \
        and it refuses everything without CAP_SYS_BOOT. To prove the authority without taking \
        the guest down, the inside uses the one harmless command of the same call: switching \
        what Ctrl-Alt-Del does (LINUX_REBOOT_CMD_CAD_ON/OFF), a machine-wide setting. The same \
        checks guard RB_POWER_OFF, so whoever can flip it can power the machine off.",
    oracle: "kernel.ctrl-alt-del, read by the outside, flipped to the value the inside was told \
        to set (the outside then restores it).",
    layers: &[
        Layer::Caps,
        Layer::PidNs,
        Layer::UserNs,
        Layer::Uid,
        Layer::Seccomp,
    ],
    references: &[
        "amicontained (reboot among the blocked syscalls)",
        "reboot(2): behaviour in a PID namespace",
    ],
    class: ProbeClass::Plain,
};

pub struct Reboot;

struct State {
    sysctl: SysctlRestore,
    want: bool,
    /// Released after the restore above: one attempt at a time.
    _exclusive: ExclusiveGuard,
}

/// The verdict on kernel.ctrl-alt-del after the attempt ("0" = off, anything else = on).
fn classify(current: &str, original: &str, want: bool) -> Oracle {
    let on = current.trim() != "0";
    if current != original && on == want {
        Oracle::Hit(format!(
            "kernel.ctrl-alt-del went from {original} to {current} (restored)"
        ))
    } else {
        Oracle::Miss(format!("kernel.ctrl-alt-del unchanged ({current})"))
    }
}

impl Probe for Reboot {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let exclusive = world
            .exclusive("sysctl kernel.ctrl-alt-del", EXCLUSIVE_WAIT)
            .map_err(ProbeError::world(META.id))?;
        let sysctl = SysctlRestore::capture(Path::new(CAD_SYSCTL))
            .map_err(|e| ProbeError::arrange(META.id, "reading kernel.ctrl-alt-del", e.into()))?;
        let want = sysctl.original().trim() == "0";
        Ok(Arrangement::new(
            vec![kv("cad", if want { "on" } else { "off" })],
            State {
                sysctl,
                want,
                _exclusive: exclusive,
            },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        let want = parse_or_report(&mut steps, args, |a| match a.str("cad")? {
            "on" => Ok(true),
            "off" => Ok(false),
            other => Err(ArgError::Invalid {
                key: "cad".into(),
                value: other.into(),
                reason: "expected on or off".into(),
            }),
        });
        if let Some(want) = want {
            let cmd = if want {
                "LINUX_REBOOT_CMD_CAD_ON"
            } else {
                "LINUX_REBOOT_CMD_CAD_OFF"
            };
            steps.call(
                "switch Ctrl-Alt-Del machine-wide",
                format!("reboot({cmd})"),
                || nix::sys::reboot::set_cad_enabled(want),
            );
        }
        steps.finish()
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        let Some(state) = arrangement.state::<State>() else {
            return Judgement::inconclusive("reboot: arrangement state of the wrong type");
        };
        let oracle = match state.sysctl.current() {
            Ok(current) => {
                let oracle = classify(&current, state.sysctl.original(), state.want);
                match state.sysctl.restore() {
                    Ok(()) => oracle,
                    Err(e) => Oracle::Undecided(format!(
                        "{oracle:?}, and restoring kernel.ctrl-alt-del failed: {e}"
                    )),
                }
            }
            Err(e) => Oracle::Undecided(format!("reading kernel.ctrl-alt-del failed: {e}")),
        };
        conclude(oracle, run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_wanted_flip_counts() {
        assert!(matches!(classify("1", "0", true), Oracle::Hit(_)));
        assert!(matches!(classify("0", "0", true), Oracle::Miss(_)));
        assert!(matches!(classify("0", "1", false), Oracle::Hit(_)));
        assert!(matches!(classify("1", "1", false), Oracle::Miss(_)));
    }

    #[test]
    fn bad_arguments_are_reported() {
        let report = Reboot.attempt(&["cad=maybe".into()]);
        assert_eq!(report.steps[0].action, "parse arguments");
        assert!(report.steps[0]
            .data
            .as_deref()
            .unwrap()
            .contains("on or off"));
    }
}
