//! The `breakout` command-line tool. Each subcommand lives in a module of its own.

use clap::Parser;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "breakout", version, about = "Escape-attempt suite and test harness for Linux sandboxes")]
enum Cli {}

mod model;

fn main() -> ExitCode {
    let _cli = Cli::parse();
    ExitCode::SUCCESS
}
