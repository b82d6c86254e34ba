//! The runtime runs from an executable a payload cannot write (the CVE-2019-5736 defence runc
//! adopted): a payload that can see the runtime's processes (pid-ns off) reaches their
//! executable through /proc/PID/exe, a magic link that ignores the sandbox's read-only view. A
//! daemonised child of the payload held it with O_PATH while the runtime ran and reopened it
//! for writing once the runtime had exited, overwriting the host's binary.
//!
//! `reexec_sealed` executes the binary again through one of two views, so that the file on disk
//! is never what the runtime's processes execute. `breakout-harness` does it first thing for
//! `sandbox` and `guest-exec` (the orchestrator runs every profile, `none` too); `breakout
//! sandbox` does it once it has read the sandbox's profile, where [`seal_decision`] says the
//! sandbox could contain someone who may write the binary:
//!
//! - **Sealed:** every sandbox without a user namespace (its payload may be the host's root),
//!   and with one, a binary whose owner the namespace maps, that is group- or world-writable,
//!   has an ACL, or lies on a filesystem that may decide permissions on its own (FUSE, NFS, 9p).
//! - **From the file:** otherwise. An open for writing through a magic link is the kernel's
//!   permission check on the file, with the opener's outside ids, and a process in a user
//!   namespace holds no capability over a file whose owner the namespace does not map: nobody
//!   the sandbox can be may write it, sealed or not. This is bubblewrap's footing (it never
//!   seals). The seal costs 1.6-1.8 ms per launch on the host (the overlay, a second start, and
//!   two RCU grace periods: when the detached mount is dissolved at exec, and when the
//!   overlay's superblock is shut down at exit), a fifth of a strict launch.
//!
//! - **A read-only overlay** (runc 1.2's zero-copy method, tried first): a detached overlayfs
//!   whose lower layers are the binary's directory and an empty directory of ours, with no upper
//!   layer. Such a superblock is read-only for good (there is no layer to write to, and no
//!   remount can add one); unlike a read-only bind mount it cannot be unwrapped into a writable
//!   view of the same file. Nothing is copied and the binary's pages are the page cache's: under
//!   emulation a start from them is translated once per run, not once per launch. It needs
//!   CAP_SYS_ADMIN (root) and a kernel with fsopen(2) (5.2) and overlayfs.
//! - **A sealed memfd copy** (the fallback, and `BREAKOUT_SEAL_COPY=1`): an anonymous memfd
//!   sealed against writes and size changes. It costs a copy of the binary and fresh pages at
//!   every start (under TCG the whole runtime is translated again each time), but leaves
//!   nothing of the original file reachable at all.
//!
//! The runtime's mappings of the binary are the real file's pages, but overlayfs opens that
//! file under the overlay's path, so /proc/PID/map_files/ of a runtime process leads to the
//! same read-only file as its exe link (Linux 6.1 in the guest, 6.18 on the host: EROFS both
//! ways). What the overlay does leave is the real file's identity: since Linux 6.5
//! name_to_handle_at(AT_HANDLE_FID) on the exe link returns overlayfs's handle, which wraps the
//! real file's, and open_by_handle_at opens that for writing on any writable mount of its
//! filesystem. That takes CAP_DAC_READ_SEARCH in the initial user namespace (a payload that can
//! open any file of the host by handle anyway) and such a mount in view. The proc-self-exe
//! probe tries all three routes; under every layer set of the default run's ablation on 6.1
//! and 6.12, each stays shut where the memfd copy held. `BREAKOUT_SEAL_COPY=1` keeps the copy,
//! which leaves no route at all.
//!
//! An environment marker stops the second start from sealing again, and the sealed process
//! checks its own executable (the seals, or an overlay that refuses writes), not the marker.
//! What remains is the window between the first exec and the re-exec (for `breakout sandbox`,
//! the reading of its command line and profile, under a millisecond on the host), in which the
//! process runs from the file, before any sandbox of its own exists: a watcher that may open
//! /proc/PID/exe of a root process (same
//! user namespace, a superset of its capabilities, e.g. a payload that is real root with pid-ns
//! off) can race it, and could as well write the process's memory; pid-ns, uid, user-ns and caps
//! are the defence there.
//!
//! `breakout sandbox` runs in a small binary that holds only the runtime and its command line
//! (`breakout`, which executes the whole tool for every other subcommand) and seals itself;
//! `breakout-harness sandbox` seals that binary when it lies beside it (`reexec_sealed_from`). The marker carries the build's identity: a sealed program from another build refuses to
//! start instead of running other code than the one the caller was built with.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Set for the re-executed process (to the caller's build identity), removed by it at once.
pub const MARKER_ENV: &str = "_BREAKOUT_SEALED_EXE";

