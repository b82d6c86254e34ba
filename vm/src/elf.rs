//! Which shared libraries a binary loads, read from its ELF headers (DT_NEEDED, DT_RUNPATH,
//! DT_RPATH and PT_INTERP), resolved the way ld.so does for the system directories.
//!
//! Resolution order for a DT_NEEDED name without a slash: DT_RPATH (only when there is no
//! DT_RUNPATH), LD_LIBRARY_PATH, DT_RUNPATH, the directories of /etc/ld.so.conf (includes
//! followed), then the default /lib, /usr/lib and their multiarch and lib64 forms. `$ORIGIN` is
//! expanded. The search is transitive: libraries' own dependencies are added too.

use goblin::elf::Elf;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ElfError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid ELF file: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("{needed} (needed by {by}) was not found in {searched}")]
    NotFound {
        needed: String,
        by: PathBuf,
        searched: String,
    },
}

/// What one ELF file asks of the dynamic loader.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DynamicInfo {
    pub interpreter: Option<PathBuf>,
    pub needed: Vec<String>,
    pub rpath: Vec<String>,
    pub runpath: Vec<String>,
    /// 64-bit x86-64 (decides the multiarch directory).
    pub is_64: bool,
}

/// True when the file starts with the ELF magic.
pub fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map(|()| &magic == b"\x7fELF")
        .unwrap_or(false)
}

