//! `breakout learn`: run a command in a fresh VM under the `none` profile with the recording
//! filter (every syscall handed to the runtime and let through, see
//! runtime/src/seccomp/record.rs), and write what it called as an allowlist: our TOML (the shape
//! of strict's) or Docker's JSON. Inside the VM (or with `--here`, as root) the command runs on
//! this machine and the recording goes to the host over the result channel.
//!
//! `--workload ID...` learns from shipped workloads instead: every workload is recorded (each
//! must work under `none`, checked from outside as in a run), the profile is learned from the
//! named ones, and for every other workload the line says which recorded calls the profile
//! lacks: what would break it.

use crate::suite::learn::{
    named_workloads, record_command, record_workloads, source_of, LearnResult, LearnRunError,
};
use breakout_attacks::workloads;
use breakout_runtime::seccomp::learned::{self, LearnError};
use breakout_runtime::seccomp::Recording;
use breakout_vm::{Accel, GuestFile, Stream, VmConfig, VmSink};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bad input: an unknown format, an unwritable --out, a command that is not there or fails.
const BAD_INPUT: i32 = 125;
/// The recording may lack calls: no profile is written.
const INCOMPLETE: i32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// breakout's TOML allowlist (docs/profile-format.md), native architecture only.
    Toml,
    /// Docker's seccomp JSON (loads with `--seccomp-profile` and in Docker).
    Docker,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DenyArg {
    Errno,
    Kill,
}

