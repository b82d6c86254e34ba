//! The host side of one disposable VM: prepare (kernel, image, accelerator), boot, stream the
//! command's output and results to a sink while watching the deadlines, and turn the end of
//! the run into an exit code or a [`VmError`].

use crate::accel;
use crate::channel::{ExitReport, ReadyReport};
use crate::cmdline::GuestCommand;
use crate::console::{Console, ConsoleEvent, Phase};
use crate::error::VmError;
use crate::initramfs::{self, GuestFile, ImageSpec};
use crate::kernel::Kernel;
use crate::qemu::{self, Accel, Launch, QemuProcess};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Which of the command's streams bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Receives what the guest sends, as it arrives.
pub trait VmSink {
    /// Bytes the command wrote, in order within each stream.
    fn output(&mut self, stream: Stream, bytes: &[u8]);
    /// One structured result line (JSON), without its newline.
    fn result_line(&mut self, line: &str);
    /// Kernel text (console lines and forwarded log records); ignored unless wanted.
    fn console_line(&mut self, _line: &str) {}
}

/// A sink that drops everything.
#[derive(Debug, Default)]
pub struct NullSink;

impl VmSink for NullSink {
    fn output(&mut self, _: Stream, _: &[u8]) {}
    fn result_line(&mut self, _: &str) {}
}

/// A sink that collects everything (tests, small tools).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CollectSink {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub results: Vec<String>,
    pub console: Vec<String>,
}

impl VmSink for CollectSink {
    fn output(&mut self, stream: Stream, bytes: &[u8]) {
        match stream {
            Stream::Stdout => self.stdout.extend_from_slice(bytes),
            Stream::Stderr => self.stderr.extend_from_slice(bytes),
        }
    }
    fn result_line(&mut self, line: &str) {
        self.results.push(line.to_string());
    }
    fn console_line(&mut self, line: &str) {
        self.console.push(line.to_string());
    }
}

/// Everything about one VM run.
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// A bzImage; None: Debian's cloud kernel from the cache (downloaded once).
    pub kernel: Option<PathBuf>,
    pub accel: Accel,
    pub memory_mib: u32,
    pub cpus: u32,
    /// Limit on the command's run time (from its start in the guest); None: no limit.
    pub timeout: Option<Duration>,
    /// Limit from QEMU's start to the command's start.
    pub boot_timeout: Duration,
    /// Host files put in the guest (binaries with their libraries).
    pub files: Vec<GuestFile>,
    /// Extra `KEY=VALUE` environment for the command (on top of PATH, HOME, BREAKOUT_IN_VM=1).
    pub env: Vec<(String, String)>,
    /// Working directory in the guest, used when it exists there (else /).
    pub cwd: Option<PathBuf>,
    /// The guest init binary; None: `breakout-init` found by [`find_init`].
    pub init: Option<PathBuf>,
    /// busybox for the guest; None: /bin/busybox when the host has it.
    pub busybox: Option<PathBuf>,
    /// Where kernels, images and the accelerator decision are kept; None: [`cache_dir`].
    pub cache_dir: Option<PathBuf>,
    /// The QEMU binary; None: qemu-system-x86_64 from PATH.
    pub qemu: Option<PathBuf>,
    /// Leave DWARF debug information out of the guest's binaries (faster boots; symbols
    /// stay). Default true.
    pub strip_debug: bool,
    /// A second image unpacked over the first (the workloads' files, [`crate::bundle`]); None
    /// boots the first image alone.
    pub bundle: Option<crate::bundle::BundleSpec>,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            kernel: None,
            accel: Accel::Auto,
            memory_mib: 1024,
            cpus: 2,
            timeout: None,
            boot_timeout: Duration::from_secs(60),
            files: Vec::new(),
            env: Vec::new(),
            cwd: None,
            init: None,
            busybox: None,
            cache_dir: None,
            qemu: None,
            strip_debug: true,
            bundle: None,
        }
    }
}

