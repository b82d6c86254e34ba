//! The network probes with a timing channel (`kit::sync`) end when the outside has its answer,
//! not at the end of a window: blocked in a network namespace of their own because the outside
//! released them (not because a wait ran out), and still escaping without one. The payloads run
//! unsandboxed (DirectLauncher) and under `unshare --net`. Needs root (port 80, CAP_NET_RAW,
//! a network namespace); skipped with a line saying so otherwise.

use breakout_attacks::world::World;
use breakout_attacks::{
    probe, run_probe, DirectLauncher, LaunchRequest, Launched, Launcher, Limits, ProbeRun, Verdict,
};
use std::time::Duration;

const PROBES: [&str; 2] = ["port-bind", "raw-socket"];

/// The payload in a network namespace of its own, passing stdin on as it is.
struct Unshared;

impl Launcher for Unshared {
    fn launch(&self, request: &LaunchRequest) -> Result<Launched, String> {
        let mut argv = vec!["unshare".to_string(), "--net".to_string()];
        argv.extend(request.argv.iter().cloned());
        DirectLauncher.launch(&LaunchRequest {
            argv,
            cgroup: request.cgroup.clone(),
            timeout: request.timeout,
            controlling_tty: request.controlling_tty,
            stdin: request.stdin,
        })
    }
}

fn run(world: &World, id: &str, launcher: &dyn Launcher) -> ProbeRun {
    run_probe(
        probe(id).unwrap(),
        world,
        &Limits::default(),
        launcher,
        Duration::from_secs(30),
    )
}

fn released(run: &ProbeRun) -> bool {
    run.inside.as_ref().is_some_and(|r| {
        r.steps.iter().any(|s| {
            s.action == "wait for the outside"
                && s.data
                    .as_deref()
                    .is_some_and(|d| d.starts_with("released by the outside"))
        })
    })
}

/// One test, one world, one attempt at a time: attempts of two worlds in one process would share
/// their tags (port-bind's listener echoes its tag with the outside's nonce, and a tag is unique
/// only within its world).
#[test]
fn blocked_when_released_in_a_network_namespace_of_its_own_and_escaped_without() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root (port 80, CAP_NET_RAW, unshare --net)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_breakout-probe"));
    let world = World::build(tmp.path(), &bin).unwrap();
    for id in PROBES {
        let escaped = run(&world, id, &DirectLauncher);
        assert_eq!(
            escaped.judgement.verdict,
            Verdict::Escaped,
            "{id}: {} / {:?} / {}",
            escaped.judgement.reason,
            escaped.inside,
            escaped.stderr_tail
        );
        let blocked = run(&world, id, &Unshared);
        assert_eq!(
            blocked.judgement.verdict,
            Verdict::Blocked,
            "{id}: {} / {:?} / {}",
            blocked.judgement.reason,
            blocked.inside,
            blocked.stderr_tail
        );
        assert!(released(&blocked), "{id}: {:?}", blocked.inside);
    }
}
