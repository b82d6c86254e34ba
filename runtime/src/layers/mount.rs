//! mount-ns: private propagation first, a new root (a tmpfs with read-only binds of the host's
//! /usr, /bin, /sbin, /lib, /lib64, /etc, or a directory from the config), a tmpfs /tmp, a minimal
//! /dev, a fresh /proc, then pivot_root and the old root detached. Never chroot: it is escapable.
//!
//! The host is inspected in the parent (which bind sources exist, which are symbolic links, which
//! mount flags are locked on them in a user namespace); the child only performs the steps. A
//! bind source is opened once by the child (O_PATH, no symlink in any component) and mounted
//! from that descriptor, after checking it is still what the parent saw: a path swapped for a
//! symlink in between fails the setup instead of binding what the symlink leads to.

use crate::config::SandboxConfig;
use crate::layer::Layer;
use crate::step::{cstr, Op, Step};
use nix::mount::{MntFlags, MsFlags};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt};
use std::path::{Path, PathBuf};

/// Where the new root is assembled when the runtime has no directory of its own (hidden from
/// everyone else by the private mount namespace).
pub const FALLBACK_STAGING: &str = "/tmp";

/// Where the new root is assembled before pivot_root: a directory of the runtime's own, so that
/// the tmpfs mounted on it hides no path a bind may come from (staging on /tmp made binds of
/// anything under /tmp fail with ENOENT). Made once by the parent (0755: a rootless sandbox reaches it after dropping to its uid); when it
/// cannot be made (a runtime started by an unprivileged user), /tmp is used.
pub fn staging() -> &'static str {
    static DIR: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        const OWN: &str = "/run/breakout-staging";
        let made = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(OWN)
            .is_ok();
        if made && Path::new(OWN).is_dir() {
            OWN
        } else {
            FALLBACK_STAGING
        }
    })
}

/// Device nodes bound from the host's /dev.
pub const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("mount-ns: cannot inspect {}: {source}", path.display())]
    Inspect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("mount-ns: root directory {}: {message}", path.display())]
    Root { path: PathBuf, message: String },
}

/// What the mount steps depend on besides the config.
pub(crate) struct MountContext {
    /// The payload gets a new pid namespace (fresh /proc possible).
    pub pid_ns: bool,
    /// We are in a new user namespace (fresh proc needs a pid namespace it owns).
    pub user_ns: bool,
    /// fs-hardening on: nosuid/nodev on the binds.
    pub harden: bool,
    /// A new network namespace (a fresh sysfs needs one owned by our user namespace).
    pub net_ns: bool,
    /// The runtime's pty slave (`--tty`): bound at /dev/console, as Docker does, so the payload's
    /// terminal has a name inside the sandbox (its /dev/pts is a private instance).
    /// (Its host path: a descriptor from the parent's mount namespace cannot be a bind source.)
    pub console: Option<PathBuf>,
}

fn staged(p: &Path) -> String {
    format!("{}{}", staging(), p.display())
}

/// Flags a user namespace may not clear on a bind of `path` (the kernel locks them; read-only
/// is left to the caller, which sets it where it wants it).
fn locked_flags(path: &Path) -> Result<MsFlags, MountError> {
    let st = nix::sys::statvfs::statvfs(path).map_err(|e| MountError::Inspect {
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    Ok(mount_flags_of(st.flags()) - MsFlags::MS_RDONLY)
}

/// The mount(2) flags that statvfs reports for a mount: what a remount must keep.
pub(crate) fn mount_flags_of(f: nix::sys::statvfs::FsFlags) -> MsFlags {
    use nix::sys::statvfs::FsFlags;
    let mut m = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            m |= ms;
        }
    }
    m
}

