//! Launching QEMU: the argument list (a pure function, tested), and the process itself, which
//! never outlives us: it runs in its own process group (a Ctrl-C at the terminal is ours to
//! handle), gets SIGKILL when the thread that started it dies (PR_SET_PDEATHSIG), and is
//! killed with its group when the handle drops.

use crate::channel::DATA_FD;
use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};
use thiserror::Error;

pub const DEFAULT_QEMU: &str = "qemu-system-x86_64";

/// Kernel options every boot gets. `quiet` keeps boot output (slow under TCG) short;
/// `panic=-1` reboots at once on panic and `-no-reboot` turns that into QEMU's exit;
/// `reboot=t` makes that reboot a triple fault, skipping the ACPI and keyboard-controller
/// attempts (microvm has no i8042) that made a panicked guest linger.
pub const BASE_CMDLINE: &str = "console=ttyS0 quiet panic=-1 reboot=t rdinit=/init";

/// Kernel options for one accelerator on top of [`BASE_CMDLINE`].
///
/// Under TCG the guest's TSC is the host's, but the kernel's calibration of it against the
/// PIT times out when the host is busy, and it then hangs in the delay-loop calibration (seen
/// here at load 9 on 2 cores). `tsc_early_khz` hands it the host's TSC rate instead. And the
/// TCG CPU model (an AMD without constant_tsc) with more than one CPU makes the kernel declare
/// the TSC unsynchronized and fall back to jiffies, which lose ticks on a busy host: the
/// guest's clock then ran at a third of real time. `tsc=reliable` keeps the TSC (it is the
/// host's invariant TSC) as the clocksource.
pub fn cmdline_for(accel: Accel) -> String {
    match (accel, host_tsc_khz()) {
        (Accel::Kvm, _) => BASE_CMDLINE.to_string(),
        (_, Some(khz)) => format!("{BASE_CMDLINE} tsc=reliable tsc_early_khz={khz}"),
        (_, None) => format!("{BASE_CMDLINE} tsc=reliable"),
    }
}

/// The host's TSC rate from /proc/cpuinfo's "cpu MHz" (on the VMs and servers this runs on
/// that is the TSC rate; a rough value only skews the guest's delay loops a little).
pub fn host_tsc_khz() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    parse_cpu_mhz(&text)
}

fn parse_cpu_mhz(cpuinfo: &str) -> Option<u64> {
    let line = cpuinfo.lines().find(|l| l.starts_with("cpu MHz"))?;
    let mhz: f64 = line.split(':').nth(1)?.trim().parse().ok()?;
    (mhz > 1.0).then(|| (mhz * 1000.0).round() as u64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Accel {
    /// KVM when a real trial boot works on this machine, else TCG.
    #[default]
    Auto,
    Kvm,
    Tcg,
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("unknown accelerator {0:?}: expected auto, kvm or tcg")]
pub struct AccelParseError(String);

impl FromStr for Accel {
    type Err = AccelParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Accel::Auto),
            "kvm" => Ok(Accel::Kvm),
            "tcg" => Ok(Accel::Tcg),
            other => Err(AccelParseError(other.to_string())),
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Accel::Auto => "auto",
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        })
    }
}

/// One concrete launch.
#[derive(Debug, Clone)]
pub struct Launch {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub cmdline: String,
    pub memory_mib: u32,
    pub cpus: u32,
    /// Kvm or Tcg (Auto is resolved before).
    pub accel: Accel,
}

/// QEMU's arguments: microvm, no network, no default devices, the console port (ttyS0) on
/// stdio, the data port (ttyS1, see `crate::channel`) on the pipe [`QemuProcess::spawn`] puts
/// at fd [`DATA_FD`].
pub fn qemu_args(l: &Launch) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |a: &str| args.push(a.into());
    push("-M");
    push("microvm");
    match l.accel {
        Accel::Kvm => {
            push("-accel");
            push("kvm");
            push("-cpu");
            push("host");
        }
        Accel::Tcg | Accel::Auto => {
            push("-accel");
            push("tcg,thread=multi");
        }
    }
    for a in [
        "-m".to_string(),
        l.memory_mib.to_string(),
        "-smp".to_string(),
        l.cpus.to_string(),
        "-nodefaults".to_string(),
        "-no-user-config".to_string(),
        "-nic".to_string(),
        "none".to_string(),
        "-display".to_string(),
        "none".to_string(),
        "-chardev".to_string(),
        "stdio,id=console,signal=off".to_string(),
        "-serial".to_string(),
        "chardev:console".to_string(),
        "-chardev".to_string(),
        format!("file,id=data,path=/dev/fd/{DATA_FD}"),
        // The second legacy COM address; the kernel's built-in 8250 driver finds it via PNP
        // and names it ttyS1 (the first, 0x3f8, is microvm's own ttyS0).
        "-device".to_string(),
        "isa-serial,chardev=data,iobase=0x2f8,irq=3".to_string(),
        "-no-reboot".to_string(),
    ] {
        args.push(a.into());
    }
    args.push("-kernel".into());
    args.push(l.kernel.clone().into());
    args.push("-initrd".into());
    args.push(l.initrd.clone().into());
    args.push("-append".into());
    args.push(l.cmdline.clone().into());
    args
}

