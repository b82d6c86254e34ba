//! `breakout sandbox` on its own: the binary `breakout sandbox` runs from a sealed view when it
//! lies next to `breakout` (runtime/src/sealed_exe.rs). Started as `breakout-sandbox sandbox
//! ARGS`, with the same arguments, help and exit codes as `breakout sandbox ARGS`.

use clap::Parser;
use std::process::ExitCode;

use breakout_harness::cli::{exit_codes, sandbox};

#[derive(Parser)]
#[command(name = "breakout", version)]
enum Cli {
    /// Run one command in the sandbox; exit with its status (125 runtime failure, 126, 127, 128+N).
    #[command(after_help = exit_codes::help(exit_codes::SANDBOX))]
    Sandbox(sandbox::SandboxArgs),
}

fn main() -> ExitCode {
    // Started directly, it copies and seals itself like `breakout sandbox` does.
    if let Err(e) = breakout_runtime::sealed_exe::reexec_sealed(breakout_harness::BUILD_ID) {
        eprintln!("breakout: {e}");
        return ExitCode::from(125);
    }
    let Cli::Sandbox(args) = Cli::parse();
    ExitCode::from(sandbox::run(args).clamp(0, 255) as u8)
}
