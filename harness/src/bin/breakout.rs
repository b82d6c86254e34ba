//! `breakout`: the runtime and the front door (breakout_harness::front). `breakout sandbox ARGS`
//! runs here, from a sealed view of this binary (runtime/src/sealed_exe.rs); every other
//! subcommand, `--help` and `--version` are the whole tool, `breakout-harness`, executed from
//! beside this binary with the arguments as they came.

use clap::Parser;
use std::process::ExitCode;

use breakout_harness::cli::{exit_codes, sandbox};
use breakout_harness::front;
use breakout_runtime::trace;

#[derive(Parser)]
#[command(name = "breakout", version)]
enum Cli {
    /// Run one command in the sandbox; exit with its status (125 runtime failure, 126, 127, 128+N).
    #[command(after_help = exit_codes::help(exit_codes::SANDBOX))]
    Sandbox(sandbox::SandboxArgs),
}

fn main() -> ExitCode {
    let id = breakout_harness::BUILD_ID;
    if !front::is_sandbox(std::env::args_os().nth(1).as_ref()) {
        // Returns only when the tool cannot be executed; 2 is what every judging subcommand
        // answers to a run that cannot start.
        eprintln!("breakout: {}", front::exec_harness(id));
        return ExitCode::from(2);
    }
    let first = std::env::var_os(breakout_runtime::sealed_exe::MARKER_ENV).is_none();
    trace::start_launch_clock();
    if first {
        trace::point("started");
    }
    let Cli::Sandbox(args) = Cli::parse();
    trace::point("arguments parsed");
    let cfg = match sandbox::load(&args) {
        Ok(cfg) => cfg,
        Err(code) => return ExitCode::from(code.clamp(0, 255) as u8),
    };
    // The first process decides (sealed_exe::seal_decision): it runs on from the binary on disk
    // where nobody the sandbox can be may write it, else re-executes through the sealed view,
    // and that process, which parses its command line again, only checks its view and build.
    let seal = first.then(|| breakout_runtime::sealed_exe::seal_decision_for(&cfg));
    match seal {
        Some(d) if !d.seal => {
            trace::point(&format!("running from the binary on disk: {}", d.why));
        }
        _ => {
            if let Err(e) = breakout_runtime::sealed_exe::reexec_sealed(id) {
                eprintln!("breakout: {e}");
                return ExitCode::from(125);
            }
            trace::point("running sealed");
        }
    }
    ExitCode::from(sandbox::run_with(args, cfg).clamp(0, 255) as u8)
}
