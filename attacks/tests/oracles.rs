//! The outside halves judge from outside observation: harmless probes escape when their inside
//! half runs unsandboxed in this process, a report that merely claims success never escapes, and
//! a run that could not show an escape is inconclusive, not blocked. Needs no root.

use breakout_attacks::world::World;
use breakout_attacks::{
    probe, run_probe, DirectLauncher, InsideReport, LaunchRequest, Launched, Launcher, Limits,
    RunObservation, Step, Verdict,
};
use breakout_runtime::{ExitKind, Outcome};
use std::time::Duration;

/// Probes whose attempt is harmless to run in the test process itself, as any user.
const HARMLESS: &[&str] = &[
    "scm-rights-import",
    "scm-rights-abstract",
    "host-loopback",
    "sysv-ipc",
    "signal-outside",
    "leaked-fds",
];

fn world() -> (tempfile::TempDir, World) {
    let tmp = tempfile::tempdir().unwrap();
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_breakout-probe"));
    let world = World::build(tmp.path(), &bin).unwrap();
    (tmp, world)
}

fn observe<'a>(report: Option<&'a InsideReport>, limits: &'a Limits) -> RunObservation<'a> {
    RunObservation {
        outcome: None,
        inside: report,
        stderr: "",
        timed_out: false,
        limits,
    }
}

#[test]
fn harmless_probes_escape_when_run_unsandboxed_in_process() {
    let (_tmp, world) = world();
    let limits = Limits::default();
    for id in HARMLESS {
        let p = probe(id).unwrap();
        let arrangement = p.arrange(&world, &limits).unwrap();
        let report = p.attempt(&arrangement.args);
        let judgement = p.judge(&world, arrangement, &observe(Some(&report), &limits));
        assert_eq!(
            judgement.verdict,
            Verdict::Escaped,
            "{id}: {} / {report:?}",
            judgement.reason
        );
    }
}

#[test]
fn a_report_claiming_success_is_no_escape() {
    let (_tmp, world) = world();
    let limits = Limits::default();
    for id in HARMLESS {
        let p = probe(id).unwrap();
        let arrangement = p.arrange(&world, &limits).unwrap();
        let lie = InsideReport {
            probe: id.to_string(),
            steps: vec![Step {
                action: "escaped, trust me".into(),
                syscall: "everything()".into(),
                result: Some(0),
                data: Some("secret=yes".into()),
                ..Step::default()
            }],
        };
        let judgement = p.judge(&world, arrangement, &observe(Some(&lie), &limits));
        assert_eq!(
            judgement.verdict,
            Verdict::Blocked,
            "{id}: {}",
            judgement.reason
        );
    }
}

/// A launcher that returns a canned result without running anything.
struct Canned {
    status: ExitKind,
    stdout: &'static str,
    timed_out: bool,
    seccomp_kill: Option<breakout_runtime::seccomp::FilterKill>,
}

impl Launcher for Canned {
    fn launch(&self, _request: &LaunchRequest) -> Result<Launched, String> {
        Ok(Launched {
            outcome: Some(Outcome {
                status: self.status,
                cgroup: None,
                setup_failure: None,
                landlock: None,
                seccomp_kill: self.seccomp_kill.clone(),
                recording: None,
            }),
            stdout: self.stdout.as_bytes().to_vec(),
            stderr: b"breakout-probe: trying kill(1, SIGKILL)\n".to_vec(),
            timed_out: self.timed_out,
        })
    }
}

