//! A second guest image for files only some runs need (the workloads' interpreters, git and the
//! C programs built on the host), unpacked by the kernel over the first one. A run without it
//! boots the first image alone, as fast as before.
//!
//! Files come from Debian's packages of the host's own release (its glibc is the one the guest
//! runs: every binary in the first image is the host's), fetched with `apt-get download` through
//! the tool's own apt state under the cache, as the kernel is (see [`crate::kernel`]): the host's
//! apt configuration and installed packages are not touched, and the bundle does not depend on
//! what the host happens to have installed. The packages are unpacked with `dpkg-deb -x` into
//! `cache/bundle/<hash>/tree` once. C programs are built with the host's `cc` into the cache,
//! keyed by their source and flags. The image is cached like the first one, by the hash of what
//! goes in.

use crate::elf::{self, SearchPath};
use crate::initramfs::{self, Image, ImageError};
use crate::kernel::{run_shown, Apt, KernelError};
use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeSet;
use std::fs;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use thiserror::Error;

/// Bump when the way a tree is unpacked changes, so cached trees are redone.
const TREE_VERSION: u32 = 1;

/// The suite used when the host's release cannot be read (the project's own host release).
const FALLBACK_SUITE: &str = "bookworm";

#[derive(Debug, Error)]
pub enum BundleError {
    #[error("fetching the packages: {0}")]
    Apt(#[from] KernelError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("building {program} with `{cmd}`: {reason}")]
    Compile {
        program: String,
        cmd: String,
        reason: String,
    },
    #[error(
        "package file {0} is not in the unpacked packages (a package of this release lacks it)"
    )]
    Missing(String),
    #[error("{0}")]
    Image(#[from] ImageError),
}

/// A C program built on the host and placed in the guest.
#[derive(Debug, Clone, Hash)]
pub struct CProgram {
    /// Where it goes in the guest.
    pub guest: PathBuf,
    /// The whole source text.
    pub source: String,
    /// Flags for `cc` besides `-o OUT SOURCE` (e.g. `-O2 -pthread`, `-static`).
    pub flags: Vec<String>,
}

/// What goes into a bundle.
#[derive(Debug, Clone, Hash)]
pub struct BundleSpec {
    /// Debian packages to fetch and unpack.
    pub packages: Vec<String>,
    /// Paths in the unpacked packages to put into the guest (at the same path): a file, a
    /// symlink, or a directory taken whole. Each must exist.
    pub keep: Vec<String>,
    /// Paths under a kept directory to leave out (tests, documentation), as text prefixes.
    pub drop: Vec<String>,
    pub programs: Vec<CProgram>,
}

