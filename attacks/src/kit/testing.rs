//! Synthetic observations for judge tests.
use crate::report::{InsideReport, Step};
use crate::{Limits, RunObservation};
use breakout_runtime::{ExitKind, Outcome};

pub fn report_with(data: &[&str]) -> InsideReport {
    InsideReport {
        probe: "test".into(),
        steps: data
            .iter()
            .map(|d| Step {
                action: "step".into(),
                syscall: "read(...)".into(),
                result: Some(0),
                data: Some(d.to_string()),
                ..Step::default()
            })
            .collect(),
    }
}

pub fn failed_report() -> InsideReport {
    InsideReport {
        probe: "test".into(),
        steps: vec![Step {
            action: "attempt".into(),
            syscall: "open(...)".into(),
            errno: Some(libc::EPERM),
            errno_name: Some("EPERM".into()),
            ..Step::default()
        }],
    }
}

pub static LIMITS: Limits = Limits {
    pids_max: None,
    memory_max: None,
    nproc: None,
    nofile: None,
};

pub fn observe<'a>(
    inside: Option<&'a InsideReport>,
    outcome: Option<&'a Outcome>,
) -> RunObservation<'a> {
    RunObservation {
        outcome,
        inside,
        stderr: "",
        timed_out: false,
        limits: &LIMITS,
    }
}

/// A world in a temporary directory (the test binary stands in for breakout-probe).
pub fn temp_world() -> (tempfile::TempDir, crate::world::World) {
    let dir = tempfile::tempdir().unwrap();
    let bin = std::env::current_exe().unwrap();
    let world = crate::world::World::build(dir.path(), &bin).unwrap();
    (dir, world)
}

/// Arranges `probe` in `world`, lets `secret_of` pick the expected secret from the state,
/// and judges three synthetic reports: one carrying the secret (must escape), one carrying
/// a different secret and one with only failed steps (both must not).
pub fn judge_needs_the_secret<S: 'static>(
    probe: &dyn crate::Probe,
    world: &crate::world::World,
    secret_of: impl Fn(&S) -> String,
) {
    use crate::Verdict;
    let verdict = |data: Option<&str>| {
        let arrangement = probe.arrange(world, &LIMITS).unwrap();
        let secret = secret_of(arrangement.state::<S>().expect("state type"));
        let report = match data {
            Some("SECRET") => report_with(&["noise", &secret]),
            Some(other) => report_with(&[other]),
            None => failed_report(),
        };
        let run = observe(Some(&report), None);
        probe.judge(world, arrangement, &run).verdict
    };
    assert_eq!(verdict(Some("SECRET")), Verdict::Escaped);
    assert_eq!(
        verdict(Some("0123456789abcdef0123456789abcdef")),
        Verdict::Blocked
    );
    assert_eq!(verdict(None), Verdict::Blocked);
}

pub fn signaled(signal: i32) -> Outcome {
    Outcome {
        status: ExitKind::Signaled {
            signal,
            core_dumped: false,
        },
        cgroup: None,
        setup_failure: None,
        landlock: None,
        seccomp_kill: None,
        recording: None,
    }
}
