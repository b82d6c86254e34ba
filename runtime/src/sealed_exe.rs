//! The runtime runs from a sealed memfd copy of its own binary (the CVE-2019-5736 defence runc
//! adopted): a payload that can see the runtime's processes (pid-ns off) reaches their
//! executable through /proc/PID/exe, a magic link that ignores the sandbox's read-only view. A
//! daemonised child of the payload held it with O_PATH while the runtime ran and reopened it
//! for writing once the runtime had exited, overwriting the host's binary. Running from an
//! anonymous memfd sealed against writes and size changes leaves that link nothing to write:
//! the file on disk is never what the runtime's processes execute.
//!
//! `reexec_sealed` is the first thing the command-line tool does for the subcommands that act
//! as a runtime (`sandbox`, `guest-exec`); an environment marker stops the second start from
//! copying again, and the seals (not the marker) are what it trusts. What remains is the short
//! window between the first exec and the re-exec, in which the process runs from the file: a
//! watcher that may open /proc/PID/exe of a root process (same user namespace, a superset of
//! its capabilities, e.g. a payload that is real root with pid-ns off) can race it, and could as
//! well write the process's memory; pid-ns, uid, user-ns and caps are the defence there.
//!
//! The copy and the second start cost in proportion to the binary (the whole of it is copied,
//! then paged in and relocated again), so `breakout sandbox` seals a small binary that holds
//! only the runtime and its command line (`reexec_sealed_from`, `breakout-sandbox` installed
//! next to `breakout`) rather than the whole tool. The marker carries the build's identity: a
//! sealed program from another build refuses to start instead of running other code than the
//! one the caller was built with.

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
    #[error("cannot run from a sealed copy of the runtime binary: re-executed with {MARKER_ENV} set but /proc/self/exe is not sealed (seals {seals:#x})")]
    NotSealed { seals: i32 },
    #[error("cannot run from a sealed copy of the runtime binary: an argument or environment entry contains a NUL byte")]
    Nul,
    #[error("cannot run from a sealed copy of the runtime binary: it was started by a program of another build (marker {found:?}, this build {expected:?}); build both binaries together (cargo build --bins) or remove the stale one")]
    OtherBuild { found: String, expected: String },
}

fn os(what: &'static str) -> impl FnOnce(nix::errno::Errno) -> SealError {
    move |errno| SealError::Os { what, errno }
}

/// Is this process already running from a sealed copy?
pub fn running_sealed() -> bool {
    exe_seals().is_ok_and(|s| s & SEALS == SEALS)
}

fn exe_seals() -> Result<i32, SealError> {
    let exe = std::fs::File::open("/proc/self/exe").map_err(|e| SealError::Os {
        what: "open(/proc/self/exe)",
        errno: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })?;
    // SAFETY: F_GET_SEALS takes no argument; EINVAL for files that are not memfds.
    let r = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    Ok(if r < 0 { 0 } else { r })
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

/// Re-execute this program from a sealed memfd copy of /proc/self/exe, unless it already runs
/// from one. Returns `Ok(())` only in the sealed process; on success of the exec it never
/// returns in the original one. Call it before any thread is started. `build_id` names the
/// build (the same string in every binary of one build).
pub fn reexec_sealed(build_id: &str) -> Result<(), SealError> {
    reexec_sealed_from(None, build_id)
}

/// [`reexec_sealed`], with the sealed copy made of `program` (None: this program's own binary)
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
        let seals = exe_seals()?;
        if seals & SEALS != SEALS {
            return Err(SealError::NotSealed { seals });
        }
        // fexecve names the process after the descriptor ("3"); give ps its name back.
        // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
        unsafe { libc::prctl(libc::PR_SET_NAME, c"breakout".as_ptr(), 0, 0, 0) };
        return Ok(());
    }
    let memfd = sealed_copy(program.unwrap_or(Path::new("/proc/self/exe")))?;
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
    // SAFETY: argv and envp are NUL-terminated strings in null-terminated arrays that outlive
    // the call; the path is empty with AT_EMPTY_PATH, so the descriptor itself is executed.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            memfd.as_raw_fd(),
            c"".as_ptr(),
            argv_p.as_ptr(),
            envp_p.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Err(SealError::Os {
        what: "execveat(memfd, AT_EMPTY_PATH)",
        errno: nix::errno::Errno::last(),
    })
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
    let exe = std::fs::File::open(program).map_err(|e| SealError::Os {
        what: "open(the runtime binary)",
        errno: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })?;
    let len = exe
        .metadata()
        .map_err(|e| SealError::Os {
            what: "fstat(the runtime binary)",
            errno: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?
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

    #[test]
    fn a_test_binary_is_not_running_sealed() {
        assert!(!running_sealed());
    }
}
