//! The `breakout` command-line tool. Each subcommand lives in a module of its own.

use clap::Parser;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "breakout", version, about = "Escape-attempt suite and test harness for Linux sandboxes")]
enum Cli {
    /// Run one command in a disposable VM (also a cargo runner); exit with its status.
    VmRun(cmd_vm_run::VmRunArgs),
}

mod cmd_vm_run;
mod model;

fn main() -> ExitCode {
    let code = match Cli::parse() {
        Cli::VmRun(args) => cmd_vm_run::run(args).clamp(0, 255) as u8,
    };
    ExitCode::from(code)
}
