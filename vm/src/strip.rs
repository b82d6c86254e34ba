//! Debug information left out of the guest image. A debug build of `breakout` or of a test
//! binary is 40-70 MB, mostly DWARF; under TCG every byte is unpacked by the guest kernel and
//! copied once more onto the tmpfs root, so the image shrinks (and the boot speeds up) by
//! `objcopy --strip-debug` (binutils). Symbols stay, so backtraces still name functions.
//! Stripped copies are cached by the source file's identity (path, size, mtime, inode).

use goblin::elf::Elf;
use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How many stripped copies to keep.
const KEEP: usize = 48;

/// Whether an ELF file carries DWARF (`.debug_info`; Rust binaries keep the small, loaded
/// `.debug_gdb_scripts` even when stripped).
pub fn has_debug_info(path: &Path) -> bool {
    let Ok(bytes) = fs::read(path) else {
        return false;
    };
    let Ok(elf) = Elf::parse(&bytes) else {
        return false;
    };
    elf.section_headers.iter().any(|s| {
        elf.shdr_strtab
            .get_at(s.sh_name)
            .is_some_and(|n| n == ".debug_info")
    })
}

/// The file to put in the image for `host`: a cached stripped copy when it has debug
/// information and objcopy works, else `host` itself (stripping only saves time).
pub fn stripped_or_original(host: &Path, cache_dir: &Path) -> PathBuf {
    let Ok(meta) = fs::metadata(host) else {
        return host.to_path_buf();
    };
    let mut h = DefaultHasher::new();
    (
        host,
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ino(),
        meta.dev(),
    )
        .hash(&mut h);
    let dir = cache_dir.join("stripped");
    let name = host
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let out = dir.join(format!("{:016x}-{name}", h.finish()));
    if out.is_file() {
        return out;
    }
    if meta.len() < 1 << 20 || !crate::elf::is_elf(host) || !has_debug_info(host) {
        return host.to_path_buf();
    }
    if fs::create_dir_all(&dir).is_err() {
        return host.to_path_buf();
    }
    static COPIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let ok = Command::new("objcopy")
        .arg("--strip-debug")
        .arg(host)
        .arg(&tmp)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok && fs::rename(&tmp, &out).is_ok() {
        prune(&dir);
        return out;
    }
    let _ = fs::remove_file(&tmp);
    host.to_path_buf()
}

fn prune(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| !p.to_string_lossy().ends_with(".tmp"))
        .filter_map(|p| Some((fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    files.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (_, p) in files.into_iter().skip(KEEP) {
        let _ = fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_debug_build_is_stripped_once_and_reused() {
        // This test binary is a debug build with DWARF.
        let me = std::env::current_exe().unwrap();
        assert!(has_debug_info(&me));
        let cache = tempfile::tempdir().unwrap();
        let out = stripped_or_original(&me, cache.path());
        assert_ne!(out, me, "objcopy (binutils) should have stripped it");
        assert!(!has_debug_info(&out));
        assert!(fs::metadata(&out).unwrap().len() < fs::metadata(&me).unwrap().len());
        assert_eq!(stripped_or_original(&me, cache.path()), out);
    }

    #[test]
    fn files_without_debug_info_are_used_as_they_are() {
        let cache = tempfile::tempdir().unwrap();
        let busybox = Path::new("/bin/busybox");
        assert_eq!(stripped_or_original(busybox, cache.path()), busybox);
        let text = Path::new("/etc/passwd");
        assert_eq!(stripped_or_original(text, cache.path()), text);
    }
}
