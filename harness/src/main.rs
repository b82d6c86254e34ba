//! The `breakout` command-line tool. Each subcommand lives in a module of its own.

use clap::Parser;
use std::process::ExitCode;

// The shared pieces live in the library (tests/ uses them too); `crate::model` etc. keep working
// for the binary's own modules through these imports.
#[allow(unused_imports)]
use breakout_harness::{adapters, explain, file_probes, list, report};
#[allow(unused_imports)]
use breakout_harness::{attribution, environment, exit_codes, gate, model, plan, run};

#[derive(Parser)]
#[command(
    name = "breakout",
    version,
    about = "Escape-attempt suite and test harness for Linux sandboxes"
)]
enum Cli {
    /// Run the suite in a fresh VM: every probe under every profile, attributed by ablation.
    #[command(after_help = exit_codes::help(exit_codes::RUN))]
    Run(cmd_run::RunArgs),
    /// Compare results with a baseline; exit 1 when anything got worse.
    #[command(after_help = exit_codes::help(exit_codes::GATE))]
    Gate(cmd_gate::GateArgs),
    /// The orchestrator inside the VM (started by `breakout run`).
    #[command(hide = true)]
    GuestExec(guest::GuestArgs),
    /// Configurations side by side: profiles, or external runtimes (bwrap, crun, unshare).
    #[command(after_help = exit_codes::help(exit_codes::COMPARE))]
    Compare(compare::CompareArgs),
    /// What a probe does and which layers stop it, or what a layer does and which probes it stops.
    #[command(after_help = exit_codes::help(exit_codes::EXPLAIN))]
    Explain(explain::ExplainArgs),
    /// The probes, layers or profiles (and external runtimes) breakout knows.
    #[command(after_help = exit_codes::help(exit_codes::LIST))]
    List(list::ListArgs),
    /// Run one command in a disposable VM (also a cargo runner); exit with its status.
    #[command(after_help = exit_codes::help(exit_codes::VM_RUN))]
    VmRun(cmd_vm_run::VmRunArgs),
    /// Run one command in the sandbox; exit with its status (125 runtime failure, 126, 127, 128+N).
    #[command(after_help = exit_codes::help(exit_codes::SANDBOX))]
    Sandbox(cmd_sandbox::SandboxArgs),
    /// Write a working file probe (probe.toml + inside.sh) to sharpen: see docs/writing-probes.md.
    NewProbe(cmd_new_probe::NewProbeArgs),
    /// Self-grading exercises: list, show, start, check ID (docs/course.md).
    Lab(cmd_lab::LabArgs),
    /// Record every syscall a command makes (in a VM, under `none`) and write an allowlist.
    #[command(after_help = exit_codes::help(exit_codes::LEARN))]
    Learn(cmd_learn::LearnArgs),
}

mod cmd_gate;
mod cmd_lab;
mod cmd_learn;
mod cmd_new_probe;
mod cmd_run;
mod cmd_sandbox;
mod cmd_vm_run;
mod compare;
mod guest;
mod guest_workloads;
mod launcher;

fn main() -> ExitCode {
    // The subcommands that are a runtime run from a sealed copy of this binary (CVE-2019-5736),
    // re-executed before anything else so that the window in which the process runs from the
    // file on disk stays as short as it can be.
    if let Err(e) = breakout_runtime::sealed_exe::reexec_sealed_for(&["sandbox", "guest-exec"]) {
        eprintln!("breakout: {e}");
        return ExitCode::from(125);
    }
    let code = match Cli::parse() {
        Cli::Run(args) => cmd_run::run(args),
        Cli::Gate(args) => cmd_gate::run(args),
        Cli::GuestExec(args) => guest::run(args, adapters::launcher_for),
        Cli::Compare(args) => compare::run(args),
        Cli::Explain(args) => explain::run(args),
        Cli::List(args) => list::run(args),
        Cli::VmRun(args) => cmd_vm_run::run(args).clamp(0, 255) as u8,
        Cli::Sandbox(args) => cmd_sandbox::run(args).clamp(0, 255) as u8,
        Cli::NewProbe(args) => cmd_new_probe::run(args),
        Cli::Lab(args) => cmd_lab::run(args),
        Cli::Learn(args) => cmd_learn::run(args),
    };
    ExitCode::from(code)
}
