//! The guest's PID 1 (`breakout-init`): switch the root to a tmpfs, set the guest up, run the
//! command with its output and results framed onto the serial line, report the exit, power
//! off. Only [`main`] is meant to be called, by the `breakout-init` binary.

mod kmsg;
mod root;
mod serial;
mod setup;
mod supervise;

use crate::channel::{FrameKind, ReadyReport};
use crate::cmdline::GuestCommand;
use serial::Serial;
use thiserror::Error;

/// A setup step that failed, with the call that failed.
#[derive(Debug, Error)]
pub enum InitError {
    #[error("{step}: {source}")]
    Sys { step: String, source: nix::Error },
    #[error("{step}: {source}")]
    Io {
        step: String,
        source: std::io::Error,
    },
    #[error("reading the command from /proc/cmdline: {0}")]
    Cmdline(#[from] crate::cmdline::CmdlineError),
}

pub(crate) fn sys(step: impl Into<String>) -> impl FnOnce(nix::Error) -> InitError {
    let step = step.into();
    move |source| InitError::Sys { step, source }
}

pub(crate) fn io(step: impl Into<String>) -> impl FnOnce(std::io::Error) -> InitError {
    let step = step.into();
    move |source| InitError::Io { step, source }
}

/// Guest clock (CLOCK_BOOTTIME) in milliseconds.
pub(crate) fn uptime_ms() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(|t| t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000)
        .unwrap_or(0)
}

/// Entry point of `breakout-init`; never returns as PID 1.
pub fn main() -> i32 {
    if nix::unistd::getpid().as_raw() != 1 {
        // Outside PID 1 the binary only answers the self-test used by the KVM trial.
        let args: Vec<String> = std::env::args().skip(1).collect();
        return match args.as_slice() {
            [a] if a == "--selftest" => 0,
            _ => {
                eprintln!(
                    "breakout-init is the guest's PID 1; run commands with `breakout vm-run`"
                );
                2
            }
        };
    }
    let init_start_ms = uptime_ms();
    // Files we create get exactly the modes we ask for.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let mut serial = Serial::console();
    match boot(init_start_ms, &mut serial) {
        Ok(()) => {}
        Err(e) => {
            let _ = serial.send(FrameKind::Failed, e.to_string().as_bytes());
        }
    }
    serial.drain();
    power_off()
}

fn boot(init_start_ms: u64, serial: &mut Serial) -> Result<(), InitError> {
    root::switch_to_tmpfs()?;
    setup::mount_all()?;
    let shared_console = serial.open_data_port()?;
    setup::quiet_console()?;
    setup::unlimited_audit_log()?;
    setup::cgroups()?;
    setup::loopback_up()?;
    setup::hostname()?;
    let overlay_note = setup::overlay_module();
    let text = std::fs::read_to_string("/proc/cmdline").map_err(io("read /proc/cmdline"))?;
    let command = GuestCommand::from_cmdline(&text)?;
    let results = setup::results_fifo()?;
    let kmsg = kmsg::Kmsg::open()?;
    let ready = ReadyReport {
        init_start_ms,
        init_ready_ms: uptime_ms(),
    };
    serial
        .send(
            FrameKind::Ready,
            &serde_json::to_vec(&ready).unwrap_or_default(),
        )
        .map_err(io("write to the serial channel"))?;
    for note in [shared_console, overlay_note].into_iter().flatten() {
        serial
            .send(FrameKind::Kernel, note.as_bytes())
            .map_err(io("write to the serial channel"))?;
    }
    supervise::run(&command, serial, results, kmsg)
}

fn power_off() -> i32 {
    // reboot() only returns on failure; PID 1 must not exit (that panics the kernel), so
    // the fallback is to halt in place and let the host's timeout end QEMU.
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