/// Where the time went, host clock unless said otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BootTimings {
    /// Our work before QEMU starts: kernel lookup, image build or cache hit, accelerator.
    pub prepare: Duration,
    /// QEMU start until the guest kernel's clock starts (QEMU, firmware, kernel loading).
    pub qemu_start: Duration,
    /// Kernel boot until init runs (guest clock).
    pub kernel: Duration,
    /// Init's setup: root switch, mounts, cgroups, lo (guest clock).
    pub init: Duration,
    /// Init ready until the command's start was reported.
    pub command_start: Duration,
    /// The command's run time as the host saw it.
    pub command: Duration,
    /// The command's end until QEMU exited.
    pub shutdown: Duration,
    /// Everything, from the call to the return.
    pub total: Duration,
}

/// A run that came to an end normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmOutcome {
    /// The command's exit code, or 128+N when it was killed by signal N.
    pub exit_code: i32,
    pub timings: BootTimings,
    /// The accelerator actually used.
    pub accel: Accel,
}

/// The cache directory: $BREAKOUT_CACHE, else $XDG_CACHE_HOME/breakout, else ~/.cache/breakout.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BREAKOUT_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("breakout");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/breakout")
}

/// Guest directories that init mounts a fresh filesystem on: files put there in the image would
/// be hidden.
const MOUNTED_OVER: [&str; 5] = ["/tmp", "/run", "/dev", "/proc", "/sys"];

fn mounted_over(guest: &Path) -> bool {
    MOUNTED_OVER.iter().any(|m| guest.starts_with(m))
}

/// Where the command given as a host path goes in the guest: its own path, unless that is
/// under a directory init mounts over (a test binary in a checkout under /tmp, say); then under
/// /host, with argv[0] rewritten to match.
fn visible_guest_path(host: &Path) -> PathBuf {
    if mounted_over(host) {
        Path::new("/host").join(host.strip_prefix("/").unwrap_or(host))
    } else {
        host.to_path_buf()
    }
}

/// The kernel a run with this configuration boots: `cfg.kernel`, or the cached default
/// (downloaded on first use). [`Kernel::missing_options`] tells what its config lacks.
pub fn resolve_kernel(cfg: &VmConfig) -> Result<Kernel, VmError> {
    let cache = cfg.cache_dir.clone().unwrap_or_else(cache_dir);
    Ok(match &cfg.kernel {
        Some(k) => crate::kernel::resolve(k, &cache)?,
        None => crate::kernel::provision_default(&cache)?,
    })
}

/// Finds `breakout-init`: $BREAKOUT_INIT, else next to the running executable or one level up
/// (cargo puts test binaries in `target/<profile>/deps`).
pub fn find_init() -> Result<PathBuf, VmError> {
    if let Some(p) = std::env::var_os("BREAKOUT_INIT") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(VmError::Config(format!(
                "BREAKOUT_INIT={} is not a file",
                p.display()
            )))
        };
    }
    let exe = std::env::current_exe().map_err(|source| VmError::Io {
        what: "cannot find the running executable",
        path: PathBuf::from("/proc/self/exe"),
        source,
    })?;
    let mut tried = Vec::new();
    for dir in exe.ancestors().skip(1).take(2) {
        let candidate = dir.join("breakout-init");
        if candidate.is_file() {
            return Ok(candidate);
        }
        tried.push(candidate.display().to_string());
    }
    Err(VmError::Config(format!(
        "the guest init binary breakout-init is not in {}; build it with \
         `cargo build -p breakout-vm --bin breakout-init` or set BREAKOUT_INIT",
        tried.join(" or ")
    )))
}

fn validate(cfg: &VmConfig, argv: &[String]) -> Result<(), VmError> {
    if argv.is_empty() {
        return Err(VmError::Config("no command given".into()));
    }
    if cfg.memory_mib < 128 {
        return Err(VmError::Config(format!(
            "memory {} MiB is too small: the guest needs at least 128",
            cfg.memory_mib
        )));
    }
    if cfg.cpus == 0 || cfg.cpus > 64 {
        return Err(VmError::Config(format!(
            "cpus {} is out of range 1..=64",
            cfg.cpus
        )));
    }
    if cfg.timeout == Some(Duration::ZERO) {
        return Err(VmError::Config("timeout 0 would kill every command".into()));
    }
    for (k, _) in &cfg.env {
        if k.is_empty() || k.contains('=') {
            return Err(VmError::Config(format!(
                "environment variable name {k:?} is empty or contains '='"
            )));
        }
    }
    Ok(())
}

