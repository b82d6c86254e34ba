//! Names and tools for what a probe creates: scratch names that attempts running side by side
//! cannot share, the guest's busybox, hex for bytes passed as arguments.

use std::path::{Path, PathBuf};

/// The static busybox of the guest (its applets pick their job from argv[0]), used where a probe
/// plants an executable of its own.
pub fn busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .map(Path::to_path_buf)
}

/// A name for a scratch file or directory the inside creates in a directory other attempts may
/// share (the guest's /tmp or /dev when there is no mount namespace). The pid alone is not
/// enough: in a pid namespace every attempt is pid 1.
pub fn scratch_name(prefix: &str) -> String {
    let salt = match random_salt() {
        Some(bytes) => hex(&bytes),
        // Without the random source (a filter denying getrandom), the clock still separates
        // attempts that overlap.
        None => format!(
            "{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ),
    };
    format!("{prefix}-{}-{salt}", std::process::id())
}

/// Eight bytes from getrandom(2), without waiting for the kernel's seed (GRND_NONBLOCK). The
/// syscall itself, not the getrandom crate: the probe is a static executable, where the crate
/// finds no glibc getrandom by dlsym and falls back to poll(2) on /dev/random and a read of
/// /dev/urandom, other syscalls than the dynamic build made (and a wait where the generator is
/// not seeded yet).
fn random_salt() -> Option<[u8; 8]> {
    let mut bytes = [0u8; 8];
    // SAFETY: the pointer and length describe `bytes`, which getrandom writes at most 8 bytes
    // of; GRND_NONBLOCK makes it fail with EAGAIN instead of waiting.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), libc::GRND_NONBLOCK) };
    (n == bytes.len() as isize).then_some(bytes)
}

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses lower- or upper-case hex into bytes.
pub fn unhex(name: &str, s: &str) -> Result<Vec<u8>, String> {
    if s.len() % 2 != 0 {
        return Err(format!("argument <{name}>: odd number of hex digits"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&s[i..i + 2], 16)
                .map_err(|e| format!("argument <{name}> = {s:?}: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_names_differ() {
        let a = scratch_name("breakout-x");
        assert!(a.starts_with("breakout-x-"), "{a}");
        assert_ne!(a, scratch_name("breakout-x"));
    }

    #[test]
    fn hex_round_trips() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(unhex("h", &hex(&bytes)).unwrap(), bytes);
        assert!(unhex("h", "abc").is_err());
        assert!(unhex("h", "zz").unwrap_err().contains("<h>"));
    }
}
