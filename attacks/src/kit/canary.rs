//! Canaries: a fresh per-attempt secret the outside plants where only an escape reaches it (a
//! root-only file, a kernel-log line), and the inside's way of finding its own among others.

use crate::report::Steps;
use crate::world::{read_kmsg_records, Planted, World};
use crate::ProbeError;
use std::fs;

/// Plants one attempt's canary file: a fresh secret in a world file named after `base`, readable
/// by root only (0600), so that reading it from the sandbox proves an escape. Returns the file
/// (the state keeps it planted until judged) and the secret. Shared by the probes that try to
/// reach an outside file by another road (chroot, io_uring, a file handle, /proc/PID/root).
pub fn plant_canary_file(
    world: &World,
    probe: &'static str,
    base: &str,
) -> Result<(Planted, String), ProbeError> {
    let secret = world.fresh_secret().map_err(ProbeError::world(probe))?;
    let file = world
        .secret_file(base, &secret, 0o600)
        .map_err(ProbeError::world(probe))?;
    Ok((file, secret))
}

/// Plants one attempt's kernel-log canary: a fresh secret written to /dev/kmsg after
/// `{prefix}{tag}:`, where the tag (from `kind`) tells this attempt's line from those of attempts
/// running beside it. Returns (tag, secret). Shared by the probes whose oracle is a kernel-log
/// secret (kernel-log, mknod-device), so both plant it the same way.
pub fn plant_kmsg_canary(
    world: &World,
    probe: &'static str,
    prefix: &str,
    kind: &str,
) -> Result<(String, String), ProbeError> {
    let secret = world.fresh_secret().map_err(ProbeError::world(probe))?;
    let tag = world.unique(kind);
    world
        .kmsg_write(&format!("{prefix}{tag}:{secret}"))
        .map_err(ProbeError::world(probe))?;
    Ok((tag, secret))
}

/// Reads every record from an open kernel-log device as one step and records the token after
/// `marker` (or that there is none). The inside halves that reach /dev/kmsg (by its path, or
/// through a device node of their own) look for their canary this one way.
pub fn read_kmsg_canary(
    steps: &mut Steps,
    file: &mut fs::File,
    action: &str,
    syscall: impl Into<String>,
    marker: &str,
) {
    let mut text = String::new();
    if steps
        .io(action, syscall, || {
            text = read_kmsg_records(file)?;
            Ok(text.len())
        })
        .is_some()
    {
        match token_after(&text, marker) {
            Some(token) => steps.data(token),
            None => steps.data("no canary record"),
        }
    }
}

/// Finds `prefix` in `haystack` and returns the token after it (up to the first character that
/// is not an ASCII letter, digit, `-` or `_`); the last occurrence wins (the newest record).
pub fn token_after(haystack: &str, prefix: &str) -> Option<String> {
    let start = haystack.rfind(prefix)? + prefix.len();
    let token: String = haystack[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_after_prefixes() {
        let log = "a marker:old1\nb marker:new2 tail\n";
        assert_eq!(token_after(log, "marker:"), Some("new2".into()));
        assert_eq!(token_after(log, "absent:"), None);
        assert_eq!(token_after("marker:", "marker:"), None);
    }
}
