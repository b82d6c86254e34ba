//! `breakout-probe`: the inside half of every probe, and the positive control.
//!
//! - `breakout-probe ID ARGS...` runs probe ID's attempt and prints its report as one JSON line
//!   on stdout (exit 0 whatever the attempt found: the outside judges, not this code).
//! - `breakout-probe --self-check [ID...]` builds the world and runs each probe with no sandbox
//!   at all (DirectLauncher); every probe must come out `escaped`, else exit 1. Outside the VM
//!   (BREAKOUT_IN_VM unset) it runs only the ids named on the command line.
//! - `breakout-probe --list` prints the probe ids.
//! - `breakout-probe --victim [--ns-holder DIR]` is the world's victim process, and
//!   `breakout-probe --setuid-helper FILE` the setuid-gain probe's planted helper (internal).

use anyhow::{bail, Context};
use breakout_attacks::probes::{run_setuid_helper, SETUID_HELPER_FLAG};
use breakout_attacks::world::{run_victim_main, World, GUEST_WORLD_DIR};
use breakout_attacks::{all_probes, probe, run_probe, DirectLauncher, Limits, Verdict};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Per-probe timeout of the self-check (TCG guests are slow).
const SELF_CHECK_TIMEOUT: Duration = Duration::from_secs(60);

const USAGE: &str = "usage: breakout-probe ID [KEY=VALUE]...\n       breakout-probe --self-check [ID]...\n       breakout-probe --list";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("-h") | Some("--help") => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
        Some("--victim") => exit_code(run_victim_main(&args[1..])),
        Some(SETUID_HELPER_FLAG) => exit_code(run_setuid_helper(&args[1..])),
        Some("--list") => {
            for p in all_probes() {
                println!("{}\t{}", p.meta().id, p.meta().title);
            }
            ExitCode::SUCCESS
        }
        Some("--self-check") => match self_check(&args[1..]) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("breakout-probe --self-check: {e:#}");
                ExitCode::from(2)
            }
        },
        Some(id) => run_inside(id, &args[1..]),
    }
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn run_inside(id: &str, args: &[String]) -> ExitCode {
    // A file probe travels into the guest under GUEST_PROBES_DIR; registering it here is what
    // makes `breakout-probe ID` run its inside half.
    let Some(probe) = probe(id).or_else(|| {
        breakout_attacks::external::find_installed(id)
            .map(|p| p as &'static dyn breakout_attacks::Probe)
    }) else {
        eprintln!(
            "breakout-probe: unknown probe id `{id}` (run `breakout-probe --list` for the ids)\n{USAGE}"
        );
        return ExitCode::from(2);
    };
    let report = probe.attempt(args);
    let line = match serde_json::to_string(&report) {
        Ok(line) => line,
        Err(e) => {
            eprintln!("breakout-probe {id}: cannot encode the report: {e}");
            return ExitCode::from(1);
        }
    };
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// The positive control: true when every selected probe escaped with no sandbox.
fn self_check(ids: &[String]) -> anyhow::Result<bool> {
    let in_vm = std::env::var("BREAKOUT_IN_VM").as_deref() == Ok("1");
    if !in_vm && ids.is_empty() {
        bail!("outside the VM (BREAKOUT_IN_VM=1 unset) name the probes to run: some probes are destructive and must only run in the VM");
    }
    let mut selected = Vec::new();
    for id in ids {
        let found = probe(id).or_else(|| {
            breakout_attacks::external::find_installed(id)
                .map(|p| p as &'static dyn breakout_attacks::Probe)
        });
        selected.push(found.with_context(|| format!("unknown probe id `{id}`"))?);
    }
    if selected.is_empty() {
        selected = all_probes();
    }
    let probe_bin = std::env::current_exe().context("locating this binary")?;
    let tmp;
    let dir: PathBuf = if in_vm {
        PathBuf::from(GUEST_WORLD_DIR)
    } else {
        tmp = tempfile::Builder::new()
            .prefix("breakout-world-")
            .tempdir()
            .context("creating a temporary world directory")?;
        // Victims running as uid 1000 must reach the world.
        std::fs::set_permissions(
            tmp.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .context("chmod of the temporary world directory")?;
        tmp.path().to_path_buf()
    };
    // In the guest the world's shared directory is GUEST_SHARED_DIR, under /usr.
    let world = World::build(&dir, &probe_bin)
        .with_context(|| format!("building the world in {}", dir.display()))?;
    let limits = Limits::default();
    let mut all_escaped = true;
    for p in selected {
        let run = run_probe(p, &world, &limits, &DirectLauncher, SELF_CHECK_TIMEOUT);
        let verdict = run.judgement.verdict;
        println!(
            "{:<22} {:<12} {:>6}ms  {}",
            p.meta().id,
            format!("{verdict:?}").to_lowercase(),
            run.duration.as_millis(),
            run.judgement.reason
        );
        if verdict != Verdict::Escaped {
            all_escaped = false;
            let tail: Vec<&str> = run.stderr_tail.lines().rev().take(5).collect();
            for line in tail.into_iter().rev() {
                println!("    stderr: {line}");
            }
        }
    }
    Ok(all_escaped)
}