/// The seals runc applies: no more seals, no shrinking, no growing, no writing.
const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("cannot run from a sealed copy of the runtime binary: {what}: {errno}")]
    Os {
        what: &'static str,
        errno: nix::errno::Errno,
    },
    #[error("cannot run from a sealed copy of the runtime binary: re-executed with {MARKER_ENV} set but /proc/self/exe is neither a sealed memfd nor a read-only overlay")]
    NotSealed,
    #[error("cannot run from a sealed copy of the runtime binary: an argument or environment entry contains a NUL byte")]
    Nul,
    #[error("cannot run from a sealed copy of the runtime binary: it was started by a program of another build (marker {found:?}, this build {expected:?}); build both binaries together (cargo build --bins) or remove the stale one")]
    OtherBuild { found: String, expected: String },
}

fn os(what: &'static str) -> impl FnOnce(nix::errno::Errno) -> SealError {
    move |errno| SealError::Os { what, errno }
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> SealError {
    move |e| SealError::Os {
        what,
        errno: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    }
}

/// Set (to anything but 0) to always run from a sealed memfd copy, the stronger and slower of
/// the two views (see the module's documentation).
pub const COPY_ENV: &str = "BREAKOUT_SEAL_COPY";

/// The overlay's second lower layer: overlayfs is read-only only with two lower layers and no
/// upper one, and a lower layer must be a path (not a detached mount). Created by root, empty.
const EMPTY_LOWER: &str = "/run/breakout/exe-lower";

/// The view a process's executable is seen through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seal {
    /// A file on a read-only overlay of the binary's directory.
    ReadOnlyOverlay,
    /// A sealed memfd copy of the binary.
    SealedCopy,
}

/// Is this process already running from a view a payload cannot write?
pub fn running_sealed() -> bool {
    exe_seal().is_some()
}

/// Which view this process's executable is, checked on the executable itself: the memfd's
/// seals, or an overlayfs file that refuses to be opened for writing.
pub fn exe_seal() -> Option<Seal> {
    let exe = std::fs::File::open("/proc/self/exe").ok()?;
    // SAFETY: F_GET_SEALS takes no argument; EINVAL for files that are not memfds.
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    if seals >= 0 && seals & SEALS == SEALS {
        return Some(Seal::SealedCopy);
    }
    let fs = nix::sys::statfs::fstatfs(&exe).ok()?;
    if fs.filesystem_type() != nix::sys::statfs::OVERLAYFS_SUPER_MAGIC {
        return None;
    }
    // Detached (in no mount table): an overlay someone mounted, with an upper layer and
    // remounted read-only, is attached somewhere and could be remounted read-write.
    let id = mount_id(&exe)?;
    let attached = std::fs::read_to_string("/proc/self/mountinfo")
        .ok()?
        .lines()
        .any(|l| l.split(' ').next() == Some(id.as_str()));
    if attached {
        return None;
    }
    // The read-only superblock refuses an open for writing before anything else is checked
    // (a writable file that is being executed would answer ETXTBSY instead).
    match std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/exe")
    {
        Err(e) if e.raw_os_error() == Some(libc::EROFS) => Some(Seal::ReadOnlyOverlay),
        _ => None,
    }
}