#[test]
fn runs_that_show_nothing_are_inconclusive_not_blocked() {
    let (_tmp, world) = world();
    let limits = Limits::default();
    let p = probe("signal-outside").unwrap();
    let cases = [
        (ExitKind::Exited { code: 1 }, false, Verdict::Inconclusive),
        (
            ExitKind::Signaled {
                signal: libc::SIGSEGV,
                core_dumped: false,
            },
            false,
            Verdict::Inconclusive,
        ),
        (
            ExitKind::Signaled {
                signal: libc::SIGKILL,
                core_dumped: false,
            },
            true,
            Verdict::Inconclusive,
        ),
        // A SIGSYS the runtime has no filter kill for came from some process: no evidence.
        (
            ExitKind::Signaled {
                signal: libc::SIGSYS,
                core_dumped: false,
            },
            false,
            Verdict::Inconclusive,
        ),
    ];
    for (status, timed_out, want) in cases {
        let launcher = Canned {
            status,
            stdout: "",
            timed_out,
            seccomp_kill: None,
        };
        let run = run_probe(p, &world, &limits, &launcher, Duration::from_secs(5));
        assert_eq!(
            run.judgement.verdict, want,
            "{status:?}: {}",
            run.judgement.reason
        );
        assert!(run.inside.is_none());
        assert!(run.stderr_tail.contains("trying kill"));
    }
    // A seccomp kill the kernel recorded is a layer's evidence: blocked stands.
    let launcher = Canned {
        status: ExitKind::Signaled {
            signal: libc::SIGSYS,
            core_dumped: false,
        },
        stdout: "",
        timed_out: false,
        seccomp_kill: Some(breakout_runtime::seccomp::FilterKill {
            syscall: Some("kill".into()),
            nr: 62,
            arch: "X86_64".into(),
            recorded: true,
        }),
    };
    let run = run_probe(p, &world, &limits, &launcher, Duration::from_secs(5));
    assert_eq!(
        run.judgement.verdict,
        Verdict::Blocked,
        "{}",
        run.judgement.reason
    );
}

#[test]
fn the_direct_launcher_runs_and_kills_at_the_timeout() {
    let request = |argv: &[&str], ms| LaunchRequest {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        cgroup: None,
        timeout: Duration::from_millis(ms),
        controlling_tty: None,
        stdin: None,
    };
    let done = DirectLauncher
        .launch(&request(
            &["/bin/sh", "-c", "echo out; echo err >&2; exit 3"],
            10_000,
        ))
        .unwrap();
    assert_eq!(done.outcome.unwrap().status, ExitKind::Exited { code: 3 });
    assert_eq!(done.stdout, b"out\n");
    assert_eq!(done.stderr, b"err\n");
    assert!(!done.timed_out);

    let started = std::time::Instant::now();
    let hung = DirectLauncher
        .launch(&request(&["/bin/sh", "-c", "sleep 30 & sleep 30"], 200))
        .unwrap();
    assert!(hung.timed_out);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(matches!(
        hung.outcome.unwrap().status,
        ExitKind::Signaled { signal, .. } if signal == libc::SIGKILL
    ));

    // A descendant that leaves the process group keeps the pipe open: what the payload printed
    // before it exited still comes back.
    let held = DirectLauncher
        .launch(&request(
            &["/bin/sh", "-c", "echo report; setsid sleep 4 >&1 & exit 0"],
            10_000,
        ))
        .unwrap();
    assert_eq!(held.stdout, b"report\n");

    let err = DirectLauncher.launch(&request(&[], 100)).err().unwrap();
    assert!(err.contains("empty argv"), "{err}");
}

#[test]
fn the_probe_binary_rejects_unknown_ids_and_bad_arguments() {
    let bin = env!("CARGO_BIN_EXE_breakout-probe");
    let out = std::process::Command::new(bin)
        .arg("no-such-probe")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown probe id `no-such-probe`"));

    // Bad arguments: a report naming the problem, never a panic.
    let out = std::process::Command::new(bin)
        .args(["signal-outside", "pid=notanumber"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let report: InsideReport = serde_json::from_slice(&out.stdout).unwrap();
    let step = report.steps.last().unwrap();
    assert_eq!(step.errno_name.as_deref(), Some("EINVAL"));
    assert!(step.data.as_deref().unwrap().contains("pid=notanumber"));

    let out = std::process::Command::new(bin)
        .args(["--self-check"])
        .env_remove("BREAKOUT_IN_VM")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "self-check outside the VM needs ids"
    );
}