/// Finds a program in PATH (or checks an explicit path).
pub fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Path::new(name).is_file().then(|| PathBuf::from(name));
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A running QEMU, killed with its process group when dropped.
#[derive(Debug)]
pub struct QemuProcess {
    child: Child,
    status: Option<ExitStatus>,
    /// The read end of the data port's pipe (QEMU holds the write end at fd [`DATA_FD`]).
    data: Option<File>,
}

impl QemuProcess {
    /// Starts `program` with stdout and stderr piped and the write end of a fresh pipe at fd
    /// [`DATA_FD`] (read it with [`QemuProcess::take_data`]).
    pub fn spawn(program: &Path, args: &[OsString]) -> std::io::Result<Self> {
        let (data_read, data_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let data_write: OwnedFd = data_write;
        let write_fd = data_write.as_raw_fd();
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: the closure runs in the forked child before exec and only makes the
        // async-signal-safe prctl(), dup2() and fcntl() calls on descriptor numbers it owns
        // there; it touches no memory shared with the parent.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // dup2 onto itself would keep close-on-exec: clear it by hand then.
                let rc = if write_fd == DATA_FD {
                    libc::fcntl(DATA_FD, libc::F_SETFD, 0)
                } else {
                    libc::dup2(write_fd, DATA_FD)
                };
                if rc < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        // Only QEMU holds the write end now, so the pipe ends when QEMU does.
        drop(data_write);
        Ok(QemuProcess {
            child,
            status: None,
            data: Some(File::from(data_read)),
        })
    }

    /// The data port's bytes as QEMU writes them (EOF once QEMU and its children are gone).
    pub fn take_data(&mut self) -> Option<File> {
        self.data.take()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.child.stderr.take()
    }

    /// Kills QEMU's whole process group.
    pub fn kill(&mut self) {
        if self.status.is_some() {
            return;
        }
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // The group may be gone already (ESRCH): nothing to do then.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.child.kill();
    }

    /// Waits up to `limit` for QEMU to exit by itself.
    pub fn wait_for(&mut self, limit: Duration) -> std::io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let end = Instant::now() + limit;
        loop {
            if let Some(s) = self.child.try_wait()? {
                self.status = Some(s);
                return Ok(Some(s));
            }
            if Instant::now() >= end {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills QEMU and reaps it.
    pub fn kill_and_wait(&mut self) -> std::io::Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        self.kill();
        let s = self.child.wait()?;
        self.status = Some(s);
        Ok(s)
    }
}

impl Drop for QemuProcess {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.kill_and_wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(accel: Accel) -> Launch {
        Launch {
            kernel: "/k/vmlinuz".into(),
            initrd: "/c/img.cpio".into(),
            cmdline: "console=ttyS0 breakout.argv=/bin/true".into(),
            memory_mib: 512,
            cpus: 3,
            accel,
        }
    }

    fn strings(a: Vec<OsString>) -> Vec<String> {
        a.into_iter().map(|s| s.into_string().unwrap()).collect()
    }

    fn value_after<'a>(args: &'a [String], flag: &str) -> &'a str {
        let i = args.iter().position(|a| a == flag).unwrap();
        &args[i + 1]
    }