/// What the runtime binary's file lets others do, as far as the seal decision needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExeFile {
    pub uid: u32,
    pub mode: u32,
    /// statfs's f_type of its filesystem.
    pub fs_magic: u64,
    /// A POSIX access ACL is set: it may grant write to users the mode does not show.
    pub acl: bool,
}

/// Filesystems whose permission checks are the kernel's own (the VFS's mode, owner and ACL
/// checks): ext2/3/4, XFS, Btrfs, tmpfs, ramfs, SquashFS, overlayfs, F2FS, EROFS
/// (include/uapi/linux/magic.h). Anything else (FUSE, NFS, 9p, virtiofs, CIFS) may let its
/// server decide who writes, so a file there is sealed whatever its mode says.
const LOCAL_FS: &[u64] = &[
    0xEF53,
    0x5846_5342,
    0x9123_683E,
    0x0102_1994,
    0x8584_58F6,
    0x7371_7368,
    0x794C_7630,
    0xF2F5_2010,
    0xE0F5_E1E2,
];

/// Whether the runtime re-executes through a sealed view, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealDecision {
    pub seal: bool,
    pub why: &'static str,
}

/// The seal guards one thing: the binary on disk, against a process of the sandbox that opens
/// it for writing through a runtime process's /proc/PID/exe or map_files (or a handle of it).
/// Every such open is the kernel's permission check on the file, with the opener's outside
/// ids: a process in a user namespace holds no capability over a file whose owner that
/// namespace does not map, so only the mode bits, an ACL, or a filesystem that decides on its
/// own can let it write. `sandbox_uids` are the outside uids the sandbox's user namespace maps
/// (None: no user namespace, the payload may be the host's root). The runtime runs from its
/// file only when nobody the sandbox can be may write that file; a file that is group- or
/// world-writable, whose owner the sandbox maps, that has an ACL, or that lies on a filesystem
/// not in [`LOCAL_FS`] is sealed, as is every sandbox without a user namespace. That is
/// bubblewrap's footing (it never seals: its binary is root's, its sandbox is not), kept only
/// where it holds.
pub fn seal_decision(
    file: &ExeFile,
    sandbox_uids: Option<&[std::ops::Range<u64>]>,
) -> SealDecision {
    let seal = |why| SealDecision { seal: true, why };
    let Some(uids) = sandbox_uids else {
        return seal("the payload shares the host's user namespace");
    };
    if uids.iter().any(|r| r.contains(&0)) {
        return seal("the sandbox maps the host's root");
    }
    if file.acl {
        return seal("the binary has an access ACL, which may let others write it");
    }
    if file.mode & 0o022 != 0 {
        return seal("the binary is group- or world-writable");
    }
    if uids.iter().any(|r| r.contains(&u64::from(file.uid))) {
        return seal("the binary's owner is one of the sandbox's ids");
    }
    if !LOCAL_FS.contains(&file.fs_magic) {
        return seal("the binary's filesystem may decide on its own who writes it");
    }
    SealDecision {
        seal: false,
        why: "nobody the sandbox can be may write the binary (an owner outside its ids, no group or other write, no ACL, a local filesystem)",
    }
}

/// [`ExeFile`] of this process's executable. An ACL that cannot be read counts as present.
pub fn exe_file() -> Result<ExeFile, SealError> {
    use std::os::unix::fs::MetadataExt;
    let exe = std::fs::File::open("/proc/self/exe").map_err(io("open(/proc/self/exe)"))?;
    let meta = exe.metadata().map_err(io("fstat(/proc/self/exe)"))?;
    let fs = nix::sys::statfs::fstatfs(&exe).map_err(os("fstatfs(/proc/self/exe)"))?;
    let mut none: [u8; 0] = [];
    let acl = match rustix::fs::fgetxattr(&exe, "system.posix_acl_access", &mut none[..]) {
        Ok(_) => true,
        Err(e) => e != rustix::io::Errno::NODATA && e != rustix::io::Errno::OPNOTSUPP,
    };
    Ok(ExeFile {
        uid: meta.uid(),
        mode: meta.mode(),
        fs_magic: fs.filesystem_type().0 as u64,
        acl,
    })
}