impl DenyArg {
    fn deny(self) -> learned::Deny {
        match self {
            DenyArg::Errno => learned::Deny::Errno,
            DenyArg::Kill => learned::Deny::Kill,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct LearnArgs {
    /// Write the profile here (default: stdout).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// toml (ours) or docker (JSON).
    #[arg(long, value_enum, default_value = "toml")]
    pub format: Format,
    /// What the profile does with a call that was not recorded: errno (EPERM, as strict) or
    /// kill (the process dies and a run names the call from the kernel's record).
    #[arg(long, value_enum, default_value = "errno")]
    pub deny: DenyArg,
    /// Record on this machine instead of a VM (root; the default inside the VM).
    #[arg(long)]
    pub here: bool,
    /// Inside the VM: send the recording to the host instead of writing a profile.
    #[arg(long, hide = true)]
    pub emit_result: bool,
    /// Record this many times and unite the recordings (calls made only under contention,
    /// such as futex, may be missing from one run).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub runs: u32,
    /// Kill the command after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub timeout: u64,
    /// auto (KVM when a real boot works here, else TCG), kvm or tcg.
    #[arg(long, default_value = "auto")]
    pub accel: Accel,
    /// The kernel: debian-12 (the default), debian-13, or the path of a bzImage.
    #[arg(long, value_name = "PATH")]
    pub kernel: Option<PathBuf>,
    /// Learn from these shipped workloads (`breakout list workloads`; `all` for every one)
    /// instead of a command (repeatable).
    #[arg(long = "workload", value_name = "ID", conflicts_with = "command")]
    pub workloads: Vec<String>,
    /// The command and its arguments, as found in the guest.
    #[arg(
        required_unless_present = "workloads",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

fn fail(code: i32, msg: impl std::fmt::Display) -> i32 {
    eprintln!("breakout learn: {msg}");
    code
}

pub fn run(args: LearnArgs) -> u8 {
    let code = if let Err(e) = named_workloads(&args.workloads) {
        fail(BAD_INPUT, e)
    } else if args.here || breakout_vm::guest::in_vm() {
        run_here(&args)
    } else {
        run_in_vm(&args)
    };
    // No profile: leave no empty file behind (--out was created early to fail early).
    if code != 0 {
        if let Some(p) = &args.out {
            if std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.len() == 0) {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    code.clamp(0, 255) as u8
}

/// Open --out before anything runs, so an unwritable path fails first.
fn open_out(out: &Option<PathBuf>) -> Result<Option<std::fs::File>, String> {
    match out {
        None => Ok(None),
        Some(p) => std::fs::File::create(p)
            .map(Some)
            .map_err(|e| format!("--out {}: {e}", p.display())),
    }
}

fn write_profile(
    rec: &Recording,
    source: &str,
    format: Format,
    deny: learned::Deny,
    out: Option<std::fs::File>,
    out_path: Option<&Path>,
) -> i32 {
    let text = match format {
        Format::Toml => learned::to_toml(rec, source, deny),
        Format::Docker => learned::to_docker_json(rec, source, deny),
    };
    let text = match text {
        Ok(t) => t,
        Err(e @ LearnError::ForeignArch(_)) => return fail(BAD_INPUT, e),
        Err(e) => return fail(INCOMPLETE, e),
    };
    let written = match out {
        Some(mut f) => f.write_all(text.as_bytes()),
        None => std::io::stdout().lock().write_all(text.as_bytes()),
    };
    if let Err(e) = written {
        let what = out_path
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "stdout".into());
        return fail(BAD_INPUT, format!("writing {what}: {e}"));
    }
    eprintln!(
        "breakout learn: {} calls from {source} ({} syscalls answered){}",
        rec.native_names().len(),
        rec.notifications,
        out_path
            .map(|p| format!(", written to {}", p.display()))
            .unwrap_or_default()
    );
    0
}

fn run_here(args: &LearnArgs) -> i32 {
    let out = if args.emit_result {
        None
    } else {
        match open_out(&args.out) {
            Ok(o) => o,
            Err(e) => return fail(BAD_INPUT, e),
        }
    };
    let timeout = Duration::from_secs(args.timeout);
    // Several runs, their recordings united: a call made only under contention (futex when a
    // thread is still running at pthread_join) may be missing from any single run.
    let mut results: Vec<LearnResult> = Vec::new();
    for _ in 0..args.runs.max(1) {
        let run = if args.workloads.is_empty() {
            record_command(&args.command, timeout).map(|r| {
                vec![LearnResult {
                    source: source_of(&args.command),
                    workload: None,
                    learned: true,
                    recording: r,
                }]
            })
        } else {
            record_workloads(&args.workloads, timeout)
        };
        let run = match run {
            Ok(r) => r,
            Err(e @ LearnRunError::BadInput(_)) => return fail(BAD_INPUT, e),
            Err(e @ LearnRunError::Incomplete(_)) => return fail(INCOMPLETE, e),
        };
        for r in run {
            match results.iter_mut().find(|x| x.source == r.source) {
                Some(x) => x.recording.merge(&r.recording),
                None => results.push(r),
            }
        }
    }
    if args.emit_result {
        let sent = breakout_vm::guest::results()
            .and_then(|mut w| results.iter().try_for_each(|r| w.send_json(r)));
        return match sent {
            Ok(()) => 0,
            Err(e) => fail(BAD_INPUT, e),
        };
    }
    finish(
        results,
        args.format,
        args.deny.deny(),
        out,
        args.out.as_deref(),
    )
}

/// Merge the learned recordings, write the profile, and say what it lacks for the others.
fn finish(
    results: Vec<LearnResult>,
    format: Format,
    deny: learned::Deny,
    out: Option<std::fs::File>,
    out_path: Option<&Path>,
) -> i32 {
    let learned: Vec<&LearnResult> = results.iter().filter(|r| r.learned).collect();
    let Some(first) = learned.first() else {
        return fail(INCOMPLETE, "nothing was recorded");
    };
    let mut merged = first.recording.clone();
    for r in &learned[1..] {
        merged.merge(&r.recording);
    }
    let source = if learned.len() == 1 {
        first.source.clone()
    } else {
        format!(
            "workloads {}",
            learned
                .iter()
                .filter_map(|r| r.workload.as_deref())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let code = write_profile(&merged, &source, format, deny, out, out_path);
    if code != 0 {
        return code;
    }
    // What the profile lacks for every workload it was not learned from, from the profile as
    // our loader reads it back (the same allowlist whatever the format).
    let Ok(toml) = learned::to_toml(&merged, &source, deny) else {
        return code;
    };
    let profile = match breakout_runtime::seccomp::allowlist::parse(&toml, Path::new("learned")) {
        Ok(p) => p.resolve(&breakout_runtime::seccomp::ResolveContext::native(
            Default::default(),
        )),
        Err(e) => {
            return fail(
                INCOMPLETE,
                format!("the learned profile does not load: {e}"),
            )
        }
    };
    for r in results.iter().filter(|r| !r.learned) {
        let lacks = learned::missing_from(&r.recording, &profile);
        let id = r.workload.as_deref().unwrap_or("?");
        if lacks.is_empty() {
            eprintln!("breakout learn: workload {id}: needs nothing more (it would work)");
        } else {
            eprintln!(
                "breakout learn: workload {id}: would break, the profile lacks {}",
                lacks
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    code
}

struct Collect {
    results: Vec<LearnResult>,
    unreadable: Option<String>,
}

impl VmSink for Collect {
    fn output(&mut self, _stream: Stream, bytes: &[u8]) {
        // Everything the guest prints (the command's output, our messages) goes to stderr:
        // stdout is the profile.
        let _ = std::io::stderr().lock().write_all(bytes);
    }

    fn result_line(&mut self, line: &str) {
        match serde_json::from_str(line) {
            Ok(r) => self.results.push(r),
            Err(e) => self.unreadable = Some(format!("unreadable recording from the guest: {e}")),
        }
    }

    fn console_line(&mut self, _line: &str) {}
}

fn run_in_vm(args: &LearnArgs) -> i32 {
    let out = match open_out(&args.out) {
        Ok(o) => o,
        Err(e) => return fail(BAD_INPUT, e),
    };
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            return fail(
                BAD_INPUT,
                format!("cannot find the running executable: {e}"),
            )
        }
    };
    let mut argv = vec![
        crate::suite::host::GUEST_HARNESS.to_string(),
        "learn".into(),
        "--here".into(),
        "--emit-result".into(),
        "--timeout".into(),
        args.timeout.to_string(),
        "--runs".into(),
        args.runs.to_string(),
        "--".into(),
    ];
    for w in &args.workloads {
        argv.insert(argv.len() - 1, "--workload".into());
        argv.insert(argv.len() - 1, w.clone());
    }
    if args.workloads.is_empty() {
        argv.extend(args.command.iter().cloned());
    } else {
        argv.pop();
    }
    let mut cfg = VmConfig {
        kernel: args.kernel.clone(),
        accel: args.accel,
        timeout: Some(Duration::from_secs(
            args.timeout * u64::from(args.runs.max(1)) + 60,
        )),
        boot_timeout: Duration::from_secs(180),
        files: vec![GuestFile {
            host: exe,
            guest: PathBuf::from(crate::suite::host::GUEST_HARNESS),
        }],
        ..VmConfig::default()
    };
    if !args.workloads.is_empty() {
        // The workloads' files (Python, git, the C programs) come as the second image.
        cfg.bundle = Some(crate::workloads::bundle_spec());
        // Every workload is recorded, one after the other.
        cfg.timeout = Some(Duration::from_secs(
            args.timeout * workloads::workloads().len() as u64 * u64::from(args.runs.max(1)) + 60,
        ));
    }
    let mut sink = Collect {
        results: Vec::new(),
        unreadable: None,
    };
    let code = match breakout_vm::run(&cfg, &argv, &mut sink) {
        Ok(o) => o.exit_code,
        Err(e) => return fail(e.exit_code(), e),
    };
    if code != 0 {
        // The guest said why on its stderr (streamed above).
        return code;
    }
    if let Some(e) = sink.unreadable {
        return fail(INCOMPLETE, e);
    }
    if sink.results.is_empty() {
        return fail(INCOMPLETE, "the guest sent no recording");
    }
    finish(
        sink.results,
        args.format,
        args.deny.deny(),
        out,
        args.out.as_deref(),
    )
}
