//! `--accel auto`: KVM only when a real boot works. Here /dev/kvm opens but guests die with
//! "KVM internal error. Suberror: 1", so opening the device proves nothing; the answer of one
//! trial boot is remembered per machine (by /etc/machine-id) in the cache directory.

use crate::qemu::Accel;
use std::fs;
use std::path::{Path, PathBuf};

/// The cache file that holds the decision for this machine.
pub fn decision_file(cache_dir: &Path) -> PathBuf {
    let id = fs::read_to_string("/etc/machine-id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or_else(|| "unknown-machine".to_string());
    cache_dir.join(format!("accel-{id}"))
}

/// The remembered decision, if any.
pub fn remembered(file: &Path) -> Option<Accel> {
    match fs::read_to_string(file).ok()?.trim() {
        "kvm" => Some(Accel::Kvm),
        "tcg" => Some(Accel::Tcg),
        _ => None,
    }
}

/// Whether /dev/kvm can be opened at all (without it no trial is needed).
pub fn kvm_device_opens() -> bool {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// Resolves `accel`; for Auto, uses the remembered answer or runs `trial_boot_with_kvm`
/// once and remembers what it said. Failing to write the cache only costs a trial next time.
pub fn resolve(
    accel: Accel,
    cache_dir: &Path,
    trial_boot_with_kvm: impl FnOnce() -> bool,
) -> Accel {
    if accel != Accel::Auto {
        return accel;
    }
    let file = decision_file(cache_dir);
    if let Some(known) = remembered(&file) {
        return known;
    }
    let decided = if kvm_device_opens() && trial_boot_with_kvm() {
        Accel::Kvm
    } else {
        Accel::Tcg
    };
    let _ = fs::create_dir_all(cache_dir);
    let _ = fs::write(&file, decided.to_string());
    decided
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn explicit_choice_needs_no_trial() {
        let dir = tempfile::tempdir().unwrap();
        let tried = Cell::new(false);
        assert_eq!(
            resolve(Accel::Tcg, dir.path(), || {
                tried.set(true);
                true
            }),
            Accel::Tcg
        );
        assert!(!tried.get());
    }

    #[test]
    fn auto_tries_once_and_remembers_a_failed_trial() {
        let dir = tempfile::tempdir().unwrap();
        let trials = Cell::new(0);
        let first = resolve(Accel::Auto, dir.path(), || {
            trials.set(trials.get() + 1);
            false
        });
        assert_eq!(first, Accel::Tcg);
        let second = resolve(Accel::Auto, dir.path(), || {
            trials.set(trials.get() + 1);
            true
        });
        assert_eq!(second, Accel::Tcg, "the remembered answer wins");
        assert!(trials.get() <= 1);
        assert_eq!(remembered(&decision_file(dir.path())), Some(Accel::Tcg));
    }

    #[test]
    fn garbage_in_the_cache_file_means_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("accel-x");
        fs::write(&f, "maybe").unwrap();
        assert_eq!(remembered(&f), None);
    }
}