/// Reads the dynamic section of one ELF file.
pub fn dynamic_info(path: &Path) -> Result<DynamicInfo, ElfError> {
    let bytes = fs::read(path).map_err(|source| ElfError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_dynamic(path, &bytes)
}

fn parse_dynamic(path: &Path, bytes: &[u8]) -> Result<DynamicInfo, ElfError> {
    let elf = Elf::parse(bytes).map_err(|e| ElfError::Parse {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let split = |v: &[&str]| -> Vec<String> {
        v.iter()
            .flat_map(|s| s.split(':'))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    Ok(DynamicInfo {
        interpreter: elf.interpreter.map(PathBuf::from),
        needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
        rpath: split(&elf.rpaths),
        runpath: split(&elf.runpaths),
        is_64: elf.is_64,
    })
}

/// The library search configuration of the host.
#[derive(Debug, Clone)]
pub struct SearchPath {
    pub ld_library_path: Vec<PathBuf>,
    pub conf_dirs: Vec<PathBuf>,
}

impl SearchPath {
    /// LD_LIBRARY_PATH from the environment and /etc/ld.so.conf.
    pub fn from_host() -> Self {
        let ld_library_path = std::env::var("LD_LIBRARY_PATH")
            .map(|v| {
                v.split(':')
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        let mut conf_dirs = Vec::new();
        read_ld_so_conf(Path::new("/etc/ld.so.conf"), &mut conf_dirs, 0);
        SearchPath {
            ld_library_path,
            conf_dirs,
        }
    }

    fn default_dirs(is_64: bool) -> Vec<PathBuf> {
        let multiarch = if is_64 {
            "x86_64-linux-gnu"
        } else {
            "i386-linux-gnu"
        };
        let mut dirs = vec![
            PathBuf::from(format!("/lib/{multiarch}")),
            PathBuf::from(format!("/usr/lib/{multiarch}")),
        ];
        if is_64 {
            dirs.push("/lib64".into());
            dirs.push("/usr/lib64".into());
        }
        dirs.push("/lib".into());
        dirs.push("/usr/lib".into());
        dirs
    }
}

/// Follows `include` lines (globs of the form `dir/*.conf`) to a small depth.
fn read_ld_so_conf(path: &Path, out: &mut Vec<PathBuf>, depth: u32) {
    if depth > 4 {
        return;
    }
    let Ok(text) = fs::read_to_string(path) else {
        return;
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(pattern) = line.strip_prefix("include") {
            for file in expand_conf_glob(pattern.trim()) {
                read_ld_so_conf(&file, out, depth + 1);
            }
        } else if line.starts_with('/') {
            out.push(PathBuf::from(line));
        }
    }
}

/// Supports the only glob form ld.so.conf files use in practice: `DIR/*SUFFIX`.
fn expand_conf_glob(pattern: &str) -> Vec<PathBuf> {
    let path = Path::new(pattern);
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let Some(suffix) = name.strip_prefix('*') else {
        return vec![path.to_path_buf()];
    };
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.ends_with(suffix))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn expand_origin(entry: &str, binary: &Path) -> PathBuf {
    let origin = binary
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let origin = origin.to_string_lossy();
    PathBuf::from(
        entry
            .replace("${ORIGIN}", &origin)
            .replace("$ORIGIN", &origin),
    )
}

/// Every file the loader needs to start `binary`: its interpreter and all shared libraries,
/// transitively, as host paths (symlinks not resolved: the caller keeps the link chain).
/// A statically linked binary gives an empty list.
pub fn needed_files(binary: &Path, search: &SearchPath) -> Result<Vec<PathBuf>, ElfError> {
    let mut found: BTreeSet<PathBuf> = BTreeSet::new();
    let mut queue: Vec<PathBuf> = vec![binary.to_path_buf()];
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    while let Some(file) = queue.pop() {
        if !seen.insert(file.clone()) {
            continue;
        }
        let info = dynamic_info(&file)?;
        if let Some(interp) = &info.interpreter {
            if found.insert(interp.clone()) {
                queue.push(interp.clone());
            }
        }
        for needed in &info.needed {
            let lib = resolve(needed, &file, &info, search)?;
            if found.insert(lib.clone()) {
                queue.push(lib);
            }
        }
    }
    found.remove(binary);
    Ok(found.into_iter().collect())
}

fn resolve(
    needed: &str,
    by: &Path,
    info: &DynamicInfo,
    search: &SearchPath,
) -> Result<PathBuf, ElfError> {
    if needed.contains('/') {
        let p = expand_origin(needed, by);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(ElfError::NotFound {
                needed: needed.to_string(),
                by: by.to_path_buf(),
                searched: p.display().to_string(),
            })
        };
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    if info.runpath.is_empty() {
        dirs.extend(info.rpath.iter().map(|r| expand_origin(r, by)));
    }
    dirs.extend(search.ld_library_path.iter().cloned());
    dirs.extend(info.runpath.iter().map(|r| expand_origin(r, by)));
    dirs.extend(search.conf_dirs.iter().cloned());
    dirs.extend(SearchPath::default_dirs(info.is_64));
    for dir in &dirs {
        let candidate = dir.join(needed);
        if candidate.is_file() && matches_class(&candidate, info.is_64) {
            return Ok(candidate);
        }
    }
    Err(ElfError::NotFound {
        needed: needed.to_string(),
        by: by.to_path_buf(),
        searched: dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":"),
    })
}

/// ld.so skips libraries of the wrong class (a 32-bit libc in a 64-bit search).
fn matches_class(path: &Path, is_64: bool) -> bool {
    use std::io::Read;
    let mut ident = [0u8; 5];
    match fs::File::open(path).and_then(|mut f| f.read_exact(&mut ident)) {
        Ok(()) => &ident[..4] == b"\x7fELF" && (ident[4] == 2) == is_64,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> SearchPath {
        SearchPath::from_host()
    }

    #[test]
    fn dynamic_shell_needs_libc_and_the_loader() {
        // /bin/bash is dynamically linked on every Debian system.
        let files = needed_files(Path::new("/bin/bash"), &host()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().any(|n| n == "libc.so.6"), "{files:?}");
        assert!(
            files
                .iter()
                .any(|p| p == Path::new("/lib64/ld-linux-x86-64.so.2")),
            "{files:?}"
        );
        assert!(files.iter().all(|p| p.is_file()));
    }

    #[test]
    fn transitive_dependencies_are_followed() {
        // libtinfo comes from bash, the loader from libc's DT_NEEDED as well as from bash's
        // PT_INTERP (two paths, one file: both paths must exist in the guest).
        let files = needed_files(Path::new("/bin/bash"), &host()).unwrap();
        let mut loaders: Vec<PathBuf> = files
            .iter()
            .filter(|p| p.to_string_lossy().contains("ld-linux"))
            .map(|p| fs::canonicalize(p).unwrap())
            .collect();
        loaders.dedup();
        assert_eq!(loaders.len(), 1, "{files:?}");
        assert!(
            files.iter().any(|p| p.ends_with("libtinfo.so.6")),
            "{files:?}"
        );
    }

    #[test]
    fn static_busybox_needs_nothing() {
        let info = dynamic_info(Path::new("/bin/busybox")).unwrap();
        assert_eq!(info.interpreter, None, "busybox-static expected");
        assert!(needed_files(Path::new("/bin/busybox"), &host())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn runpath_with_origin_is_searched_first() {
        let info = DynamicInfo {
            needed: vec!["libc.so.6".into()],
            runpath: vec!["$ORIGIN/../lib".into()],
            is_64: true,
            ..Default::default()
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::create_dir_all(dir.path().join("lib")).unwrap();
        std::fs::copy("/bin/bash", dir.path().join("lib/libc.so.6")).unwrap();
        let by = dir.path().join("bin/prog");
        let got = resolve("libc.so.6", &by, &info, &host()).unwrap();
        assert_eq!(got, dir.path().join("bin/../lib/libc.so.6"));
    }

    #[test]
    fn missing_library_names_what_and_where() {
        let info = DynamicInfo {
            is_64: true,
            ..Default::default()
        };
        let err = resolve("libnope.so.9", Path::new("/x/prog"), &info, &host()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("libnope.so.9") && msg.contains("/x/prog"),
            "{msg}"
        );
        assert!(msg.contains("/usr/lib/x86_64-linux-gnu"), "{msg}");
    }

    #[test]
    fn garbage_is_a_parse_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("junk");
        std::fs::write(&p, b"\x7fELFjunkjunkjunk").unwrap();
        assert!(matches!(dynamic_info(&p), Err(ElfError::Parse { .. })));
        assert!(is_elf(&p));
        assert!(!is_elf(Path::new("/etc/passwd")));
    }
}
