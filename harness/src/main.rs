//! `breakout-harness`: the whole `breakout` command-line tool, executed by `breakout` (the front,
//! breakout_harness::front) for every subcommand but `sandbox`. Each subcommand lives in a
//! module of its own (breakout_harness::cli).

use clap::Parser;
use std::process::ExitCode;

use breakout_harness::cli::{
    compare, exit_codes, explain, gate, guest_exec, lab, learn, list, merge, new_probe, run,
    sandbox, vm_run,
};

#[derive(Parser)]
#[command(
    name = "breakout",
    version,
    about = "Escape-attempt suite and test harness for Linux sandboxes"
)]
enum Cli {
    /// Run the suite in a fresh VM: every probe and workload under every profile, attributed by ablation.
    #[command(after_help = exit_codes::help(exit_codes::RUN))]
    Run(run::RunArgs),
    /// Compare results with a baseline; exit 1 when anything got worse.
    #[command(after_help = exit_codes::help(exit_codes::GATE))]
    Gate(gate::GateArgs),
    /// The orchestrator inside the VM (started by `breakout run`).
    #[command(hide = true)]
    GuestExec(guest_exec::GuestArgs),
    /// Configurations side by side: profiles, or your own runtime configurations (oci:, cmd:, podman:, crun, runsc, ...).
    #[command(after_help = exit_codes::help(exit_codes::COMPARE))]
    Compare(compare::CompareArgs),
    /// What a probe does and which layers stop it, or what a layer does and which probes it stops.
    #[command(after_help = exit_codes::help(exit_codes::EXPLAIN))]
    Explain(explain::ExplainArgs),
    /// The probes, workloads, layers or profiles (and external runtimes) breakout knows.
    #[command(after_help = exit_codes::help(exit_codes::LIST))]
    List(list::ListArgs),
    /// Run one command in a disposable VM (also a cargo runner); exit with its status.
    #[command(after_help = exit_codes::help(exit_codes::VM_RUN))]
    VmRun(vm_run::VmRunArgs),
    /// Run one command in the sandbox; exit with its status (125 runtime failure, 126, 127, 128+N).
    #[command(after_help = exit_codes::help(exit_codes::SANDBOX))]
    Sandbox(sandbox::SandboxArgs),
    /// Write a working file probe (probe.toml + inside.sh) to sharpen: see docs/writing-probes.md.
    NewProbe(new_probe::NewProbeArgs),
    /// Self-grading exercises: list, show, start, check ID (docs/course.md).
    Lab(lab::LabArgs),
    /// Merge the results.json of every shard of one run (`run --shard K/N`) into its reports.
    #[command(after_help = exit_codes::help(exit_codes::MERGE))]
    Merge(merge::MergeArgs),
    /// Record every syscall a command makes (in a VM, under `none`) and write an allowlist.
    #[command(after_help = exit_codes::help(exit_codes::LEARN))]
    Learn(learn::LearnArgs),
}

fn main() -> ExitCode {
    if let Err(e) = breakout_harness::front::accept_front(breakout_harness::BUILD_ID) {
        eprintln!("breakout: {e}");
        return ExitCode::from(2);
    }
    // The subcommands that are a runtime run from a read-only view of a binary (CVE-2019-5736),
    // re-executed before anything else so that the window in which the process runs from the
    // file on disk stays as short as it can be.
    if let Err(e) = reexec_sealed() {
        eprintln!("breakout: {e}");
        return ExitCode::from(125);
    }
    let code = match Cli::parse() {
        Cli::Run(args) => run::run(args),
        Cli::Gate(args) => gate::run(args),
        Cli::GuestExec(args) => guest_exec::run(args),
        Cli::Compare(args) => compare::run(args),
        Cli::Explain(args) => explain::run(args),
        Cli::List(args) => list::run(args),
        Cli::VmRun(args) => vm_run::run(args).clamp(0, 255) as u8,
        Cli::Sandbox(args) => sandbox::run(args).clamp(0, 255) as u8,
        Cli::NewProbe(args) => new_probe::run(args),
        Cli::Lab(args) => lab::run(args),
        Cli::Merge(args) => merge::run(args),
        Cli::Learn(args) => learn::run(args),
    };
    ExitCode::from(code)
}

/// `sandbox` (when this binary is started as `breakout-harness sandbox`) runs from a sealed view
/// of `breakout`, the runtime, when it lies beside this binary (a fraction of the bytes to page
/// in, at a fixed address), else from a view of this binary; `guest-exec` from a view of this
/// binary.
fn reexec_sealed() -> Result<(), breakout_runtime::sealed_exe::SealError> {
    use breakout_runtime::sealed_exe::{reexec_sealed_for, reexec_sealed_from};
    let id = breakout_harness::BUILD_ID;
    if std::env::args_os().nth(1).is_some_and(|s| s == "sandbox") {
        let small = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.join(breakout_harness::SANDBOX_BIN)))
            .filter(|p| p.is_file());
        return reexec_sealed_from(small.as_deref(), id);
    }
    reexec_sealed_for(&["guest-exec"], id)
}
