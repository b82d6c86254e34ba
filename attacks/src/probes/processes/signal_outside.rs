//! signal-outside: SIGKILL a root victim outside the sandbox.

use crate::kit::{with_args, wrong_state};
use crate::world::{Victim, VictimKind, VictimOptions, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation,
};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::Duration;

pub struct SignalOutside;

/// How long the outside waits for a death it cannot rule out from the kernel's pending sets:
/// the payload may still have been running when the launch ended (it timed out), or the victim's
/// status could not be read.
const DEATH_GRACE: Duration = Duration::from_millis(500);

/// How long the outside waits when it sees a SIGKILL pending for the victim.
const PENDING_KILL_GRACE: Duration = Duration::from_secs(10);

static META: ProbeMeta = ProbeMeta {
    id: "signal-outside",
    title: "kill a root process outside the sandbox",
    technique: "The payload sends SIGKILL to the pid of a victim outside the sandbox that runs as \
        root. A bare root process holds CAP_KILL and sees every pid, so the victim dies. A pid \
        namespace hides the victim, an unprivileged uid without CAP_KILL is refused (EPERM), \
        and seccomp can deny kill. (kill(-1) is left out: without a sandbox it would take the \
        harness down with it.) \
        Landlock stops it only where the kernel scopes signals (ABI 6, Linux 6.12; not on Debian 12's 6.1).",
    oracle: "The victim is dead, as seen through the pidfd the outside holds on it.",
    layers: &[
        Layer::PidNs,
        Layer::Uid,
        Layer::Caps,
        Layer::UserNs,
        Layer::Seccomp,
        Layer::Landlock,
    ],
    references: &["kill(2) permission rules"],
    class: ProbeClass::Plain,
};

pub(super) struct KillState {
    victim: Victim,
}

pub(super) fn arrange_kill(
    probe: &'static str,
    world: &World,
    kind: VictimKind,
) -> Result<Arrangement, ProbeError> {
    let secret = world.fresh_secret().map_err(ProbeError::world(probe))?;
    let victim = world
        .spawn_victim(kind, &secret, &VictimOptions::default())
        .map_err(ProbeError::world(probe))?;
    Ok(Arrangement::new(
        vec![kv("pid", victim.pid())],
        KillState { victim },
    ))
}

pub(super) fn attempt_kill(probe: &str, words: &[String]) -> InsideReport {
    with_args(probe, words, |args, steps| {
        let pid: i32 = args.get("pid")?;
        steps.call("kill the victim", format!("kill({pid}, SIGKILL)"), || {
            kill(Pid::from_raw(pid), Signal::SIGKILL)
        });
        Ok(())
    })
}

pub(super) fn judge_kill(arrangement: Arrangement, run: &RunObservation, probe: &str) -> Judgement {
    let Ok(state) = arrangement.state.downcast::<KillState>() else {
        return wrong_state(probe);
    };
    let victim = &state.victim;
    let what = format!("{} victim pid {}", victim.kind().name(), victim.pid());
    let dead = victim.wait_dead(Duration::ZERO) || {
        // kill(2) is synchronous: once it has returned, a SIGKILL it delivered is pending on the
        // victim until the victim is dead (see `Victim::kill_pending`). A launch that ended in
        // time ended with the payload, so its kill() has returned or never ran, and a victim
        // alive with no SIGKILL pending was not killed: no grace period can change that.
        // Without that fact (a timed-out payload, an unreadable status), wait as before.
        let pending = if run.timed_out {
            None
        } else {
            victim.kill_pending()
        };
        match pending {
            Some(true) => victim.wait_dead(PENDING_KILL_GRACE),
            Some(false) => false,
            None => {
                victim.wait_dead(DEATH_GRACE)
                    || (victim.kill_pending() == Some(true) && victim.wait_dead(PENDING_KILL_GRACE))
            }
        }
    };
    if dead {
        Judgement::escaped(format!("{what} died (pidfd readable)"))
    } else {
        let evidence = run
            .inside
            .map(|r| r.failures())
            .unwrap_or_else(|| "no inside report".into());
        Judgement::blocked(format!("{what} still alive; {evidence}"))
    }
}

impl Probe for SignalOutside {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }
    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        arrange_kill(META.id, world, VictimKind::Root)
    }
    fn attempt(&self, args: &[String]) -> InsideReport {
        attempt_kill(META.id, args)
    }
    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        judge_kill(arrangement, run, META.id)
    }
}
