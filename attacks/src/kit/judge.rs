//! The outside half's verdict: what an oracle saw becomes a judgement, and only the oracle can say
//! `escaped`. One way to judge a planted secret ([`judge_secret`], [`judge_by_secret`]) for
//! every probe whose proof is a secret the inside could only read by escaping.

use crate::{Arrangement, Judgement, RunObservation};
use std::any::Any;

/// What the outside oracle saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Oracle {
    /// The effect happened for real.
    Hit(String),
    /// The oracle looked and saw nothing.
    Miss(String),
    /// The oracle cannot tell (its own observation failed).
    Undecided(String),
}

/// Turns the oracle's observation into a verdict. Only the oracle can say `escaped`; a miss is
/// `blocked` only when the inside really ran its attempt: bad arguments make it inconclusive.
/// The driver then applies [`crate::driver::settle`] to every judgement, once, which turns
/// timeouts, setup failures and reportless deaths without a layer's evidence into `inconclusive`
/// as well.
pub fn conclude(oracle: Oracle, run: &RunObservation) -> Judgement {
    match oracle {
        Oracle::Hit(reason) => Judgement::escaped(reason),
        Oracle::Undecided(reason) => Judgement::inconclusive(reason),
        Oracle::Miss(reason) => match run.inside {
            Some(report) => match report
                .steps
                .iter()
                .find(|s| s.action == "parse arguments" && s.errno.is_some())
            {
                Some(bad) => Judgement::inconclusive(format!(
                    "{reason}; the inside rejected its arguments: {}",
                    bad.data.as_deref().unwrap_or("?")
                )),
                None => Judgement::blocked(format!("{reason}; inside: {}", report.failures())),
            },
            None => Judgement::blocked(reason),
        },
    }
}

/// The oracle for "the inside reported a secret it could only get by escaping".
pub fn secret_oracle(run: &RunObservation, secret: &str, what: &str) -> Oracle {
    match run.inside.and_then(|r| r.step_with(secret)) {
        Some(step) => Oracle::Hit(format!(
            "{what}: the per-attempt secret came back from `{}` ({})",
            step.syscall, step.action
        )),
        None => Oracle::Miss(format!("{what}: secret not obtained")),
    }
}

/// The one judgement of a secret the outside planted: escaped when the inside's report carries
/// `secret` (which it can only have obtained by escaping), otherwise [`conclude`]'s verdict on a
/// miss (blocked with the failed steps as evidence, inconclusive when the inside never really
/// tried).
pub fn judge_secret(run: &RunObservation, secret: &str, what: &str) -> Judgement {
    conclude(secret_oracle(run, secret, what), run)
}

/// The whole judgement of a probe whose only oracle is a secret the outside planted: escaped
/// when the inside's report holds the secret (taken from the arrangement's state of type `S` by
/// `secret`), otherwise [`conclude`]'s verdict; inconclusive when the state is not an `S`.
pub fn judge_by_secret<S: Any>(
    arrangement: &Arrangement,
    run: &RunObservation,
    probe: &str,
    secret: impl FnOnce(&S) -> &str,
    what: &str,
) -> Judgement {
    let Some(state) = arrangement.state::<S>() else {
        return wrong_state(probe);
    };
    judge_secret(run, secret(state), what)
}

/// The judge's answer when `arrange` stored a state of another type (a bug, never a verdict).
pub(crate) fn wrong_state(probe: &str) -> Judgement {
    Judgement::inconclusive(format!(
        "{probe}: internal error: the arrangement's state is not this probe's"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::settle;
    use crate::kit::testing::*;
    use crate::report::Steps;
    use crate::Verdict;

    /// The verdict as the driver hands it on: concluded, then settled.
    fn judged(oracle: Oracle, run: &RunObservation) -> Judgement {
        settle(conclude(oracle, run), run)
    }

    #[test]
    fn only_a_hit_escapes() {
        let report = report_with(&["secret=abc"]);
        let run = observe(Some(&report), None);
        assert_eq!(
            judged(Oracle::Hit("seen".into()), &run).verdict,
            Verdict::Escaped
        );
        assert_eq!(
            judged(Oracle::Miss("not seen".into()), &run).verdict,
            Verdict::Blocked
        );
        assert_eq!(
            judged(Oracle::Undecided("?".into()), &run).verdict,
            Verdict::Inconclusive
        );
    }

    #[test]
    fn a_miss_without_report_is_inconclusive_unless_a_recorded_filter_kill() {
        let run = observe(None, None);
        assert_eq!(
            judged(Oracle::Miss("x".into()), &run).verdict,
            Verdict::Inconclusive
        );
        let sys = signaled(libc::SIGSYS);
        let run = observe(None, Some(&sys));
        let j = judged(Oracle::Miss("x".into()), &run);
        assert_eq!(j.verdict, Verdict::Inconclusive, "{}", j.reason);
        let killed = breakout_runtime::Outcome {
            seccomp_kill: Some(breakout_runtime::seccomp::FilterKill {
                syscall: Some("keyctl".into()),
                nr: 250,
                arch: "X86_64".into(),
                recorded: true,
            }),
            ..signaled(libc::SIGSYS)
        };
        let run = observe(None, Some(&killed));
        let j = judged(Oracle::Miss("x".into()), &run);
        assert_eq!(j.verdict, Verdict::Blocked);
        assert!(j.reason.contains("seccomp"), "{}", j.reason);
        // Settled once, by the driver: the evidence is named once.
        assert_eq!(j.reason.matches("keyctl").count(), 1, "{}", j.reason);
        let segv = signaled(libc::SIGSEGV);
        let run = observe(None, Some(&segv));
        assert_eq!(
            judged(Oracle::Miss("x".into()), &run).verdict,
            Verdict::Inconclusive
        );
    }

    #[test]
    fn a_miss_after_timeout_or_bad_args_is_inconclusive() {
        let report = failed_report();
        let mut run = observe(Some(&report), None);
        run.timed_out = true;
        assert_eq!(
            judged(Oracle::Miss("x".into()), &run).verdict,
            Verdict::Inconclusive
        );
        let mut steps = Steps::new("t");
        steps.bad_args("expected 1 argument");
        let bad = steps.finish();
        let run = observe(Some(&bad), None);
        let j = judged(Oracle::Miss("x".into()), &run);
        assert_eq!(j.verdict, Verdict::Inconclusive);
        assert!(j.reason.contains("expected 1 argument"), "{}", j.reason);
    }

    #[test]
    fn a_hit_wins_even_after_a_timeout() {
        let mut run = observe(None, None);
        run.timed_out = true;
        assert_eq!(
            judged(Oracle::Hit("victim dead".into()), &run).verdict,
            Verdict::Escaped
        );
    }

    #[test]
    fn secret_oracle_needs_the_exact_secret() {
        let report = report_with(&["nothing here", "token=0123abcd"]);
        let run = observe(Some(&report), None);
        assert!(matches!(
            secret_oracle(&run, "0123abcd", "the canary"),
            Oracle::Hit(_)
        ));
        assert!(matches!(
            secret_oracle(&run, "0123abce", "the canary"),
            Oracle::Miss(_)
        ));
        assert!(matches!(secret_oracle(&run, "", "x"), Oracle::Miss(_)));
    }
}
