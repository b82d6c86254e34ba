//! `breakout sandbox`: run one command in the sandbox and exit with its status (128+N for a
//! signal; 125 runtime failure or bad input, 126 cannot execute, 127 not found).

use breakout_runtime::{spawn, Layer, Payload, SandboxConfig};
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

/// Exit code for a failure of the runtime itself or bad input.
const RUNTIME_FAILURE: i32 = 125;

#[derive(clap::Args, Debug)]
pub struct SandboxArgs {
    /// A builtin profile: none, namespaces, docker-default, strict, rootless.
    #[arg(long, value_name = "NAME", conflicts_with = "config")]
    pub profile: Option<String>,
    /// A profile file (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Switch a layer on (repeatable).
    #[arg(long = "enable", value_name = "LAYER")]
    pub enable: Vec<String>,
    /// Switch a layer off (repeatable).
    #[arg(long = "disable", value_name = "LAYER")]
    pub disable: Vec<String>,
    /// Load this seccomp profile (Docker/OCI JSON or breakout TOML) and switch seccomp on.
    #[arg(long, value_name = "JSON")]
    pub seccomp_profile: Option<PathBuf>,
    /// Give the command a pseudo-terminal owned by the runtime (like `docker run -t`).
    #[arg(long)]
    pub tty: bool,
    /// The command and its arguments.
    #[arg(last = true, value_name = "CMD")]
    pub cmd: Vec<OsString>,
}

fn fail(msg: impl std::fmt::Display) -> i32 {
    say(msg);
    RUNTIME_FAILURE
}

/// One line on stderr, `breakout: ` first. A stderr nobody reads (`... 2>&1 | head -1` once head
/// has exited) loses the line, never the launch: eprintln! would panic, before the payload's
/// status or the runtime's cleanup.
fn say(msg: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "breakout: {msg}");
}

/// Build the configuration the flags describe.
pub fn config_from(args: &SandboxArgs) -> Result<SandboxConfig, String> {
    let mut cfg = match (&args.profile, &args.config) {
        (Some(name), None) => SandboxConfig::builtin(name).map_err(|e| e.to_string())?,
        (None, Some(path)) => SandboxConfig::load(path).map_err(|e| e.to_string())?,
        _ => return Err("sandbox: give --profile NAME or --config FILE".into()),
    };
    for (flag, names, on) in [
        ("--enable", &args.enable, true),
        ("--disable", &args.disable, false),
    ] {
        for name in names {
            let layer: Layer = name.parse().map_err(|e| format!("{flag}: {e}"))?;
            cfg.set_enabled(layer, on);
        }
    }
    if let Some(p) = &args.seccomp_profile {
        let spec = p
            .to_str()
            .ok_or_else(|| format!("--seccomp-profile: path {} is not UTF-8", p.display()))?;
        // A bare name is a file in the current directory when one exists there, else a builtin
        // profile name (`--seccomp-profile strict` as `profile = "strict"` in a file).
        let spec = if spec.contains('/') || !p.exists() {
            spec.to_string()
        } else {
            format!("./{spec}")
        };
        cfg.set_seccomp_profile(&spec)
            .map_err(|e| format!("--seccomp-profile: {e}"))?;
        if !args.disable.iter().any(|d| d == "seccomp") {
            cfg.set_enabled(Layer::Seccomp, true);
        }
    }
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(cfg)
}

/// Layers that only root can set up for a non-rootless profile: the namespaces (and the id maps
/// naming other users), the uid switch, the capability cuts (PR_CAPBSET_DROP needs CAP_SETPCAP),
/// seccomp without no-new-privs (CAP_SYS_ADMIN), and the cgroup leaf under a root-owned parent.
const ROOT_ONLY: &[Layer] = &[
    Layer::UserNs,
    Layer::PidNs,
    Layer::MountNs,
    Layer::NetNs,
    Layer::IpcNs,
    Layer::UtsNs,
    Layer::CgroupNs,
    Layer::Uid,
    Layer::Caps,
    Layer::CgroupLimits,
];

/// A non-root caller asking for layers only root can set up gets one line naming them and the
/// way out, before anything starts (instead of `setgroups(0, []): EPERM` from deep in the chain).
pub fn needs_root(cfg: &SandboxConfig, euid: u32) -> Option<String> {
    if euid == 0 || cfg.rootless {
        return None;
    }
    let mut layers: Vec<String> = ROOT_ONLY
        .iter()
        .filter(|l| cfg.enabled(**l))
        .map(|l| l.to_string())
        .collect();
    if cfg.enabled(Layer::Seccomp) && !cfg.enabled(Layer::NoNewPrivs) {
        layers.push("seccomp (without no-new-privs)".to_string());
    }
    if layers.is_empty() {
        return None;
    }
    Some(format!(
        "profile `{}` needs root for {} (started as uid {euid}): run it as root, or use `--profile rootless` (strict for an unprivileged user)",
        cfg.name,
        layers.join(", ")
    ))
}

fn dup_std(fd: i32) -> Option<OwnedFd> {
    // SAFETY: 0, 1, 2 are borrowed only for the duration of the dup.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    nix::fcntl::fcntl(b.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFD).ok()?;
    b.try_clone_to_owned().ok()
}

