//! `breakout guest-exec --plan FILE` (hidden): the orchestrator inside the VM, started by
//! `breakout run`; the work is [`crate::suite::guest`].

use crate::adapters;
use crate::suite::guest::{self, GuestInputs};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct GuestArgs {
    /// The plan file written by the host.
    #[arg(long, value_name = "FILE")]
    pub plan: PathBuf,
    /// Where the outside world is built.
    #[arg(long, value_name = "DIR", default_value = breakout_attacks::world::GUEST_WORLD_DIR)]
    pub world: PathBuf,
    /// The inside half's binary.
    #[arg(long, value_name = "PATH", default_value = "/usr/bin/breakout-probe")]
    pub probe_bin: PathBuf,
    /// The accelerator the host booted the guest with (for the environment block).
    #[arg(long, default_value = "unknown")]
    pub accel: String,
}

/// Exit codes: 0 the plan ran (whatever the verdicts), 1 the guest could not run it.
pub fn run(args: GuestArgs) -> u8 {
    let inputs = GuestInputs {
        plan: args.plan,
        world: args.world,
        probe_bin: args.probe_bin,
        accel: args.accel,
    };
    guest::run(&inputs, adapters::launcher_for)
}
