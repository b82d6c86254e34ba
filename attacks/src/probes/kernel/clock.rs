//! clock: move the system's wall clock.

use crate::kit::{conclude, parse_or_report, Oracle};
use crate::world::{ExclusiveGuard, World, EXCLUSIVE_WAIT};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use nix::sys::time::TimeSpec;
use nix::time::{clock_gettime, clock_settime, ClockId};
use std::sync::Mutex;

/// How far the inside moves the clock forward: one day, plus up to an hour chosen per attempt.
const BASE_OFFSET_SECS: i64 = 86_400;

/// A jump counts as the probe's when it is within this much of the offset the probe was given.
const TOLERANCE_SECS: i64 = 120;

/// Any skew beyond this is a moved clock (the guest has no NTP; TCG drift is far smaller).
const MOVED_SECS: i64 = 30;

static META: ProbeMeta = ProbeMeta {
    id: "clock",
    title: "Set the system clock",
    technique: "CLOCK_REALTIME is one clock for the whole machine: time namespaces only offset \
        the monotonic and boot clocks. A process with CAP_SYS_TIME in the initial user namespace \
        can set it with clock_settime(2) or settimeofday(2), which breaks certificate checks, \
        log timelines and time-based tokens outside. The inside moves it forward by an offset \
        the outside chose; the outside puts it back.",
    oracle: "The outside's wall clock, compared with its boot-time clock, jumped by the offset \
        it gave the inside (the outside then restores the clock).",
    layers: &[Layer::Caps, Layer::UserNs, Layer::Uid, Layer::Seccomp],
    references: &[
        "amicontained (clock_settime/settimeofday/adjtimex among the blocked syscalls)",
        "time_namespaces(7): CLOCK_REALTIME is not namespaced",
    ],
    class: ProbeClass::Plain,
};

pub struct Clock;

/// The wall clock and the boot clock read together before the attempt.
#[derive(Debug, Clone, Copy)]
struct Reference {
    realtime: TimeSpec,
    boottime: TimeSpec,
}

/// Puts the clock back on Drop if judge did not (the real time follows from the boot clock).
struct State {
    reference: Reference,
    offset: i64,
    restored: Mutex<bool>,
    /// Released after Drop restored the clock: one attempt at a time, so no attempt measures
    /// or undoes another's jump.
    _exclusive: ExclusiveGuard,
}

impl State {
    /// The wall-clock time now had nobody touched the clock.
    fn expected_now(&self) -> Result<TimeSpec, nix::Error> {
        let boot = clock_gettime(ClockId::CLOCK_BOOTTIME)?;
        Ok(self.reference.realtime + (boot - self.reference.boottime))
    }

    /// Measures the skew and restores the clock when it moved.
    fn check_and_restore(&self) -> Result<i64, nix::Error> {
        let expected = self.expected_now()?;
        let now = clock_gettime(ClockId::CLOCK_REALTIME)?;
        let skew = (now - expected).tv_sec();
        if skew.abs() > MOVED_SECS {
            clock_settime(ClockId::CLOCK_REALTIME, self.expected_now()?)?;
        }
        if let Ok(mut r) = self.restored.lock() {
            *r = true;
        }
        Ok(skew)
    }
}

impl Drop for State {
    fn drop(&mut self) {
        let done = self.restored.lock().map(|r| *r).unwrap_or(false);
        if !done {
            if let Err(e) = self.check_and_restore() {
                eprintln!("breakout: clock: could not restore the wall clock: {e}");
            }
        }
    }
}

/// What a measured skew means for an attempt that was given `offset`.
fn classify(skew: i64, offset: i64) -> Oracle {
    if (skew - offset).abs() <= TOLERANCE_SECS {
        Oracle::Hit(format!(
            "the wall clock jumped by {skew} s (the inside was given {offset} s); restored"
        ))
    } else if skew.abs() > MOVED_SECS {
        Oracle::Undecided(format!(
            "the wall clock moved by {skew} s, not by the inside's {offset} s; restored"
        ))
    } else {
        Oracle::Miss(format!("the wall clock did not move (skew {skew} s)"))
    }
}

impl Probe for Clock {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let id = META.id;
        let exclusive = world
            .exclusive("the clock", EXCLUSIVE_WAIT)
            .map_err(ProbeError::world(META.id))?;
        let salt = world.fresh_secret().map_err(ProbeError::world(id))?;
        let extra = i64::from_str_radix(&salt[..4], 16).unwrap_or(0) % 3600;
        let offset = BASE_OFFSET_SECS + extra;
        let realtime = clock_gettime(ClockId::CLOCK_REALTIME)
            .map_err(|e| ProbeError::arrange(id, "clock_gettime(CLOCK_REALTIME)", e.into()))?;
        let boottime = clock_gettime(ClockId::CLOCK_BOOTTIME)
            .map_err(|e| ProbeError::arrange(id, "clock_gettime(CLOCK_BOOTTIME)", e.into()))?;
        Ok(Arrangement::new(
            vec![kv("offset_s", offset)],
            State {
                reference: Reference { realtime, boottime },
                offset,
                restored: Mutex::new(false),
                _exclusive: exclusive,
            },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        if let Some(offset) = parse_or_report(&mut steps, args, |a| a.get::<i64>("offset_s")) {
            let mut now = None;
            steps.call(
                "read the wall clock",
                "clock_gettime(CLOCK_REALTIME)",
                || {
                    let t = clock_gettime(ClockId::CLOCK_REALTIME)?;
                    now = Some(t);
                    Ok(t.tv_sec())
                },
            );
            if let Some(now) = now {
                let target = now + TimeSpec::new(offset, 0);
                let set = steps.call(
                    "move the wall clock",
                    format!("clock_settime(CLOCK_REALTIME, now + {offset} s)"),
                    || clock_settime(ClockId::CLOCK_REALTIME, target),
                );
                if set.is_none() {
                    let tv = nix::sys::time::TimeVal::new(target.tv_sec(), 0);
                    steps.call(
                        "move the wall clock (old interface)",
                        format!("settimeofday(now + {offset} s)"),
                        // SAFETY: tv is a valid timeval; a null timezone is allowed.
                        || {
                            nix::errno::Errno::result(unsafe {
                                libc::settimeofday(tv.as_ref(), std::ptr::null())
                            })
                        },
                    );
                }
            }
        }
        steps.finish()
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        let Some(state) = arrangement.state::<State>() else {
            return Judgement::inconclusive("clock: arrangement state of the wrong type");
        };
        let oracle = match state.check_and_restore() {
            Ok(skew) => classify(skew, state.offset),
            Err(e) => Oracle::Undecided(format!("reading or restoring the clock failed: {e}")),
        };
        conclude(oracle, run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_given_jump_is_an_escape() {
        assert!(matches!(classify(86_500, 86_510), Oracle::Hit(_)));
        assert!(matches!(classify(2, 86_510), Oracle::Miss(_)));
        assert!(matches!(classify(-3, 86_510), Oracle::Miss(_)));
        assert!(matches!(classify(-4000, 86_510), Oracle::Undecided(_)));
        assert!(matches!(classify(90_000, 86_510), Oracle::Undecided(_)));
    }

    #[test]
    fn bad_arguments_are_reported() {
        let report = Clock.attempt(&["offset_s=soon".to_string()]);
        assert_eq!(report.steps[0].action, "parse arguments");
        assert!(report.steps[0]
            .data
            .as_deref()
            .unwrap()
            .contains("offset_s"));
    }
}