/// [`seal_decision`] for the sandbox `cfg` describes, started by this process, on this
/// process's executable. Unreadable facts seal.
pub fn seal_decision_for(cfg: &crate::config::SandboxConfig) -> SealDecision {
    let uids = cfg.enabled(crate::layer::Layer::UserNs).then(|| {
        crate::layers::user_ns::outside_ranges(
            &crate::layers::user_ns::id_plan_for_caller(cfg).uid_map,
        )
    });
    match exe_file() {
        Ok(file) => seal_decision(&file, uids.as_deref()),
        Err(_) => SealDecision {
            seal: true,
            why: "the binary's owner and mode cannot be read",
        },
    }
}

/// The id of the mount an open file is on (fdinfo's `mnt_id`, as mountinfo's first field).
fn mount_id(file: &std::fs::File) -> Option<String> {
    std::fs::read_to_string(format!("/proc/self/fdinfo/{}", file.as_raw_fd()))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .map(|v| v.trim().to_string())
}

/// The overlay's empty lower layer, created if missing; refused (so the memfd copy is used)
/// unless it is a real directory (not a symlink to one) that only its owner, root, can change.
fn empty_lower() -> Result<&'static Path, SealError> {
    let empty = Path::new(EMPTY_LOWER);
    prepare_empty_lower(empty)?;
    Ok(empty)
}

/// [`empty_lower`] at `path`.
fn prepare_empty_lower(path: &Path) -> Result<(), SealError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .map_err(io("mkdir(the overlay's empty layer)"))?;
    let meta = std::fs::symlink_metadata(path).map_err(io("lstat(the overlay's empty layer)"))?;
    if !meta.file_type().is_dir() || meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(os(
            "the overlay's empty layer: not a root-owned directory only root can write",
        )(nix::errno::Errno::EPERM));
    }
    Ok(())
}

/// [`reexec_sealed`] when the program's first argument (its subcommand) is one of `commands`.
pub fn reexec_sealed_for(commands: &[&str], build_id: &str) -> Result<(), SealError> {
    let sub = std::env::args_os().nth(1);
    if sub.is_some_and(|s| commands.iter().any(|c| s == *c)) {
        reexec_sealed(build_id)
    } else {
        Ok(())
    }
}

/// Re-execute this program through a sealed view of /proc/self/exe (a read-only overlay, else a
/// sealed memfd copy), unless it already runs from one. Returns `Ok(())` only in the sealed
/// process; on success of the exec it never returns in the original one. Call it before any thread is started. `build_id` names the
/// build (the same string in every binary of one build).
pub fn reexec_sealed(build_id: &str) -> Result<(), SealError> {
    reexec_sealed_from(None, build_id)
}