pub fn run(args: SandboxArgs) -> i32 {
    match load(&args) {
        Ok(cfg) => run_with(args, cfg),
        Err(code) => code,
    }
}

/// The configuration of a `sandbox` command line, or the exit code of its bad input (said).
pub fn load(args: &SandboxArgs) -> Result<SandboxConfig, i32> {
    if args.cmd.is_empty() {
        return Err(fail(
            "sandbox: no command given (usage: breakout sandbox --profile NAME -- CMD [ARGS])",
        ));
    }
    let cfg = config_from(args).map_err(fail)?;
    breakout_runtime::trace::point("profile loaded");
    Ok(cfg)
}

/// [`run`] with the configuration [`load`] made of `args`.
pub fn run_with(args: SandboxArgs, cfg: SandboxConfig) -> i32 {
    if let Some(problem) = needs_root(&cfg, nix::unistd::geteuid().as_raw()) {
        return fail(problem);
    }
    // Valid but weaker than it looks: said once, before the payload's own output.
    for w in cfg.warnings() {
        say(format_args!("warning: {w}"));
    }
    let mut payload = Payload::new(args.cmd.clone());
    for var in ["TERM", "BREAKOUT_IN_VM"] {
        if let Some(v) = std::env::var_os(var) {
            payload.env.push((var.into(), v));
        }
    }
    payload.tty = args.tty;
    if !args.tty {
        payload.stdin = dup_std(0);
        payload.stdout = dup_std(1);
        payload.stderr = dup_std(2);
    }
    let mut sandbox = match spawn(&cfg, payload) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    // A ruleset the kernel enforces only in part is never silent.
    if let Some(ll) = sandbox.landlock() {
        if ll.enforcement == breakout_runtime::LandlockEnforcement::Partial {
            say(ll.summary());
        }
    }
    if args.tty {
        if let Some(master) = sandbox.pty_master() {
            if let Err(e) = tty::relay(master) {
                sandbox.kill();
                let _ = sandbox.wait();
                return fail(format!("--tty: {e}"));
            }
        }
    }
    match sandbox.wait() {
        Ok(outcome) => {
            if let Some(f) = &outcome.setup_failure {
                say(f);
            }
            if let Some(k) = &outcome.seccomp_kill {
                say(k);
            }
            outcome.status.code()
        }
        Err(e) => fail(e),
    }
}

/// The `--tty` relay: the caller's terminal in raw mode, bytes copied both ways until the
/// payload's side of the pty closes.
mod tty {
    use super::*;
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::termios::{self, SetArg};

    pub fn relay(master: BorrowedFd<'_>) -> Result<(), String> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)
                .map_err(|e| format!("raw mode: {e}"))?;
            copy_winsize(master);
        }
        let res = pump(master);
        if let Some(t) = &saved {
            let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, t);
        }
        res
    }

    fn copy_winsize(master: BorrowedFd<'_>) {
        // SAFETY: winsize is plain data; TIOCGWINSZ/TIOCSWINSZ read/write exactly one.
        unsafe {
            let mut ws: libc::winsize = std::mem::zeroed();
            if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
                libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
            }
        }
    }

    fn pump(master: BorrowedFd<'_>) -> Result<(), String> {
        let stdin = std::io::stdin();
        let mut stdin_open = true;
        let mut buf = [0u8; 4096];
        loop {
            let mut fds = vec![PollFd::new(master, PollFlags::POLLIN)];
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
            // Wake up now and then to pass window-size changes on (no SIGWINCH handler needed).
            copy_winsize(master);
            match poll(&mut fds, PollTimeout::from(250u16)) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(format!("poll: {e}")),
            }
            let m = fds[0].revents().unwrap_or(PollFlags::empty());
            let i = fds
                .get(1)
                .and_then(|f| f.revents())
                .unwrap_or(PollFlags::empty());
            if m.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                match nix::unistd::read(master.as_raw_fd(), &mut buf) {
                    Ok(0) | Err(nix::errno::Errno::EIO) => return Ok(()),
                    Ok(n) => write_all(std::io::stdout().as_fd(), &buf[..n])?,
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(format!("read from pty: {e}")),
                }
            }
            if i.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
                match nix::unistd::read(stdin.as_raw_fd(), &mut buf) {
                    Ok(0) => stdin_open = false,
                    Ok(n) => write_all(master, &buf[..n])?,
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => stdin_open = false,
                }
            }
        }
    }

    fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> Result<(), String> {
        while !data.is_empty() {
            match nix::unistd::write(fd, data) {
                Ok(n) => data = &data[n..],
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_root_caller_is_told_which_layers_need_root() {
        let strict = SandboxConfig::builtin("strict").unwrap();
        let msg = needs_root(&strict, 1000).unwrap();
        assert!(msg.contains("user-ns, pid-ns"), "{msg}");
        assert!(msg.contains("uid 1000"), "{msg}");
        assert!(msg.contains("--profile rootless"), "{msg}");
        assert_eq!(needs_root(&strict, 0), None);
        let rootless = SandboxConfig::builtin("rootless").unwrap();
        assert_eq!(needs_root(&rootless, 1000), None);
        let none = SandboxConfig::builtin("none").unwrap();
        assert_eq!(needs_root(&none, 1000), None);
    }
}