/// Runs `argv` in a fresh VM. The command's output and result lines go to `sink` as they come;
/// the return is its exit code, or the reason the run failed.
pub fn run(cfg: &VmConfig, argv: &[String], sink: &mut dyn VmSink) -> Result<VmOutcome, VmError> {
    let t0 = Instant::now();
    validate(cfg, argv)?;
    let qemu_name = cfg
        .qemu
        .clone()
        .unwrap_or_else(|| PathBuf::from(qemu::DEFAULT_QEMU));
    let qemu_bin =
        qemu::find_program(&qemu_name.to_string_lossy()).ok_or_else(|| VmError::QemuMissing {
            binary: qemu_name.display().to_string(),
        })?;
    let cache = cfg.cache_dir.clone().unwrap_or_else(cache_dir);
    let kernel = resolve_kernel(cfg)?;

    let mut argv = argv.to_vec();
    let mut files = cfg.files.clone();
    files.extend(kernel.modules.iter().cloned());
    if argv[0].contains('/') {
        let host = std::path::absolute(&argv[0]).map_err(|source| VmError::Io {
            what: "cannot resolve the command path",
            path: PathBuf::from(&argv[0]),
            source,
        })?;
        if host.is_file() {
            let guest = visible_guest_path(&host);
            argv[0] = guest.to_string_lossy().into_owned();
            files.push(GuestFile { host, guest });
        }
    }
    if let Some(hidden) = files.iter().find(|f| mounted_over(&f.guest)) {
        return Err(VmError::Config(format!(
            "guest path {} is under a directory the guest's init mounts over ({}), so the file would be hidden; give another guest path (--add HOST:GUEST)",
            hidden.guest.display(),
            MOUNTED_OVER.join(", ")
        )));
    }
    let init = match &cfg.init {
        Some(p) => p.clone(),
        None => find_init()?,
    };
    let busybox = cfg.busybox.clone().or_else(|| {
        let p = PathBuf::from("/bin/busybox");
        p.is_file().then_some(p)
    });
    let image = initramfs::build_cached(
        &ImageSpec {
            init: init.clone(),
            busybox,
            files,
            strip_debug: cfg.strip_debug,
        },
        &cache,
    )?;
    let image = match &cfg.bundle {
        Some(spec) => {
            let second = crate::bundle::build_cached(spec, &cache, cfg.strip_debug)?;
            initramfs::concatenated(&image, &second, &cache)?
        }
        None => image,
    };

    let accel = accel::resolve(cfg.accel, &cache, || {
        kvm_trial(&qemu_bin, &kernel, &image, cfg).is_ok()
    });
    let command = GuestCommand {
        argv,
        env: cfg.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        cwd: cfg.cwd.as_ref().map(|c| c.to_string_lossy().into_owned()),
    };
    let launch = Launch {
        kernel: kernel.image.clone(),
        initrd: image,
        cmdline: command
            .to_cmdline(&qemu::cmdline_for(accel))
            .map_err(|e| VmError::Config(e.to_string()))?,
        memory_mib: cfg.memory_mib,
        cpus: cfg.cpus,
        accel,
    };
    let prepare = t0.elapsed();
    let mut outcome = boot(&qemu_bin, &launch, cfg.boot_timeout, cfg.timeout, sink)?;
    outcome.timings.prepare = prepare;
    outcome.timings.total = t0.elapsed();
    Ok(outcome)
}