/// [`reexec_sealed`], with the sealed view made of `program` (None: this program's own binary)
/// and run with this process's arguments and environment. `program` must be a binary of the
/// same build that calls `reexec_sealed_from(_, build_id)` first itself: it checks the marker.
pub fn reexec_sealed_from(program: Option<&Path>, build_id: &str) -> Result<(), SealError> {
    if let Some(marker) = std::env::var_os(MARKER_ENV) {
        // Not for the processes this one starts (the process is still single-threaded).
        std::env::remove_var(MARKER_ENV);
        if marker != build_id {
            return Err(SealError::OtherBuild {
                found: marker.to_string_lossy().into_owned(),
                expected: build_id.to_string(),
            });
        }
        crate::trace::point("re-executed");
        if exe_seal().is_none() {
            return Err(SealError::NotSealed);
        }
        // fexecve names the process after the descriptor ("3"); give ps its name back.
        // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
        unsafe { libc::prctl(libc::PR_SET_NAME, c"breakout".as_ptr(), 0, 0, 0) };
        return Ok(());
    }
    let program = program.unwrap_or(Path::new("/proc/self/exe"));
    let copy_only = crate::trace::switched_on(COPY_ENV);
    let exe = if copy_only {
        sealed_copy(program)?
    } else {
        match overlay_view(program) {
            Ok(fd) => fd,
            Err(e) => {
                if crate::trace::switched_on(crate::trace::TRACE_ENV) {
                    eprintln!("breakout-trace: no read-only overlay of the runtime binary ({e}): a sealed memfd copy instead");
                }
                sealed_copy(program)?
            }
        }
    };
    let mut argv: Vec<CString> = Vec::new();
    for a in std::env::args_os() {
        argv.push(CString::new(a.as_bytes()).map_err(|_| SealError::Nul)?);
    }
    let mut envp: Vec<CString> = Vec::new();
    for (k, v) in std::env::vars_os() {
        let mut kv: OsString = k;
        kv.push("=");
        kv.push(v);
        envp.push(CString::new(kv.as_bytes()).map_err(|_| SealError::Nul)?);
    }
    envp.push(CString::new(format!("{MARKER_ENV}={build_id}")).map_err(|_| SealError::Nul)?);
    let argv_p: Vec<*const libc::c_char> = argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp_p: Vec<*const libc::c_char> = envp
        .iter()
        .map(|e| e.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    crate::trace::point(if copy_only {
        "sealed copy ready, re-executing"
    } else {
        "view of the binary ready, re-executing"
    });
    // SAFETY: argv and envp are NUL-terminated strings in null-terminated arrays that outlive
    // the call; the path is empty with AT_EMPTY_PATH, so the descriptor itself is executed.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            exe.as_raw_fd(),
            c"".as_ptr(),
            argv_p.as_ptr(),
            envp_p.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Err(SealError::Os {
        what: "execveat(the sealed view, AT_EMPTY_PATH)",
        errno: nix::errno::Errno::last(),
    })
}

fn rustix_os(what: &'static str) -> impl FnOnce(rustix::io::Errno) -> SealError {
    move |e| SealError::Os {
        what,
        errno: nix::errno::Errno::from_raw(e.raw_os_error()),
    }
}

/// overlayfs splits lowerdir on ':' and takes a backslash as its escape.
fn escape_lowerdir(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in dir.as_os_str().as_bytes() {
        if b == b':' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// `program` opened (O_PATH) through a detached, read-only overlayfs whose top layer is the
/// program's directory: executing it maps the binary's own pages, and /proc/PID/exe of the
/// process names a file that cannot be opened for writing.
fn overlay_view(program: &Path) -> Result<OwnedFd, SealError> {
    use rustix::mount::{
        fsconfig_create, fsconfig_set_string, fsmount, fsopen, FsMountFlags, FsOpenFlags,
        MountAttrFlags,
    };
    // The real path: /proc/self/exe is a magic link, and overlayfs wants the directory itself.
    let real = std::fs::canonicalize(program).map_err(io("realpath(the runtime binary)"))?;
    let (Some(dir), Some(name)) = (real.parent(), real.file_name()) else {
        return Err(os("the runtime binary's directory")(
            nix::errno::Errno::EINVAL,
        ));
    };
    // First, so a caller without CAP_SYS_ADMIN or a kernel without overlayfs stops here.
    let ctx =
        fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(rustix_os("fsopen(overlay)"))?;
    let empty = empty_lower()?;
    // The binary's directory on top: a file of the same name in the empty layer never hides it.
    let mut lower = escape_lowerdir(dir);
    lower.push(b':');
    lower.extend(escape_lowerdir(empty));
    fsconfig_set_string(&ctx, "lowerdir", std::ffi::OsStr::from_bytes(&lower))
        .map_err(rustix_os("fsconfig(overlay, lowerdir)"))?;
    // Inode-number mapping only matters to programs comparing inodes across layers; off, it
    // cannot log a warning when the two layers sit on different filesystems.
    let _ = fsconfig_set_string(&ctx, "xino", "off");
    fsconfig_create(&ctx).map_err(rustix_os("fsconfig(overlay, FSCONFIG_CMD_CREATE)"))?;
    let mnt = fsmount(
        &ctx,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOSUID,
    )
    .map_err(rustix_os("fsmount(overlay)"))?;
    let exe = rustix::fs::openat(
        &mnt,
        name,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(rustix_os("open(the runtime binary in the overlay)"))?;
    let st =
        rustix::fs::fstat(&exe).map_err(rustix_os("fstat(the runtime binary in the overlay)"))?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(os(
            "the runtime binary in the overlay is not a regular file",
        )(nix::errno::Errno::EINVAL));
    }
    Ok(exe)
}

/// A memfd holding the bytes of `program`, sealed. Close-on-exec: execveat of an ELF binary
/// does not need the descriptor afterwards.
fn sealed_copy(program: &Path) -> Result<OwnedFd, SealError> {
    // SAFETY: a NUL-terminated name and flags; the kernel returns a new descriptor we own.
    let raw = unsafe {
        libc::memfd_create(
            c"breakout".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if raw < 0 {
        return Err(os("memfd_create(MFD_ALLOW_SEALING)")(
            nix::errno::Errno::last(),
        ));
    }
    // SAFETY: memfd_create just returned this descriptor.
    let memfd = unsafe { OwnedFd::from_raw_fd(raw) };
    let exe = std::fs::File::open(program).map_err(io("open(the runtime binary)"))?;
    let len = exe
        .metadata()
        .map_err(io("fstat(the runtime binary)"))?
        .len();
    let mut copied = 0u64;
    while copied < len {
        // SAFETY: sendfile between two descriptors we own; the offset pointer is null (the
        // source's file position advances).
        let n = unsafe {
            libc::sendfile(
                memfd.as_raw_fd(),
                exe.as_raw_fd(),
                std::ptr::null_mut(),
                (len - copied).min(1 << 30) as usize,
            )
        };
        if n < 0 {
            let e = nix::errno::Errno::last();
            if e == nix::errno::Errno::EINTR {
                continue;
            }
            return Err(os("sendfile(memfd, the runtime binary)")(e));
        }
        if n == 0 {
            return Err(os("sendfile(memfd, the runtime binary): short copy")(
                nix::errno::Errno::EIO,
            ));
        }
        copied += n as u64;
    }
    // SAFETY: F_ADD_SEALS takes an int of seal bits.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } < 0 {
        return Err(os("fcntl(F_ADD_SEALS)")(nix::errno::Errno::last()));
    }
    Ok(memfd)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXT4: u64 = 0xEF53;
    const FUSE: u64 = 0x6573_5546;
    const NFS: u64 = 0x6969;

    fn file(uid: u32, mode: u32, fs_magic: u64, acl: bool) -> ExeFile {
        ExeFile {
            uid,
            mode: 0o100_000 | mode,
            fs_magic,
            acl,
        }
    }

    /// The runtime runs from its file only when every condition holds; each one broken alone
    /// seals (the range is strict's default, 100000..165536).
    #[rstest::rstest]
    #[case::root_owned_on_ext4(file(0, 0o755, EXT4, false), Some(100_000..165_536), false)]
    #[case::no_user_namespace(file(0, 0o755, EXT4, false), None, true)]
    #[case::a_map_with_host_root(file(1000, 0o755, EXT4, false), Some(0..1), true)]
    #[case::world_writable(file(0, 0o757, EXT4, false), Some(100_000..165_536), true)]
    #[case::group_writable(file(0, 0o775, EXT4, false), Some(100_000..165_536), true)]
    #[case::owner_in_the_range(file(100_000, 0o755, EXT4, false), Some(100_000..165_536), true)]
    #[case::owner_at_the_ranges_end(file(165_535, 0o555, EXT4, false), Some(100_000..165_536), true)]
    #[case::owner_just_past_it(file(165_536, 0o755, EXT4, false), Some(100_000..165_536), false)]
    #[case::an_acl(file(0, 0o755, EXT4, true), Some(100_000..165_536), true)]
    #[case::fuse(file(0, 0o755, FUSE, false), Some(100_000..165_536), true)]
    #[case::nfs(file(0, 0o755, NFS, false), Some(100_000..165_536), true)]
    fn the_seal_decision(
        #[case] f: ExeFile,
        #[case] range: Option<std::ops::Range<u64>>,
        #[case] seal: bool,
    ) {
        let ranges: Option<Vec<_>> = range.map(|r| vec![r]);
        let d = seal_decision(&f, ranges.as_deref());
        assert_eq!(d.seal, seal, "{f:?} {ranges:?}: {}", d.why);
    }

    /// A map line that does not parse counts as covering every id (so it seals).
    #[test]
    fn an_unreadable_map_line_covers_everything() {
        let r = crate::layers::user_ns::outside_ranges("0 100000 65536\ngarbage\n");
        assert_eq!(r, vec![100_000..165_536, 0..u64::MAX]);
        let d = seal_decision(&file(0, 0o755, EXT4, false), Some(&r));
        assert!(d.seal, "{}", d.why);
    }

    /// The copy is the binary's bytes and refuses every change.
    #[test]
    fn sealed_copy_matches_and_refuses_writes() {
        let fd = sealed_copy(Path::new("/proc/self/exe")).unwrap();
        // A fresh open file description: the copy's own offset stands at its end.
        let copy = std::fs::read(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        let original = std::fs::read("/proc/self/exe").unwrap();
        assert!(
            copy == original,
            "copy {} bytes, binary {}",
            copy.len(),
            original.len()
        );
        // SAFETY: F_GET_SEALS takes no argument.
        let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
        assert_eq!(seals & SEALS, SEALS);
        // Reopened through /proc like the attack does, then written: refused.
        let reopened = std::fs::OpenOptions::new()
            .append(true)
            .open(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        if let Ok(mut w) = reopened {
            let e = std::io::Write::write(&mut w, b"x").unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        }
        // SAFETY: ftruncate on our descriptor; refused by the seals.
        assert!(unsafe { libc::ftruncate(fd.as_raw_fd(), 0) } < 0);
    }

    /// The overlay's file is the program's bytes and cannot be opened for writing, neither
    /// directly nor reopened through /proc like the attack does. Root, like the CLI tests.
    #[test]
    fn the_overlay_view_is_the_program_and_refuses_writes() {
        // overlayfs's separator and escape in the directory's name.
        let dir = tempfile::Builder::new()
            .prefix("seal:view\\")
            .tempdir()
            .unwrap();
        let prog = dir.path().join("prog");
        std::fs::write(&prog, b"\x7fELF not really").unwrap();
        let fd = overlay_view(&prog).unwrap();
        let via = format!("/proc/self/fd/{}", fd.as_raw_fd());
        assert_eq!(std::fs::read(&via).unwrap(), b"\x7fELF not really");
        let e = std::fs::OpenOptions::new()
            .append(true)
            .open(&via)
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");
        assert_eq!(std::fs::read(&prog).unwrap(), b"\x7fELF not really");
    }

    /// The empty layer is used only as a real directory that only root can change: not through
    /// a symlink (which could point at a directory of someone else's), not group- or
    /// world-writable. Root, like the CLI tests.
    #[test]
    fn the_empty_layer_must_be_a_root_owned_directory() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("a/fresh");
        prepare_empty_lower(&fresh).unwrap();
        assert!(fresh.is_dir());
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        assert!(prepare_empty_lower(&link).is_err());
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(prepare_empty_lower(&open).is_err());
    }

    #[test]
    fn a_test_binary_is_not_running_sealed() {
        assert!(!running_sealed());
    }
}