fn mount_step(
    src: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Step {
    Step::new(
        Some(Layer::MountNs),
        format!(
            "mount({:?}, {:?}, {:?}, {:?}, {:?})",
            src.unwrap_or("none"),
            target,
            fstype.unwrap_or("none"),
            flags,
            data.unwrap_or("")
        ),
        Op::Mount {
            src: src.map(cstr),
            target: cstr(target),
            fstype: fstype.map(cstr),
            flags,
            data: data.map(cstr),
        },
    )
}

/// A bind of the host's `src` (of file type `kind`, as the parent saw it) onto `target`, from a
/// descriptor the child opens without following symlinks (see `Op::BindFrom`).
fn bind_from(src: &Path, kind: libc::mode_t, target: &str, flags: MsFlags) -> Step {
    bind_from_to(src, kind, target, flags, false)
}

/// [`bind_from`], with the target pinned too when `pin_target` (a mount point inside a
/// configured root, see `Op::MountOnto`).
fn bind_from_to(
    src: &Path,
    kind: libc::mode_t,
    target: &str,
    flags: MsFlags,
    pin_target: bool,
) -> Step {
    let s = src.to_string_lossy();
    Step::new(
        Some(Layer::MountNs),
        format!(
            "mount(open({s:?}, O_PATH|O_NOFOLLOW, RESOLVE_NO_SYMLINKS), {target:?}, {flags:?})"
        ),
        Op::BindFrom {
            src: cstr(&*s),
            kind,
            target: cstr(target),
            flags,
            pin_target,
        },
    )
}

/// A mount onto a mount point of the sandbox's root: inside a configured root (`pin`), the
/// target is opened without following symlinks first (see `Op::MountOnto`); in the runtime's
/// own tmpfs root an ordinary mount.
fn mount_point(
    pin: bool,
    src: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Step {
    let step = mount_step(src, target, fstype, flags, data);
    if !pin {
        return step;
    }
    Step::new(
        Some(Layer::MountNs),
        format!(
            "{} (onto open({target:?}, O_PATH, RESOLVE_NO_SYMLINKS))",
            step.call
        ),
        Op::MountOnto {
            src: src.map(cstr),
            target: cstr(target),
            fstype: fstype.map(cstr),
            flags,
            data: data.map(cstr),
        },
    )
}

/// The file type (S_IFMT bits) of `path` itself, not following a final symlink.
fn kind_of(meta: &std::fs::Metadata) -> libc::mode_t {
    use std::os::unix::fs::MetadataExt;
    meta.mode() & libc::S_IFMT
}

/// `path` with its directory resolved (symlinks in the leading components followed once, here,
/// by the parent) and its last component kept: the child then opens it refusing every symlink,
/// so a swap after this look makes the setup fail instead of binding something else.
fn resolve_dir_of(path: &Path) -> std::io::Result<PathBuf> {
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => Ok(std::fs::canonicalize(dir)?.join(name)),
        _ => Ok(path.to_path_buf()),
    }
}

fn mkdir(path: &str, mode: u32) -> Step {
    Step::new(
        Some(Layer::MountNs),
        format!("mkdir({path:?}, {mode:o})"),
        Op::Mkdir {
            path: cstr(path),
            mode,
        },
    )
}

fn symlink(target: &str, link: &str) -> Step {
    Step::new(
        Some(Layer::MountNs),
        format!("symlink({target:?}, {link:?})"),
        Op::Symlink {
            target: cstr(target),
            link: cstr(link),
        },
    )
}

fn create_file(path: &str) -> Step {
    Step::new(
        Some(Layer::MountNs),
        format!("open({path:?}, O_CREAT)"),
        Op::CreateFile { path: cstr(path) },
    )
}

/// mkdir for every ancestor of `p` below the staging root, then `p` itself.
/// A fresh tmpfs on the new root's /tmp.
fn tmp_mount(cfg: &SandboxConfig, s: &mut Vec<Step>) {
    let tmp_opts = format!("mode=1777,size={}", cfg.mount.tmp_size.0);
    s.push(mount_point(
        cfg.mount.root.is_some(),
        Some("tmpfs"),
        &format!("{}/tmp", staging()),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(&tmp_opts),
    ));
}

fn mkdir_all(p: &Path, out: &mut Vec<Step>) {
    let mut acc = PathBuf::from("/");
    for comp in p.components().skip(1) {
        acc.push(comp);
        out.push(mkdir(&staged(&acc), 0o755));
    }
}

/// A read-only bind of the host path `src` (found at `resolved`, of file type `kind`) into the
/// new root at `src`'s place.
fn bind_ro(
    src: &Path,
    resolved: &Path,
    kind: libc::mode_t,
    extra: MsFlags,
    out: &mut Vec<Step>,
) -> Result<(), MountError> {
    let target = staged(src);
    out.push(bind_from(
        resolved,
        kind,
        &target,
        MsFlags::MS_BIND | MsFlags::MS_REC,
    ));
    let flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | locked_flags(resolved)?
        | extra;
    out.push(mount_step(None, &target, None, flags, None));
    out.push(read_only_below(&target, extra));
    Ok(())
}

/// The submounts of a recursive bind at `target` read-only too (and nosuid/nodev with `extra`):
/// the remount before changed only the top mount.
fn read_only_below(target: &str, extra: MsFlags) -> Step {
    use crate::step::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
    let mut attrs = MOUNT_ATTR_RDONLY;
    if extra.contains(MsFlags::MS_NOSUID) {
        attrs |= MOUNT_ATTR_NOSUID;
    }
    if extra.contains(MsFlags::MS_NODEV) {
        attrs |= MOUNT_ATTR_NODEV;
    }
    Step::new(
        Some(Layer::MountNs),
        format!("mount_setattr({target:?}, AT_RECURSIVE, {attrs:#x})"),
        Op::ReadOnlyBelow {
            path: cstr(target),
            attrs,
        },
    )
}

pub(crate) fn steps(cfg: &SandboxConfig, ctx: &MountContext) -> Result<Vec<Step>, MountError> {
    let mut s = vec![mount_step(
        None,
        "/",
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )];
    let extra = if ctx.harden {
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV
    } else {
        MsFlags::empty()
    };
    match &cfg.mount.root {
        Some(root) => {
            // Mount points inside the root must be directories, not symlinks (a root whose
            // `proc` leads elsewhere would get its procfs, unmasked, at another place:
            // CVE-2019-19921).
            let mut subs = vec!["proc", "dev", "tmp"];
            if cfg.mount.sysfs {
                subs.push("sys");
            }
            for sub in subs {
                let is_dir =
                    std::fs::symlink_metadata(root.join(sub)).is_ok_and(|m| m.file_type().is_dir());
                if !is_dir {
                    return Err(MountError::Root {
                        path: root.clone(),
                        message: format!(
                            "has no `{sub}` directory to mount on (a symlink is refused)"
                        ),
                    });
                }
            }
            let resolved = std::fs::canonicalize(root).map_err(|source| MountError::Inspect {
                path: root.clone(),
                source,
            })?;
            s.push(bind_from(
                &resolved,
                libc::S_IFDIR,
                staging(),
                MsFlags::MS_BIND | MsFlags::MS_REC,
            ));
            tmp_mount(cfg, &mut s);
        }
        None => {
            s.push(mount_step(
                Some("tmpfs"),
                staging(),
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some("mode=0755,size=1m"),
            ));
            // The sandbox's /tmp first, so that a bind from under the host's /tmp lands on it
            // rather than being hidden by it.
            s.push(mkdir(&format!("{}/tmp", staging()), 0o1777));
            tmp_mount(cfg, &mut s);
            for src in &cfg.mount.binds {
                let inspect = |source| MountError::Inspect {
                    path: src.clone(),
                    source,
                };
                let found = resolve_dir_of(src).and_then(|r| {
                    let meta = std::fs::symlink_metadata(&r)?;
                    Ok((r, meta))
                });
                let (resolved, meta) = match found {
                    Ok(x) => x,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(source) => return Err(inspect(source)),
                };
                if let Some(parent) = src.parent().filter(|p| *p != Path::new("/")) {
                    mkdir_all(parent, &mut s);
                }
                if meta.file_type().is_symlink() {
                    let target = std::fs::read_link(&resolved).map_err(inspect)?;
                    s.push(symlink(&target.to_string_lossy(), &staged(src)));
                    continue;
                }
                if meta.is_dir() {
                    s.push(mkdir(&staged(src), 0o755));
                } else {
                    s.push(create_file(&staged(src)));
                }
                bind_ro(src, &resolved, kind_of(&meta), extra, &mut s)?;
            }
            s.push(mkdir(&format!("{}/dev", staging()), 0o755));
            s.push(mkdir(&format!("{}/proc", staging()), 0o555));
        }
    }
    let pin = cfg.mount.root.is_some();
    dev(&mut s, ctx.console.as_deref(), pin)?;
    let proc_target = format!("{}/proc", staging());
    if ctx.user_ns && !ctx.pid_ns {
        // A fresh proc needs a pid namespace owned by our user namespace; without one, show the
        // host's /proc (bound) rather than fail: pid-ns is the layer that hides other processes.
        s.push(bind_from_to(
            Path::new("/proc"),
            libc::S_IFDIR,
            &proc_target,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            pin,
        ));
    } else {
        s.push(mount_point(
            pin,
            Some("proc"),
            &proc_target,
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None,
        ));
    }
    if cfg.mount.sysfs {
        let target = format!("{}/sys", staging());
        if cfg.mount.root.is_none() {
            s.push(mkdir(&target, 0o555));
        }
        let ro = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        if ctx.user_ns && !ctx.net_ns {
            // Same rule as proc: show the host's (read-only) rather than fail.
            s.push(bind_from_to(
                Path::new("/sys"),
                libc::S_IFDIR,
                &target,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                pin,
            ));
            s.push(mount_step(
                None,
                &target,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | ro,
                None,
            ));
            // The host's /sys carries cgroupfs, debugfs, securityfs... below it.
            s.push(read_only_below(
                &target,
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            ));
        } else {
            s.push(mount_point(
                pin,
                Some("sysfs"),
                &target,
                Some("sysfs"),
                ro,
                None,
            ));
        }
    }
    let l = Some(Layer::MountNs);
    s.push(Step::new(
        l,
        format!("chdir({:?})", staging()),
        Op::Chdir(cstr(staging())),
    ));
    s.push(Step::new(l, "pivot_root(\".\", \".\")", Op::PivotRoot));
    s.push(Step::new(
        l,
        "umount2(\".\", MNT_DETACH) (old root)",
        Op::Umount {
            target: cstr("."),
            flags: MntFlags::MNT_DETACH,
        },
    ));
    s.push(Step::new(l, "chdir(\"/\")", Op::Chdir(cstr("/"))));
    if let Some(root) = &cfg.mount.root {
        let flags = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | locked_flags(root)?
            | extra;
        s.push(mount_step(None, "/", None, flags, None));
    }
    Ok(s)
}

/// A minimal /dev: a few device nodes bound from the host, a private devpts, /dev/shm.
///
/// The tmpfs is nodev, as bubblewrap's is: a payload with CAP_MKNOD could otherwise make a node
/// for any device (a disk, /dev/kvm) in it and open it. The device nodes bound in keep working:
/// each bind is a mount of its own with the flags of the host's /dev.
fn dev(s: &mut Vec<Step>, console: Option<&Path>, pin: bool) -> Result<(), MountError> {
    let dev = format!("{}/dev", staging());
    s.push(mount_point(
        pin,
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=0755,size=64k"),
    ));
    for name in DEVICES {
        let host = PathBuf::from(format!("/dev/{name}"));
        // The node itself, never what a symlink in its place leads to.
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_char_device() => {}
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(MountError::Inspect { path: host, source }),
        }
        let target = format!("{dev}/{name}");
        s.push(create_file(&target));
        s.push(bind_from(&host, libc::S_IFCHR, &target, MsFlags::MS_BIND));
    }
    if let Some(tty) = console {
        let target = format!("{dev}/console");
        s.push(create_file(&target));
        s.push(bind_from(tty, libc::S_IFCHR, &target, MsFlags::MS_BIND));
    }
    s.push(mkdir(&format!("{dev}/pts"), 0o755));
    s.push(mount_step(
        Some("devpts"),
        &format!("{dev}/pts"),
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    ));
    s.push(symlink("pts/ptmx", &format!("{dev}/ptmx")));
    s.push(mkdir(&format!("{dev}/shm"), 0o1777));
    s.push(mount_step(
        Some("tmpfs"),
        &format!("{dev}/shm"),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    ));
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        s.push(symlink(target, &format!("{dev}/{link}")));
    }
    Ok(())
}