/// One boot with KVM running init's self-check; Ok only when it really worked.
fn kvm_trial(
    qemu_bin: &Path,
    kernel: &Kernel,
    image: &Path,
    cfg: &VmConfig,
) -> Result<(), VmError> {
    let command = GuestCommand {
        argv: vec!["/init".into(), "--selftest".into()],
        env: vec![],
        cwd: None,
    };
    let launch = Launch {
        kernel: kernel.image.clone(),
        initrd: image.to_path_buf(),
        cmdline: command
            .to_cmdline(&qemu::cmdline_for(Accel::Kvm))
            .map_err(|e| VmError::Config(e.to_string()))?,
        memory_mib: cfg.memory_mib,
        cpus: cfg.cpus,
        accel: Accel::Kvm,
    };
    let out = boot(
        qemu_bin,
        &launch,
        Duration::from_secs(30),
        Some(Duration::from_secs(10)),
        &mut NullSink,
    )?;
    if out.exit_code == 0 {
        Ok(())
    } else {
        Err(VmError::GuestInit {
            reason: format!("KVM self-test exited with {}", out.exit_code),
            tail: Default::default(),
        })
    }
}

enum Msg {
    /// A line from the console port (QEMU's stdout).
    Console(String),
    /// A line from the data port.
    Data(String),
    /// QEMU's stdout ended, and what the data port held was read after it.
    StdoutClosed,
    Stderr(String),
}

/// Splits one stream's bytes into lines as they arrive (`\n` and any `\r` before it removed).
#[derive(Debug, Default)]
struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    fn push(&mut self, bytes: &[u8], mut emit: impl FnMut(String)) {
        // QEMU writes a UART's bytes one write(2) at a time, so chunks are often tiny: look for
        // newlines in the new bytes only, never in the partial line again.
        let mut searched = self.partial.len();
        self.partial.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(nl) = self.partial[searched..].iter().position(|b| *b == b'\n') {
            let end = searched + nl;
            emit(line_text(&self.partial[start..end]));
            start = end + 1;
            searched = start;
        }
        self.partial.drain(..start);
    }

    /// A last line without its newline (a frame cut off by the end is still seen, as damage).
    fn finish(&mut self, mut emit: impl FnMut(String)) {
        if !self.partial.is_empty() {
            emit(line_text(&self.partial));
            self.partial.clear();
        }
    }
}

fn line_text(mut bytes: &[u8]) -> String {
    while let [rest @ .., b'\r' | b'\n'] = bytes {
        bytes = rest;
    }
    String::from_utf8_lossy(bytes).into_owned()
}