    #[test]
    fn tcg_args_have_everything_the_issue_asks_for() {
        let a = strings(qemu_args(&launch(Accel::Tcg)));
        assert_eq!(value_after(&a, "-M"), "microvm");
        assert_eq!(value_after(&a, "-accel"), "tcg,thread=multi");
        assert_eq!(value_after(&a, "-m"), "512");
        assert_eq!(value_after(&a, "-smp"), "3");
        assert_eq!(value_after(&a, "-nic"), "none");
        assert_eq!(value_after(&a, "-kernel"), "/k/vmlinuz");
        assert_eq!(value_after(&a, "-initrd"), "/c/img.cpio");
        assert_eq!(
            value_after(&a, "-append"),
            "console=ttyS0 breakout.argv=/bin/true"
        );
        assert!(a.contains(&"-no-reboot".to_string()));
        assert!(a.contains(&"-nodefaults".to_string()));
        // The data port: a second UART on the pipe at fd 3, apart from the console on stdio.
        assert_eq!(
            value_after(&a, "-device"),
            "isa-serial,chardev=data,iobase=0x2f8,irq=3"
        );
        let chardevs: Vec<&str> = a
            .iter()
            .enumerate()
            .filter(|(_, x)| *x == "-chardev")
            .map(|(i, _)| a[i + 1].as_str())
            .collect();
        assert_eq!(
            chardevs,
            ["stdio,id=console,signal=off", "file,id=data,path=/dev/fd/3"]
        );
        assert!(!a.iter().any(|x| x.contains("netdev") || x == "-net"));
    }

    #[test]
    fn kvm_args_use_the_host_cpu() {
        let a = strings(qemu_args(&launch(Accel::Kvm)));
        assert_eq!(value_after(&a, "-accel"), "kvm");
        assert_eq!(value_after(&a, "-cpu"), "host");
    }

    #[test]
    fn base_cmdline_panics_into_a_reboot() {
        assert!(BASE_CMDLINE.contains("panic=-1"));
        assert!(BASE_CMDLINE.contains("console=ttyS0"));
    }

    #[test]
    fn tcg_gets_the_host_tsc_rate() {
        assert_eq!(
            parse_cpu_mhz("processor\t: 0\ncpu MHz\t\t: 2596.142\n"),
            Some(2_596_142)
        );
        assert_eq!(parse_cpu_mhz("nothing"), None);
        assert_eq!(cmdline_for(Accel::Kvm), BASE_CMDLINE);
        assert!(cmdline_for(Accel::Tcg).contains("tsc=reliable"));
        if host_tsc_khz().is_some() {
            assert!(cmdline_for(Accel::Tcg).contains("tsc_early_khz="));
        }
    }

    #[test]
    fn accel_parses_and_rejects() {
        assert_eq!("tcg".parse::<Accel>(), Ok(Accel::Tcg));
        assert_eq!("auto".parse::<Accel>(), Ok(Accel::Auto));
        let e = "xen".parse::<Accel>().unwrap_err();
        assert!(e.to_string().contains("xen"));
    }

    #[test]
    fn the_data_pipe_is_fd_3_in_the_child_and_ends_with_it() {
        use std::io::Read;
        let mut p = QemuProcess::spawn(
            Path::new("/bin/sh"),
            &[
                "-c".into(),
                "echo on-the-data-port >&3; echo on-stdout".into(),
            ],
        )
        .unwrap();
        let mut data = p.take_data().unwrap();
        let mut got = String::new();
        // Ends (EOF) because the child held the only write end.
        data.read_to_string(&mut got).unwrap();
        assert_eq!(got, "on-the-data-port\n");
        assert!(p
            .wait_for(Duration::from_secs(5))
            .unwrap()
            .unwrap()
            .success());
    }

    #[test]
    fn dropping_the_handle_kills_the_process_group() {
        let mut p = QemuProcess::spawn(
            Path::new("/bin/sh"),
            &["-c".into(), "sleep 1000 & sleep 1000".into()],
        )
        .unwrap();
        let pgid = p.pid() as i32;
        // The shell and its background sleep both run (else the kill below proves nothing).
        let both = group_becomes(pgid, |live| live.len() >= 2);
        assert!(
            both.len() >= 2,
            "the group never held two processes: {both:?}"
        );
        assert!(p.wait_for(Duration::from_millis(10)).unwrap().is_none());
        drop(p);
        // No live process of the group is left (the background sleep included); zombies
        // waiting for whoever reaps orphans here do not count. Only the shell is reaped by the
        // drop: the background sleep dies of the group's SIGKILL when it next runs.
        assert_eq!(
            group_becomes(pgid, |live| live.is_empty()),
            Vec::<i32>::new()
        );
    }

    /// The live processes of group `pgid` once `done` holds for them, or after 30 s (a loaded
    /// machine may take a while to run a process that was signalled or forked).
    fn group_becomes(pgid: i32, done: impl Fn(&[i32]) -> bool) -> Vec<i32> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let live = live_in_group(pgid);
            if done(&live) || Instant::now() >= deadline {
                return live;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn live_in_group(pgid: i32) -> Vec<i32> {
        let mut pids = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // Fields after the ")" of the command name: state ppid pgrp ...
            let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
            if rest[2] == pgid.to_string() && rest[0] != "Z" {
                pids.push(pid);
            }
        }
        pids
    }
}