/// The host's Debian release name (VERSION_CODENAME of /etc/os-release), the suite whose
/// packages match the host's glibc.
pub fn host_suite() -> String {
    fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("VERSION_CODENAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| FALLBACK_SUITE.to_string())
}

/// The bundle's image in the cache, building what is missing (download, unpack, compile).
pub fn build_cached(
    spec: &BundleSpec,
    cache_dir: &Path,
    strip_debug: bool,
) -> Result<PathBuf, BundleError> {
    let suite = host_suite();
    let tree = unpacked(&spec.packages, &suite, cache_dir)?;
    let mut img = Image::overlay();
    let mut elves = Vec::new();
    let dropped: Vec<String> = spec
        .drop
        .iter()
        .map(|d| {
            tree.join(d.trim_start_matches('/'))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for keep in &spec.keep {
        let host = tree.join(keep.trim_start_matches('/'));
        if fs::symlink_metadata(&host).is_err() {
            return Err(BundleError::Missing(keep.clone()));
        }
        add_tree(&mut img, &tree, &host, &dropped, &mut elves)?;
    }
    for program in &spec.programs {
        let built = compiled(program, cache_dir)?;
        img.add_file_only(&built, &program.guest, 0o755);
        elves.push(built);
    }
    // Libraries: the unpacked packages' own first (they are what the binaries were built
    // against), then the host's, which the first image already holds (libc, libm).
    let lib_dir = tree.join("usr/lib/x86_64-linux-gnu");
    let search = SearchPath {
        ld_library_path: vec![lib_dir],
        conf_dirs: SearchPath::from_host().conf_dirs,
    };
    let mut libs = BTreeSet::new();
    for file in &elves {
        if elf::is_elf(file) {
            libs.extend(elf::needed_files(file, &search).map_err(ImageError::from)?);
        }
    }
    for lib in libs {
        if lib.starts_with(&tree) {
            add_tree(&mut img, &tree, &lib, &[], &mut Vec::new())?;
        } else {
            img.add_at_host_path(&lib)?;
        }
    }
    Ok(initramfs::write_cached(img, strip_debug, cache_dir)?)
}

/// Adds `host` (inside `tree`) at its path relative to the tree, directories whole, noting ELF
/// files in `elves`.
fn add_tree(
    img: &mut Image,
    tree: &Path,
    host: &Path,
    dropped: &[String],
    elves: &mut Vec<PathBuf>,
) -> Result<(), BundleError> {
    // By text: `lib-dynload/_test` drops every `_test*` module.
    if dropped
        .iter()
        .any(|d| host.to_string_lossy().starts_with(d.as_str()))
    {
        return Ok(());
    }
    let io = |what: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| BundleError::Io {
            what,
            path: p,
            source,
        }
    };
    let guest = Path::new("/").join(host.strip_prefix(tree).unwrap_or(host));
    let meta = fs::symlink_metadata(host).map_err(io("cannot read", host))?;
    if meta.file_type().is_symlink() {
        let target = fs::read_link(host).map_err(io("cannot read link", host))?;
        img.add_symlink(&guest, &target.to_string_lossy());
        // A link to a library: the file it names comes too.
        let resolved = host.parent().unwrap_or(tree).join(&target);
        if !target.is_absolute() && resolved.starts_with(tree) && resolved.is_file() {
            add_tree(img, tree, &initramfs::normalize(&resolved), dropped, elves)?;
        }
    } else if meta.is_dir() {
        let mut children: Vec<PathBuf> = fs::read_dir(host)
            .map_err(io("cannot list", host))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        children.sort();
        for child in children {
            add_tree(img, tree, &child, dropped, elves)?;
        }
    } else if meta.is_file() {
        img.add_file_only(host, &guest, meta.permissions().mode() & 0o7777);
        if elf::is_elf(host) {
            elves.push(host.to_path_buf());
        }
    }
    Ok(())
}

fn hash_of(value: &impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// The packages unpacked into one tree under the cache, fetched when not there yet.
fn unpacked(packages: &[String], suite: &str, cache_dir: &Path) -> Result<PathBuf, BundleError> {
    let io = |what: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| BundleError::Io {
            what,
            path: p,
            source,
        }
    };
    let dir = cache_dir.join("bundle").join(format!(
        "{suite}-{:016x}",
        hash_of(&(TREE_VERSION, packages))
    ));
    let tree = dir.join("tree");
    if tree.is_dir() {
        return Ok(tree);
    }
    fs::create_dir_all(&dir).map_err(io("cannot create", &dir))?;
    let work = dir.join(format!(".work-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).map_err(io("cannot create", &work))?;
    let result = (|| {
        let apt = Apt::prepare(cache_dir, suite)?;
        let state = cache_dir.join("apt").join(suite);
        run_shown(
            apt.command("apt-get").arg("update"),
            format!("apt-get update ({suite}, state in {})", state.display()),
        )?;
        run_shown(
            apt.command("apt-get")
                .arg("download")
                .args(packages)
                .current_dir(&work),
            format!("apt-get download {} ({suite})", packages.join(" ")),
        )?;
        let mut debs: Vec<PathBuf> = fs::read_dir(&work)
            .map_err(io("cannot list", &work))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "deb"))
            .collect();
        debs.sort();
        if debs.len() != packages.len() {
            return Err(BundleError::Apt(KernelError::Provision {
                cmd: format!("apt-get download {}", packages.join(" ")),
                reason: format!(
                    "{} .deb files appeared for {} packages",
                    debs.len(),
                    packages.len()
                ),
            }));
        }
        let staged = work.join("tree");
        for deb in &debs {
            run_shown(
                Command::new("dpkg-deb").arg("-x").arg(deb).arg(&staged),
                format!("dpkg-deb -x {}", deb.display()),
            )?;
        }
        fs::rename(&staged, &tree).map_err(io("cannot move into place", &tree))
    })();
    let _ = fs::remove_dir_all(&work);
    match result {
        // Another process may have unpacked the same tree first.
        Err(_) if tree.is_dir() => Ok(tree),
        Err(e) => Err(e),
        Ok(()) => Ok(tree),
    }
}

/// The program built with the host's `cc`, cached by its source and flags.
fn compiled(program: &CProgram, cache_dir: &Path) -> Result<PathBuf, BundleError> {
    let name = program
        .guest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "program".into());
    let dir = cache_dir.join("bundle").join("programs");
    let out = dir.join(format!("{:016x}-{name}", hash_of(program)));
    if out.is_file() {
        return Ok(out);
    }
    let io = |what: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| BundleError::Io {
            what,
            path: p,
            source,
        }
    };
    fs::create_dir_all(&dir).map_err(io("cannot create", &dir))?;
    let source = dir.join(format!(".{name}-{}.c", std::process::id()));
    fs::write(&source, &program.source).map_err(io("cannot write", &source))?;
    let tmp = dir.join(format!(".{name}-{}.out", std::process::id()));
    let mut cmd = Command::new("cc");
    cmd.args(&program.flags).arg("-o").arg(&tmp).arg(&source);
    let shown = format!(
        "cc {} -o {} {}",
        program.flags.join(" "),
        tmp.display(),
        source.display()
    );
    let result = cmd.output();
    let _ = fs::remove_file(&source);
    let fail = |reason: String| BundleError::Compile {
        program: name.clone(),
        cmd: shown.clone(),
        reason,
    };
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(fail(
                "cc not found (scripts/install-deps installs gcc and libc6-dev)".into(),
            ))
        }
        Err(e) => return Err(fail(e.to_string())),
        Ok(o) if !o.status.success() => {
            let _ = fs::remove_file(&tmp);
            let text = String::from_utf8_lossy(&o.stderr);
            let first = text
                .lines()
                .find(|l| l.contains("error"))
                .unwrap_or_else(|| text.lines().next().unwrap_or(""));
            return Err(fail(format!("{}: {first}", o.status)));
        }
        Ok(_) => {}
    }
    fs::rename(&tmp, &out).map_err(io("cannot move into place", &out))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_c_program_that_does_not_compile_names_the_program_and_the_error() {
        let cache = tempfile::tempdir().unwrap();
        let p = CProgram {
            guest: "/usr/libexec/x/broken".into(),
            source: "int main(void) { return missing; }\n".into(),
            flags: vec![],
        };
        let e = compiled(&p, cache.path()).unwrap_err().to_string();
        assert!(e.starts_with("building broken with `cc "), "{e}");
        assert!(e.contains("missing"), "{e}");
    }

    #[test]
    fn a_c_program_is_built_once() {
        let cache = tempfile::tempdir().unwrap();
        let p = CProgram {
            guest: "/usr/libexec/x/ok".into(),
            source: "int main(void) { return 0; }\n".into(),
            flags: vec!["-O2".into()],
        };
        let a = compiled(&p, cache.path()).unwrap();
        let mtime = fs::metadata(&a).unwrap().modified().unwrap();
        let b = compiled(&p, cache.path()).unwrap();
        assert_eq!(a, b);
        assert_eq!(fs::metadata(&b).unwrap().modified().unwrap(), mtime);
    }

    #[test]
    fn the_host_suite_is_a_word() {
        let s = host_suite();
        assert!(
            !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{s}"
        );
    }
}
