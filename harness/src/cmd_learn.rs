//! `breakout learn`: run a command in a fresh VM under the `none` profile with the recording
//! filter (every syscall handed to the runtime and let through, see
//! runtime/src/seccomp/record.rs), and write what it called as an allowlist: our TOML (the shape
//! of strict's) or Docker's JSON. Inside the VM (or with `--here`, as root) the command runs on
//! this machine and the recording goes to the host over the result channel.

use breakout_runtime::seccomp::learned::{self, LearnError};
use breakout_runtime::seccomp::Recording;
use breakout_runtime::{spawn, Payload, SandboxConfig};
use breakout_vm::{Accel, GuestFile, Stream, VmConfig, VmSink};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
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

#[derive(Debug, clap::Args)]
pub struct LearnArgs {
    /// Write the profile here (default: stdout).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// toml (ours) or docker (JSON).
    #[arg(long, value_enum, default_value = "toml")]
    pub format: Format,
    /// Record on this machine instead of a VM (root; the default inside the VM).
    #[arg(long)]
    pub here: bool,
    /// Inside the VM: send the recording to the host instead of writing a profile.
    #[arg(long, hide = true)]
    pub emit_result: bool,
    /// Kill the command after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub timeout: u64,
    /// auto (KVM when a real boot works here, else TCG), kvm or tcg.
    #[arg(long, default_value = "auto")]
    pub accel: Accel,
    /// The kernel: debian-12 (the default), debian-13, or the path of a bzImage.
    #[arg(long, value_name = "PATH")]
    pub kernel: Option<PathBuf>,
    /// The command and its arguments, as found in the guest.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

/// What the guest sends the host: one result line.
#[derive(Debug, Serialize, Deserialize)]
struct LearnResult {
    /// What was learned from (`the command "sh -c ..."`).
    source: String,
    recording: Recording,
}

fn fail(code: i32, msg: impl std::fmt::Display) -> i32 {
    eprintln!("breakout learn: {msg}");
    code
}

pub fn run(args: LearnArgs) -> u8 {
    let code = if args.here || breakout_vm::guest::in_vm() {
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

fn source_of(command: &[String]) -> String {
    format!("the command `{}`", command.join(" "))
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
    out: Option<std::fs::File>,
    out_path: Option<&Path>,
) -> i32 {
    let text = match format {
        Format::Toml => learned::to_toml(rec, source),
        Format::Docker => learned::to_docker_json(rec, source),
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

/// Record `command` under `none` on this machine. Err is (exit code, the line to print).
pub fn record_command(command: &[String], timeout: Duration) -> Result<Recording, (i32, String)> {
    let mut cfg = SandboxConfig::builtin("none").map_err(|e| (BAD_INPUT, e.to_string()))?;
    cfg.set_record_syscalls(true);
    let mut payload = Payload::new(command.iter().map(String::as_str));
    // The command's output goes to our stderr: stdout may be the profile.
    payload.stdout = dup_stderr();
    payload.stderr = dup_stderr();
    let mut sb = spawn(&cfg, payload).map_err(|e| (BAD_INPUT, e.to_string()))?;
    let outcome = match sb.wait_timeout(timeout) {
        Ok(Some(o)) => o,
        Ok(None) => {
            sb.kill();
            let _ = sb.wait();
            return Err((
                BAD_INPUT,
                format!(
                    "{} did not end within {}s under `none` (--timeout)",
                    source_of(command),
                    timeout.as_secs()
                ),
            ));
        }
        Err(e) => return Err((BAD_INPUT, e.to_string())),
    };
    let where_ = if breakout_vm::guest::in_vm() {
        "in the guest"
    } else {
        "on this machine"
    };
    if let Some(f) = &outcome.setup_failure {
        let missing = f.syscall.starts_with("execve") && outcome.status.code() == 127;
        return Err((
            BAD_INPUT,
            if missing {
                format!(
                    "`{}` does not exist {where_} ({f})",
                    command.first().map(String::as_str).unwrap_or("")
                )
            } else {
                format!("{} could not start under `none`: {f}", source_of(command))
            },
        ));
    }
    if outcome.status.code() != 0 {
        return Err((
            BAD_INPUT,
            format!(
                "{} failed under `none` {where_} (exit {}): learn from a run that works",
                source_of(command),
                outcome.status.code()
            ),
        ));
    }
    let rec = outcome
        .recording
        .ok_or((INCOMPLETE, "the runtime returned no recording".to_string()))?;
    if let Some(e) = &rec.error {
        return Err((INCOMPLETE, format!("the recording is incomplete: {e}")));
    }
    Ok(rec)
}

fn dup_stderr() -> Option<OwnedFd> {
    std::io::stderr().as_fd().try_clone_to_owned().ok()
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
    let rec = match record_command(&args.command, Duration::from_secs(args.timeout)) {
        Ok(r) => r,
        Err((code, msg)) => return fail(code, msg),
    };
    let source = source_of(&args.command);
    if args.emit_result {
        let sent = breakout_vm::guest::results().and_then(|mut w| {
            w.send_json(&LearnResult {
                source,
                recording: rec,
            })
        });
        return match sent {
            Ok(()) => 0,
            Err(e) => fail(BAD_INPUT, e),
        };
    }
    write_profile(&rec, &source, args.format, out, args.out.as_deref())
}

struct Collect {
    result: Option<Result<LearnResult, String>>,
}

impl VmSink for Collect {
    fn output(&mut self, _stream: Stream, bytes: &[u8]) {
        // Everything the guest prints (the command's output, our messages) goes to stderr:
        // stdout is the profile.
        let _ = std::io::stderr().lock().write_all(bytes);
    }

    fn result_line(&mut self, line: &str) {
        self.result = Some(
            serde_json::from_str(line)
                .map_err(|e| format!("unreadable recording from the guest: {e}")),
        );
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
        crate::run::GUEST_BREAKOUT.to_string(),
        "learn".into(),
        "--here".into(),
        "--emit-result".into(),
        "--timeout".into(),
        args.timeout.to_string(),
        "--".into(),
    ];
    argv.extend(args.command.iter().cloned());
    let cfg = VmConfig {
        kernel: args.kernel.clone(),
        accel: args.accel,
        timeout: Some(Duration::from_secs(args.timeout + 60)),
        boot_timeout: Duration::from_secs(180),
        files: vec![GuestFile {
            host: exe,
            guest: PathBuf::from(crate::run::GUEST_BREAKOUT),
        }],
        ..VmConfig::default()
    };
    let mut sink = Collect { result: None };
    let code = match breakout_vm::run(&cfg, &argv, &mut sink) {
        Ok(o) => o.exit_code,
        Err(e) => return fail(e.exit_code(), e),
    };
    if code != 0 {
        // The guest said why on its stderr (streamed above).
        return code;
    }
    match sink.result {
        Some(Ok(r)) => write_profile(
            &r.recording,
            &r.source,
            args.format,
            out,
            args.out.as_deref(),
        ),
        Some(Err(e)) => fail(INCOMPLETE, e),
        None => fail(INCOMPLETE, "the guest sent no recording"),
    }
}