/// Reads both ports until QEMU's stdout ends. One thread for both, so that the end of the
/// console is the end of everything: QEMU closes its stdout only by exiting, and by then every
/// byte it wrote to the data port is in the pipe, which is read empty before `StdoutClosed`.
/// (Waiting for the data pipe's own end instead could wait forever on a child that
/// inherited it.)
fn read_ports(console: File, data: Option<File>, tx: mpsc::Sender<Msg>) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut console = Some(console);
    let mut data = data;
    let mut console_lines = LineSplitter::default();
    let mut data_lines = LineSplitter::default();
    let mut buf = vec![0u8; 1 << 16];
    // Set once the receiving side is gone: nobody wants the lines any more.
    let gone = std::cell::Cell::new(false);
    let send = |msg: Msg| {
        if tx.send(msg).is_err() {
            gone.set(true);
        }
    };
    while let Some(c) = console.as_mut() {
        let (console_ready, data_ready) = {
            let mut fds = vec![PollFd::new(c.as_fd(), PollFlags::POLLIN)];
            if let Some(d) = &data {
                fds.push(PollFd::new(d.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            }
            let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
            (ready(&fds[0]), fds.get(1).is_some_and(ready))
        };
        if data_ready {
            if let Some(d) = data.as_mut() {
                match read_some(d, &mut buf) {
                    Some(n) if n > 0 => data_lines.push(&buf[..n], |l| send(Msg::Data(l))),
                    _ => {
                        data_lines.finish(|l| send(Msg::Data(l)));
                        data = None;
                    }
                }
            }
        }
        if console_ready {
            match read_some(c, &mut buf) {
                Some(n) if n > 0 => console_lines.push(&buf[..n], |l| send(Msg::Console(l))),
                _ => {
                    console_lines.finish(|l| send(Msg::Console(l)));
                    console = None;
                }
            }
        }
        if gone.get() {
            return;
        }
    }
    if let Some(mut d) = data {
        // Whatever QEMU wrote is there now; a writer left behind must not hold us up.
        let _ = set_nonblocking(&d);
        while let Some(n) = read_some(&mut d, &mut buf).filter(|n| *n > 0) {
            data_lines.push(&buf[..n], |l| send(Msg::Data(l)));
        }
        data_lines.finish(|l| send(Msg::Data(l)));
    }
    send(Msg::StdoutClosed);
}

/// One read; None at an error (EAGAIN included), Some(0) at the end.
fn read_some(f: &mut File, buf: &mut [u8]) -> Option<usize> {
    loop {
        match f.read(buf) {
            Ok(n) => return Some(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
}

fn set_nonblocking(f: &File) -> nix::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(f.as_raw_fd(), FcntlArg::F_GETFL)?);
    fcntl(f.as_raw_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(drop)
}

/// How long QEMU gets to exit by itself once the exit report arrived, or once the kernel
/// panicked (it reboots at once, which ends QEMU; a guest stuck on the way is killed).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A frame that arrives this long after a panic line was sent by an init that was still
/// running, so the line was not the kernel's (init says it is alive every 2 s). The margin
/// leaves the frames init sent before a real panic time to arrive: they are in QEMU's pipe
/// already when the panic line is read, and QEMU exits at once on the reboot.
const ALIVE_AFTER_PANIC: Duration = Duration::from_secs(3);

/// Boots one prepared launch and follows it to its end.
pub fn boot(
    qemu_bin: &Path,
    launch: &Launch,
    boot_timeout: Duration,
    timeout: Option<Duration>,
    sink: &mut dyn VmSink,
) -> Result<VmOutcome, VmError> {
    let t0 = Instant::now();
    let mut qemu = QemuProcess::spawn(qemu_bin, &qemu::qemu_args(launch)).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            VmError::QemuMissing {
                binary: qemu_bin.display().to_string(),
            }
        } else {
            VmError::Io {
                what: "cannot start",
                path: qemu_bin.to_path_buf(),
                source,
            }
        }
    })?;
    let (tx, rx) = mpsc::channel::<Msg>();
    let stdout = File::from(OwnedFd::from(qemu.take_stdout().expect("stdout is piped")));
    let stderr = qemu.take_stderr().expect("stderr is piped");
    let data = qemu.take_data();
    let tx_out = tx.clone();
    let out_thread = std::thread::spawn(move || read_ports(stdout, data, tx_out));
    let err_thread = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(Msg::Stderr(line)).is_err() {
                break;
            }
        }
    });

    let mut console = Console::new();
    let mut qemu_stderr: Vec<String> = Vec::new();
    let mut ready: Option<(Instant, ReadyReport)> = None;
    let mut started: Option<Instant> = None;
    let mut exited: Option<(Instant, ExitReport)> = None;
    let mut failure: Option<VmError> = None;
    let mut kvm_error = false;
    let mut panicked_at: Option<Instant> = None;

    loop {
        let now = Instant::now();
        if panicked_at.is_none() && console.panic().is_some() {
            panicked_at = Some(now);
        }
        let deadline = match console.phase() {
            _ if panicked_at.is_some() => panicked_at.map(|t| t + SHUTDOWN_GRACE),
            Phase::Booting | Phase::Ready => Some(t0 + boot_timeout),
            Phase::Running => timeout.and_then(|t| started.map(|s| s + t)),
            Phase::Exited | Phase::Failed => exited
                .map(|(t, _)| t + SHUTDOWN_GRACE)
                .or(Some(now + SHUTDOWN_GRACE)),
        };
        let wait = deadline
            .map(|d| d.saturating_duration_since(now))
            .unwrap_or(Duration::from_secs(3600));
        let frames = console.frames();
        let event = match rx.recv_timeout(wait) {
            Ok(Msg::Console(line)) => console.feed(&line),
            Ok(Msg::Data(line)) => console.feed_data(&line),
            Ok(Msg::Stderr(line)) => {
                if line.contains("KVM internal error") {
                    kvm_error = true;
                    // QEMU stops the guest and waits; nothing more will come.
                    qemu.kill();
                }
                qemu_stderr.push(line);
                continue;
            }
            Ok(Msg::StdoutClosed) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                match console.phase() {
                    // Concluded below from the panic text.
                    _ if panicked_at.is_some() => {}
                    Phase::Booting | Phase::Ready => {
                        failure = Some(VmError::BootTimeout {
                            waited: boot_timeout,
                            tail: console.tail(),
                        })
                    }
                    Phase::Running => {
                        failure = Some(VmError::CommandTimeout {
                            timeout: timeout.unwrap_or_default(),
                            tail: console.tail(),
                        })
                    }
                    // The result is complete; QEMU just did not power off in time.
                    Phase::Exited | Phase::Failed => {}
                }
                qemu.kill();
                break;
            }
        };
        if let Some(t) = panicked_at {
            if console.frames() > frames && t.elapsed() >= ALIVE_AFTER_PANIC {
                console.withdraw_panic();
                panicked_at = None;
            }
        }
        match event {
            ConsoleEvent::Ready(r) => ready = Some((Instant::now(), r)),
            ConsoleEvent::Started(_) => started = Some(Instant::now()),
            ConsoleEvent::Stdout(b) => sink.output(crate::Stream::Stdout, &b),
            ConsoleEvent::Stderr(b) => sink.output(crate::Stream::Stderr, &b),
            ConsoleEvent::Result(l) => sink.result_line(&l),
            ConsoleEvent::Exit(x) => exited = Some((Instant::now(), x)),
            ConsoleEvent::Kernel(l) | ConsoleEvent::Garbled(l) => sink.console_line(&l),
            ConsoleEvent::UserLog(l) => sink.console_line(&format!("(user space) {l}")),
            ConsoleEvent::InitFailed(_) | ConsoleEvent::Alive => {}
        }
    }
    // Give QEMU a moment to exit after its output closed, then make sure it is gone.
    let status = match qemu.wait_for(Duration::from_secs(5)) {
        Ok(Some(s)) => Some(s),
        _ => qemu.kill_and_wait().ok(),
    };
    let qemu_exit = Instant::now();
    // Both readers end now that QEMU's process group is gone (their pipes are closed);
    // QEMU's last words on stderr may still be queued behind the end of its stdout.
    let _ = out_thread.join();
    let _ = err_thread.join();
    for msg in rx.try_iter() {
        if let Msg::Stderr(line) = msg {
            kvm_error |= line.contains("KVM internal error");
            qemu_stderr.push(line);
        }
    }

    if let Some(f) = failure {
        return Err(f);
    }
    let tail = console.tail();
    if let Some((t_exit, report)) = exited {
        if report.global_oom_kill {
            return Err(VmError::GuestOom {
                reason: console
                    .oom()
                    .unwrap_or("the kernel's OOM killer killed the command")
                    .to_string(),
                tail,
            });
        }
        if let Some(lost) = console.loss() {
            return Err(VmError::ChannelLoss { lost, tail });
        }
        let mut timings = BootTimings::default();
        if let Some((t_ready, r)) = ready {
            let guest_ready = Duration::from_millis(r.init_ready_ms);
            timings.qemu_start = (t_ready - t0).saturating_sub(guest_ready);
            timings.kernel = Duration::from_millis(r.init_start_ms);
            timings.init = Duration::from_millis(r.init_ready_ms.saturating_sub(r.init_start_ms));
            if let Some(s) = started {
                timings.command_start = s - t_ready;
                timings.command = t_exit.saturating_duration_since(s);
            }
        }
        timings.shutdown = qemu_exit.saturating_duration_since(t_exit);
        return Ok(VmOutcome {
            exit_code: report.code,
            timings,
            accel: launch.accel,
        });
    }
    if let Some(reason) = console.failure() {
        return Err(VmError::GuestInit {
            reason: reason.to_string(),
            tail,
        });
    }
    if let Some(reason) = console.panic() {
        let oom = console.oom().map(str::to_string).or_else(|| {
            reason
                .to_ascii_lowercase()
                .contains("out of memory")
                .then(|| reason.to_string())
        });
        return Err(match oom {
            Some(reason) => VmError::GuestOom { reason, tail },
            None => VmError::KernelPanic {
                reason: reason.to_string(),
                tail,
            },
        });
    }
    // No exit report: when frames were lost, that is the precise reason (the report itself may
    // be among them).
    if let Some(lost) = console.loss() {
        return Err(VmError::ChannelLoss { lost, tail });
    }
    let status_text = status
        .map(|s| s.to_string())
        .unwrap_or_else(|| "unknown status".into());
    let stderr_tail: Vec<&str> = qemu_stderr
        .iter()
        .rev()
        .take(5)
        .rev()
        .map(String::as_str)
        .collect();
    let reason = if kvm_error {
        format!(
            "KVM internal error (QEMU said: {})",
            stderr_tail.join(" / ")
        )
    } else if stderr_tail.is_empty() {
        format!("QEMU exited ({status_text}) before the command finished")
    } else {
        format!(
            "QEMU exited ({status_text}) before the command finished; QEMU said: {}",
            stderr_tail.join(" / ")
        )
    };
    Err(VmError::QemuCrash { reason, tail })
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines_are_split_across_any_chunking() {
        let text = b"first\r\n\nsecond line\nthird\r\npartial";
        for size in [1, 2, 3, 7, text.len()] {
            let mut s = LineSplitter::default();
            let mut got = Vec::new();
            for chunk in text.chunks(size) {
                s.push(chunk, |l| got.push(l));
            }
            assert_eq!(
                got,
                ["first", "", "second line", "third"],
                "chunks of {size}"
            );
            s.finish(|l| got.push(l));
            assert_eq!(got.last().map(String::as_str), Some("partial"));
        }
    }

    #[test]
    fn commands_under_mounted_over_directories_move_to_host() {
        assert_eq!(
            visible_guest_path(Path::new("/tmp/ci/target/debug/deps/t-1")),
            PathBuf::from("/host/tmp/ci/target/debug/deps/t-1")
        );
        assert_eq!(
            visible_guest_path(Path::new("/work/target/debug/t-1")),
            PathBuf::from("/work/target/debug/t-1")
        );
        assert!(!mounted_over(Path::new("/tmpfoo/x")));
    }

    use super::*;

    #[test]
    fn bad_configs_are_refused_with_the_reason() {
        let ok = VmConfig::default();
        let argv = vec!["/bin/true".to_string()];
        assert!(validate(&ok, &argv).is_ok());
        let e = validate(&ok, &[]).unwrap_err();
        assert!(e.to_string().contains("no command"));
        let small = VmConfig {
            memory_mib: 16,
            ..VmConfig::default()
        };
        assert!(validate(&small, &argv)
            .unwrap_err()
            .to_string()
            .contains("16 MiB"));
        let nocpu = VmConfig {
            cpus: 0,
            ..VmConfig::default()
        };
        assert_eq!(validate(&nocpu, &argv).unwrap_err().exit_code(), 249);
        let badenv = VmConfig {
            env: vec![("A=B".into(), "c".into())],
            ..VmConfig::default()
        };
        assert!(validate(&badenv, &argv)
            .unwrap_err()
            .to_string()
            .contains("A=B"));
    }

    #[test]
    fn missing_qemu_names_the_package() {
        let cfg = VmConfig {
            qemu: Some(PathBuf::from("/nonexistent/qemu-system-x86_64")),
            ..VmConfig::default()
        };
        let e = run(&cfg, &["/bin/true".into()], &mut NullSink).unwrap_err();
        assert_eq!(e.exit_code(), 240);
        assert!(e.to_string().contains("qemu-system-x86"), "{e}");
    }

    #[test]
    fn missing_kernel_is_its_own_error() {
        let cfg = VmConfig {
            kernel: Some(PathBuf::from("/nonexistent/vmlinuz")),
            ..VmConfig::default()
        };
        let e = run(&cfg, &["/bin/true".into()], &mut NullSink).unwrap_err();
        assert_eq!(e.exit_code(), 241, "{e}");
        assert!(e.to_string().contains("/nonexistent/vmlinuz"));
    }
}
