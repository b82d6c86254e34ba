//! The guest's fixed setup: mounts, cgroup v2 controllers, loopback, hostname, the quiet
//! console, the result FIFO.

use super::{io, sys, InitError};
use crate::guest::RESULTS_FIFO;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The runtime's default cgroup parent (a leaf per sandbox goes under it).
pub const CGROUP_PARENT: &str = "/sys/fs/cgroup/breakout";

/// Controllers the guest enables for children of the root (and of [`CGROUP_PARENT`]).
pub const CONTROLLERS: &str = "+memory +pids +cpu";

fn mount_one(
    fstype: &str,
    target: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), InitError> {
    fs::create_dir_all(target).map_err(io(format!("mkdir {target}")))?;
    mount(Some(fstype), target, Some(fstype), flags, data)
        .map_err(sys(format!("mount {fstype} on {target}")))
}

pub fn mount_all() -> Result<(), InitError> {
    let hard = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_one("proc", "/proc", hard, None)?;
    mount_one("sysfs", "/sys", hard, None)?;
    // Every launch moves a process into a fresh cgroup leaf, and by default each move waits
    // for an RCU grace period (17-40 ms a launch under TCG). `favordynmods` (Linux 6.0+) trades
    // that for slightly dearer forks and exits; it changes locking, not what a cgroup limits
    // or who may move where. Older kernels refuse the option: mount without it.
    if mount_one("cgroup2", "/sys/fs/cgroup", hard, Some("favordynmods")).is_err() {
        mount_one("cgroup2", "/sys/fs/cgroup", hard, None)?;
    }
    mount_one("devtmpfs", "/dev", MsFlags::MS_NOSUID, Some("mode=0755"))?;
    mount_one(
        "devpts",
        "/dev/pts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    mount_one(
        "tmpfs",
        "/dev/shm",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    )?;
    mount_one(
        "tmpfs",
        "/tmp",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    )?;
    mount_one(
        "tmpfs",
        "/run",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755"),
    )?;
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        if !Path::new(link).exists() {
            std::os::unix::fs::symlink(target, link).map_err(io(format!("symlink {link}")))?;
        }
    }
    Ok(())
}

/// Only KERN_EMERG reaches the console from now on (a panic or SysRq raises the level
/// itself); warnings and worse come through /dev/kmsg as frames instead. Frames travel on a
/// port of their own, so this is not what keeps them whole: it keeps the console (written
/// byte by byte under TCG, and quoted in error messages) short, and makes a tear rare on a
/// kernel without a data port, where frames share the console.
pub fn quiet_console() -> Result<(), InitError> {
    fs::write("/proc/sys/kernel/printk", "1").map_err(io("write /proc/sys/kernel/printk"))
}

/// Every audit record reaches the kernel log. Without an audit daemon the kernel prints them
/// under printk_ratelimit (10 in 5 s by default), and the runtime names the syscall a filter
/// killed from that record: a run that kills more than ten payloads within five seconds (the
/// workloads under deny-all) lost the later records, and its verdicts lost their syscall names.
pub fn unlimited_audit_log() -> Result<(), InitError> {
    fs::write("/proc/sys/kernel/printk_ratelimit", "0")
        .map_err(io("write /proc/sys/kernel/printk_ratelimit"))
}

pub fn cgroups() -> Result<(), InitError> {
    let root = "/sys/fs/cgroup/cgroup.subtree_control";
    fs::write(root, CONTROLLERS).map_err(io(format!("write {CONTROLLERS:?} to {root}")))?;
    fs::create_dir_all(CGROUP_PARENT).map_err(io(format!("mkdir {CGROUP_PARENT}")))?;
    let parent = format!("{CGROUP_PARENT}/cgroup.subtree_control");
    fs::write(&parent, CONTROLLERS).map_err(io(format!("write {CONTROLLERS:?} to {parent}")))
}

pub fn loopback_up() -> Result<(), InitError> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    use std::os::fd::AsRawFd;
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(sys("socket(AF_INET, SOCK_DGRAM)"))?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value for it.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags union member of `req`, a
    // valid, exclusively borrowed ifreq that outlives the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) };
    if rc != 0 {
        return Err(InitError::Sys {
            step: "ioctl(lo, SIOCGIFFLAGS)".into(),
            source: nix::Error::last(),
        });
    }
    // SAFETY: after SIOCGIFFLAGS the flags member is the initialized member of the union.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) };
    if rc != 0 {
        return Err(InitError::Sys {
            step: "ioctl(lo, SIOCSIFFLAGS, IFF_UP)".into(),
            source: nix::Error::last(),
        });
    }
    Ok(())
}

/// Loads the overlay filesystem, which the runtime re-executes itself through (a read-only view
/// of its binary; runtime/src/sealed_exe.rs). Without it the runtime copies itself into a sealed
/// memfd instead, which holds as well but is translated again at every start under TCG: what
/// went wrong comes back as a note for the host's log, never as a failed boot.
pub fn overlay_module() -> Option<String> {
    if fs::read_to_string("/proc/filesystems").is_ok_and(|f| f.contains("\toverlay\n")) {
        return None;
    }
    let release = match nix::sys::utsname::uname() {
        Ok(u) => u.release().to_string_lossy().into_owned(),
        Err(e) => return Some(format!("overlayfs not loaded: uname: {e}")),
    };
    let module = Path::new("/lib/modules")
        .join(release)
        .join(crate::kernel::OVERLAY_MODULE);
    let file = match File::open(&module) {
        Ok(f) => f,
        Err(e) => return Some(format!("overlayfs not loaded: {}: {e}", module.display())),
    };
    match nix::kmod::finit_module(&file, c"", nix::kmod::ModuleInitFlags::empty()) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => None,
        Err(e) => Some(format!(
            "overlayfs not loaded: finit_module({}): {e}",
            module.display()
        )),
    }
}

pub fn hostname() -> Result<(), InitError> {
    nix::unistd::sethostname("breakout-vm").map_err(sys("sethostname"))
}

/// Creates the result FIFO (root only) and opens it read-write, so it never reports EOF
/// when a writer closes and the open does not wait for one.
pub fn results_fifo() -> Result<File, InitError> {
    let path = Path::new(RESULTS_FIFO);
    let dir = path.parent().unwrap_or(Path::new("/run"));
    fs::create_dir_all(dir).map_err(io(format!("mkdir {}", dir.display())))?;
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600))
        .map_err(sys(format!("mkfifo {RESULTS_FIFO}")))?;
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(io(format!("open {RESULTS_FIFO}")))
}
