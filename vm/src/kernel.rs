//! The guest kernel: Debian's cloud kernel of a release (`debian-12`, the default, Linux 6.1;
//! `debian-13`, Linux 6.12), fetched once with `apt-get download` into the cache and taken out of
//! the .deb; or any bzImage given by path.
//!
//! Debian's packages are fetched with the tool's own apt state under the cache (its own source
//! list naming the release, its own package lists and archive cache, an empty dpkg status), so
//! the host's apt configuration is never changed and the host's release does not matter. The
//! mirror is the one the host's apt sources use for Debian (or `BREAKOUT_DEBIAN_MIRROR`).
//!
//! When the kernel's config is at hand (the .deb ships /boot/config-*, or a `config-*` file
//! sits next to a given `vmlinuz-*`), the options we rely on are checked.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use thiserror::Error;

/// Debian's metapackage that points at the current cloud kernel.
const META_PACKAGE: &str = "linux-image-cloud-amd64";

/// Options the guest needs built in (no modules are loaded in the guest).
pub const REQUIRED_OPTIONS: &[(&str, &str)] = &[
    ("CONFIG_BLK_DEV_INITRD", "initramfs"),
    ("CONFIG_DEVTMPFS", "/dev"),
    ("CONFIG_TMPFS", "tmpfs root and /tmp"),
    ("CONFIG_SERIAL_8250_CONSOLE", "the serial channel"),
    ("CONFIG_CGROUPS", "cgroup v2"),
    ("CONFIG_MEMCG", "cgroup memory controller"),
    ("CONFIG_CGROUP_PIDS", "cgroup pids controller"),
    ("CONFIG_CGROUP_SCHED", "cgroup cpu controller"),
    ("CONFIG_USER_NS", "user namespaces"),
    ("CONFIG_PID_NS", "pid namespaces"),
    ("CONFIG_NET_NS", "network namespaces"),
    ("CONFIG_SECCOMP_FILTER", "seccomp filters"),
    ("CONFIG_MAGIC_SYSRQ", "sysrq (panic test)"),
];

/// The kernels known by name: (name, Debian suite, what it is).
pub const RELEASES: &[(&str, &str, &str)] = &[
    (
        "debian-12",
        "bookworm",
        "Debian 12's cloud kernel, Linux 6.1 (Landlock ABI 2, legacy TIOCSTI on)",
    ),
    (
        "debian-13",
        "trixie",
        "Debian 13's cloud kernel, Linux 6.12 (Landlock ABI 6, built without legacy TIOCSTI)",
    ),
];

/// The release booted when no kernel is named.
pub const DEFAULT_RELEASE: &str = "debian-12";

/// The keyring apt checks Debian's archive with, when the host has it.
const DEBIAN_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

#[derive(Debug, Error)]
pub enum KernelError {
    #[error("unknown kernel `{0}`: name one of {names} or give the path of a bzImage (a file in the current directory as ./{0})", names = RELEASES.iter().map(|r| r.0).collect::<Vec<_>>().join(", "))]
    UnknownName(String),
    #[error("no Debian mirror for the kernel's apt sources: none of the host's apt sources ({0}) names a .../debian archive; set BREAKOUT_DEBIAN_MIRROR=URL")]
    NoMirror(String),
    #[error("kernel image {0} does not exist")]
    Missing(PathBuf),
    #[error("{0} is not a bzImage (no \"HdrS\" boot header)")]
    NotBzImage(PathBuf),
    #[error("`{cmd}` failed: {reason} (named kernels come from Debian's archive through `apt-get download`; pass --kernel PATH to boot a bzImage instead)")]
    Provision { cmd: String, reason: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A kernel ready to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    pub image: PathBuf,
    /// The kernel's .config, when known.
    pub config: Option<PathBuf>,
    /// Module files kept from the kernel's package for the guest (at their /lib/modules
    /// path): the kernel-module probe needs one real, harmless module to load.
    pub modules: Vec<crate::initramfs::GuestFile>,
}

/// The modules kept from the kernel's package, relative to its unpacked tree. `dummy` is a
/// virtual network driver: loading it with numdummies=0 creates nothing, so it is a harmless
/// proof that module loading worked. `loop` gives the outside world block devices over its own
/// files (the block-device probe); it needs no other module. `overlay` lets the runtime
/// re-execute itself through a read-only overlay instead of a memfd copy (a copy's fresh pages
/// are translated again at every start under TCG); the guest's init loads it at boot.
pub const KEPT_MODULES: &[&str] = &[
    "kernel/drivers/net/dummy.ko",
    "kernel/drivers/block/loop.ko",
    OVERLAY_MODULE,
];

/// The overlay filesystem's module, relative to /lib/modules/<release>.
pub const OVERLAY_MODULE: &str = "kernel/fs/overlayfs/overlay.ko";

/// The file in a cached kernel's `modules/` directory that lists the modules kept when it was
/// unpacked: a cache made with another [`KEPT_MODULES`] is unpacked again.
const KEPT_LIST: &str = "kept";

fn kept_list() -> String {
    KEPT_MODULES.join("\n") + "\n"
}

impl Kernel {
    /// A bzImage given by path.
    pub fn from_path(path: &Path) -> Result<Self, KernelError> {
        if !path.is_file() {
            return Err(KernelError::Missing(path.to_path_buf()));
        }
        check_bzimage(path)?;
        let config = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("vmlinuz-"))
            .map(|suffix| path.with_file_name(format!("config-{suffix}")))
            .filter(|p| p.is_file());
        Ok(Kernel {
            image: path.to_path_buf(),
            config,
            modules: Vec::new(),
        })
    }

    /// Options from [`REQUIRED_OPTIONS`] that the config does not build in. Empty when the
    /// config is unknown (see [`Kernel::config`]).
    pub fn missing_options(&self) -> Result<Vec<String>, KernelError> {
        let Some(config) = &self.config else {
            return Ok(Vec::new());
        };
        let text = fs::read_to_string(config).map_err(|source| KernelError::Io {
            what: "cannot read kernel config",
            path: config.clone(),
            source,
        })?;
        Ok(missing_options(&text))
    }
}

/// The options of [`REQUIRED_OPTIONS`] not set to `y` in a kernel config text.
pub fn missing_options(config: &str) -> Vec<String> {
    REQUIRED_OPTIONS
        .iter()
        .filter(|(opt, _)| {
            !config
                .lines()
                .any(|l| l.trim() == format!("{opt}=y").as_str())
        })
        .map(|(opt, why)| format!("{opt} ({why})"))
        .collect()
}

fn check_bzimage(path: &Path) -> Result<(), KernelError> {
    let mut header = [0u8; 0x206];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .map_err(|source| KernelError::Io {
            what: "cannot read kernel",
            path: path.to_path_buf(),
            source,
        })?;
    if &header[0x202..0x206] != b"HdrS" {
        return Err(KernelError::NotBzImage(path.to_path_buf()));
    }
    Ok(())
}

fn run(cmd: &mut Command) -> Result<String, KernelError> {
    let shown = format!("{cmd:?}");
    run_shown(cmd, shown).map(|(stdout, _)| stdout)
}

/// Runs `cmd` (shown as `shown` in errors, all on one line); (stdout, stderr) on success.
pub(crate) fn run_shown(cmd: &mut Command, shown: String) -> Result<(String, String), KernelError> {
    let out = cmd.output().map_err(|e| KernelError::Provision {
        cmd: shown.clone(),
        reason: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(KernelError::Provision {
            cmd: shown,
            reason: format!(
                "{}: {}",
                out.status,
                one_line(&String::from_utf8_lossy(&out.stderr))
            ),
        });
    }
    Ok((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// A tool's message on one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The kernel `spec` names: a release of [`RELEASES`] (fetched into `cache_dir` once), else the
/// path of a bzImage. A bare word that is neither is an error, before anything boots.
pub fn resolve(spec: &Path, cache_dir: &Path) -> Result<Kernel, KernelError> {
    let text = spec.to_string_lossy();
    if let Some((name, suite, _)) = RELEASES.iter().find(|r| r.0 == text) {
        return provision(name, suite, cache_dir);
    }
    if !text.contains('/') && !spec.exists() {
        return Err(KernelError::UnknownName(text.into_owned()));
    }
    Kernel::from_path(spec)
}

/// The tool's own apt state for one Debian suite, under the cache.
pub(crate) struct Apt {
    root: PathBuf,
}

impl Apt {
    /// Writes the source list for `suite` (the mirror from the environment or the host's apt
    /// sources) and the empty dpkg status apt needs.
    pub(crate) fn prepare(cache_dir: &Path, suite: &str) -> Result<Apt, KernelError> {
        let root = cache_dir.join("apt").join(suite);
        let io = |what: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| KernelError::Io { what, path, source }
        };
        for dir in ["lists/partial", "cache/archives/partial"] {
            let d = root.join(dir);
            fs::create_dir_all(&d).map_err(io("cannot create", &d))?;
        }
        let mirror = debian_mirror()?;
        let signed = if Path::new(DEBIAN_KEYRING).is_file() {
            format!(" [signed-by={DEBIAN_KEYRING}]")
        } else {
            String::new()
        };
        let list = root.join("sources.list");
        fs::write(&list, format!("deb{signed} {mirror} {suite} main\n"))
            .map_err(io("cannot write", &list))?;
        let status = root.join("status");
        if !status.is_file() {
            fs::write(&status, "").map_err(io("cannot write", &status))?;
        }
        Ok(Apt { root })
    }

    /// `program` (apt-get or apt-cache) with every state path pointed into our root.
    pub(crate) fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        let r = |p: &str| self.root.join(p).display().to_string();
        cmd.arg("-q")
            .arg(format!("-oDir::Etc::sourcelist={}", r("sources.list")))
            .arg("-oDir::Etc::sourceparts=-")
            .arg(format!("-oDir::State::Lists={}", r("lists")))
            .arg(format!("-oDir::Cache={}", r("cache")))
            .arg(format!("-oDir::State::status={}", r("status")))
            .arg("-oAPT::Get::List-Cleanup=0")
            .arg("-oAcquire::Languages=none");
        cmd
    }
}

/// The Debian mirror: $BREAKOUT_DEBIAN_MIRROR, else the first URI of the host's apt sources
/// whose path is `.../debian`.
fn debian_mirror() -> Result<String, KernelError> {
    if let Ok(m) = std::env::var("BREAKOUT_DEBIAN_MIRROR") {
        if !m.trim().is_empty() {
            return Ok(m.trim().trim_end_matches('/').to_string());
        }
    }
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(entries) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    let mut seen = Vec::new();
    for f in &files {
        let name = f.to_string_lossy();
        if !(name.ends_with(".list") || name.ends_with(".sources")) {
            continue;
        }
        if let Ok(text) = fs::read_to_string(f) {
            seen.push(f.display().to_string());
            if let Some(m) = mirror_in(&text) {
                return Ok(m);
            }
        }
    }
    Err(KernelError::NoMirror(seen.join(", ")))
}

/// The first http(s) URI ending in `/debian` in a one-line (.list) or deb822 (.sources) text.
fn mirror_in(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .flat_map(|l| {
            let l = l.strip_prefix("URIs:").unwrap_or(l);
            l.split_whitespace()
        })
        .map(|w| w.trim_end_matches('/'))
        .find(|w| (w.starts_with("http://") || w.starts_with("https://")) && w.ends_with("/debian"))
        .map(str::to_string)
}

/// The unsigned image package the cloud metapackage of `apt`'s suite points at, e.g.
/// `linux-image-6.1.0-56-cloud-amd64-unsigned`.
fn release_package(apt: &Apt, suite: &str) -> Result<String, KernelError> {
    let state = apt.root.display();
    // apt-get update exits 0 when a mirror cannot be reached; its warnings explain a lookup
    // that then finds nothing.
    let (_, warnings) = run_shown(
        apt.command("apt-get").arg("update"),
        format!("apt-get update ({suite}, state in {state})"),
    )?;
    let lookup = run_shown(
        apt.command("apt-cache").args(["depends", META_PACKAGE]),
        format!("apt-cache depends {META_PACKAGE} ({suite}, state in {state})"),
    );
    let fetch_failed = |e: String| {
        let why: Vec<&str> = warnings
            .lines()
            .filter(|l| l.starts_with("W:") || l.starts_with("E:"))
            .collect();
        if why.is_empty() {
            e
        } else {
            format!("{e}; apt-get update said: {}", one_line(&why.join(" ")))
        }
    };
    let out = match lookup {
        Ok((out, _)) => out,
        Err(KernelError::Provision { cmd, reason }) => {
            return Err(KernelError::Provision {
                cmd,
                reason: fetch_failed(reason),
            })
        }
        Err(e) => return Err(e),
    };
    package_from_depends(&out).ok_or_else(|| KernelError::Provision {
        cmd: format!("apt-cache depends {META_PACKAGE} ({suite})"),
        reason: fetch_failed(format!(
            "no linux-image dependency in its output: {}",
            one_line(&out)
        )),
    })
}

fn package_from_depends(out: &str) -> Option<String> {
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|p| p.starts_with("linux-image-") && *p != META_PACKAGE)
        .map(|p| {
            if p.ends_with("-unsigned") {
                p.to_string()
            } else {
                format!("{p}-unsigned")
            }
        })
}

/// The default kernel ([`DEFAULT_RELEASE`]).
pub fn provision_default(cache_dir: &Path) -> Result<Kernel, KernelError> {
    let (name, suite, _) = RELEASES
        .iter()
        .find(|r| r.0 == DEFAULT_RELEASE)
        .copied()
        .unwrap_or(RELEASES[0]);
    provision(name, suite, cache_dir)
}

/// The cloud kernel of a Debian release, downloaded and unpacked into
/// `cache_dir/kernel/<package>/` once; `cache_dir/kernel/<name>` remembers the package.
fn provision(name: &str, suite: &str, cache_dir: &Path) -> Result<Kernel, KernelError> {
    let kernels = cache_dir.join("kernel");
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| KernelError::Io { what, path, source }
    };
    fs::create_dir_all(&kernels).map_err(io("cannot create", &kernels))?;
    // The chosen package is remembered so later runs need no apt call. Caches from before
    // kernels had names remembered the default one as "default".
    let chosen = kernels.join(name);
    let mut remembered = vec![chosen.clone()];
    if name == DEFAULT_RELEASE {
        remembered.push(kernels.join("default"));
    }
    let cached = remembered.iter().find_map(|f| {
        let p = fs::read_to_string(f).ok()?;
        let p = p.trim();
        (!p.is_empty()
            && kernels.join(p).join("vmlinuz").is_file()
            && kernels.join(p).join("modules").is_dir()
            && fs::read_to_string(kernels.join(p).join("modules").join(KEPT_LIST))
                .is_ok_and(|k| k == kept_list()))
        .then(|| p.to_string())
    });
    let package = match cached {
        Some(p) => p,
        None => {
            let apt = Apt::prepare(cache_dir, suite)?;
            let p = match std::env::var("BREAKOUT_KERNEL_PACKAGE") {
                Ok(p) if name == DEFAULT_RELEASE && !p.is_empty() => p,
                _ => release_package(&apt, suite)?,
            };
            download(&apt, &kernels, &p)?;
            fs::write(&chosen, &p).map_err(io("cannot write", &chosen))?;
            p
        }
    };
    let dir = kernels.join(&package);
    let config = dir.join("config");
    Ok(Kernel {
        image: dir.join("vmlinuz"),
        config: config.is_file().then_some(config),
        modules: kept_modules(&dir.join("modules")),
    })
}

/// Every file under `root` (an unpacked `lib/modules/<version>/...` tree), with its guest path.
fn kept_modules(root: &Path) -> Vec<crate::initramfs::GuestFile> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<crate::initramfs::GuestFile>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.filter_map(|e| e.ok()) {
            let path = e.path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.push(crate::initramfs::GuestFile {
                    guest: Path::new("/").join(rel),
                    host: path,
                });
            }
        }
    }
    let mut out = Vec::new();
    // Only the module tree: the list of kept modules next to it is not for the guest.
    walk(&root.join("lib"), root, &mut out);
    out.sort_by(|a, b| a.guest.cmp(&b.guest));
    out
}

fn download(apt: &Apt, kernels: &Path, package: &str) -> Result<(), KernelError> {
    let dest = kernels.join(package);
    if dest.join("vmlinuz").is_file()
        && fs::read_to_string(dest.join("modules").join(KEPT_LIST)).is_ok_and(|k| k == kept_list())
    {
        return Ok(());
    }
    // Unique per process and per call: threads of one process may race to the same kernel.
    static DOWNLOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let work = kernels.join(format!(
        ".download-{}-{}",
        std::process::id(),
        DOWNLOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| KernelError::Io { what, path, source }
    };
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).map_err(io("cannot create", &work))?;
    let result = (|| {
        run_shown(
            apt.command("apt-get")
                .args(["download", package])
                .current_dir(&work),
            format!("apt-get download {package}"),
        )?;
        let deb = fs::read_dir(&work)
            .map_err(io("cannot list", &work))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .ok_or_else(|| KernelError::Provision {
                cmd: format!("apt-get download {package}"),
                reason: "no .deb file appeared".into(),
            })?;
        let tree = work.join("tree");
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree))?;
        let boot = tree.join("boot");
        let mut image = None;
        let mut config = None;
        for e in fs::read_dir(&boot)
            .map_err(io("cannot list", &boot))?
            .filter_map(|e| e.ok())
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("vmlinuz-") {
                image = Some(e.path());
            } else if name.starts_with("config-") {
                config = Some(e.path());
            }
        }
        let image = image.ok_or_else(|| KernelError::Provision {
            cmd: format!("dpkg-deb -x {}", deb.display()),
            reason: "the package has no boot/vmlinuz-*".into(),
        })?;
        check_bzimage(&image)?;
        let staged = work.join("staged");
        fs::create_dir_all(&staged).map_err(io("cannot create", &staged))?;
        fs::rename(&image, staged.join("vmlinuz")).map_err(io("cannot move", &image))?;
        if let Some(config) = config {
            fs::rename(&config, staged.join("config")).map_err(io("cannot move", &config))?;
        }
        keep_modules(&tree, &staged.join("modules"))?;
        // A cache entry from before modules were kept is replaced whole.
        if dest.exists() {
            let _ = fs::remove_dir_all(&dest);
        }
        fs::rename(&staged, &dest).map_err(io("cannot move into place", &dest))
    })();
    let _ = fs::remove_dir_all(&work);
    match result {
        // Another process may have won the race to the same destination.
        Err(_) if dest.join("vmlinuz").is_file() => Ok(()),
        other => other,
    }
}

/// Copies [`KEPT_MODULES`] from the unpacked package into `out/lib/modules/<version>/...`
/// (Debian 13 ships them under usr/lib/modules, xz-compressed: they are decompressed, so the
/// guest loads a plain .ko). A package without them (another kernel flavour) keeps none, which
/// the kernel-module probe reports as skipped.
fn keep_modules(tree: &Path, out: &Path) -> Result<(), KernelError> {
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| KernelError::Io { what, path, source }
    };
    fs::create_dir_all(out).map_err(io("cannot create", out))?;
    let list = out.join(KEPT_LIST);
    fs::write(&list, kept_list()).map_err(io("cannot write", &list))?;
    for modules in [tree.join("lib/modules"), tree.join("usr/lib/modules")] {
        let Ok(versions) = fs::read_dir(&modules) else {
            continue;
        };
        for version in versions.filter_map(|e| e.ok()) {
            for rel in KEPT_MODULES {
                let to = out.join("lib/modules").join(version.file_name()).join(rel);
                let from = version.path().join(rel);
                let mk_parent = |to: &Path| match to.parent() {
                    Some(parent) => fs::create_dir_all(parent).map_err(io("cannot create", parent)),
                    None => Ok(()),
                };
                if from.is_file() {
                    mk_parent(&to)?;
                    fs::copy(&from, &to).map_err(io("cannot copy", &from))?;
                    continue;
                }
                for (ext, tool) in [("xz", "xz"), ("zst", "zstd")] {
                    let packed = version.path().join(format!("{rel}.{ext}"));
                    if !packed.is_file() {
                        continue;
                    }
                    mk_parent(&to)?;
                    let out = Command::new(tool).arg("-dc").arg(&packed).output();
                    match out {
                        Ok(o) if o.status.success() => {
                            fs::write(&to, &o.stdout).map_err(io("cannot write", &to))?
                        }
                        // No decompressor here: the module is left out (the probe is skipped).
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_name_from_apt_cache_output() {
        let out = "linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-56-cloud-amd64\n";
        assert_eq!(
            package_from_depends(out).as_deref(),
            Some("linux-image-6.1.0-56-cloud-amd64-unsigned")
        );
        assert_eq!(package_from_depends("nothing here"), None);
    }

    #[test]
    fn mirror_from_one_line_and_deb822_sources() {
        let deb822 = "Types: deb\n# http://x/archive/debian/2025\nURIs: http://mirror.example/debian\nSuites: bookworm\n";
        assert_eq!(
            mirror_in(deb822).as_deref(),
            Some("http://mirror.example/debian")
        );
        let list = "deb [arch=amd64] https://m.example/debian/ bookworm main\ndeb http://m.example/debian-security bookworm-security main\n";
        assert_eq!(mirror_in(list).as_deref(), Some("https://m.example/debian"));
        assert_eq!(mirror_in("deb http://m.example/ubuntu jammy main\n"), None);
    }

    #[test]
    fn unknown_kernel_names_fail_before_any_download() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve(Path::new("debian-14"), dir.path()).unwrap_err();
        assert!(matches!(err, KernelError::UnknownName(ref n) if n == "debian-14"));
        let line = err.to_string();
        assert!(line.contains("debian-12, debian-13"), "{line}");
        assert!(!line.contains('\n'));
        // A path is a path: a missing file says so.
        assert!(matches!(
            resolve(&dir.path().join("vmlinuz"), dir.path()),
            Err(KernelError::Missing(_))
        ));
        // Nothing was fetched or written for the bad name.
        assert!(!dir.path().join("apt").exists());
    }

    #[test]
    fn a_remembered_release_is_used_without_apt() {
        let dir = tempfile::tempdir().unwrap();
        let k = dir.path().join("kernel");
        let pkg = k.join("linux-image-x");
        fs::create_dir_all(pkg.join("modules")).unwrap();
        fs::write(pkg.join("vmlinuz"), b"x").unwrap();
        // A cache made for today's list of kept modules (a changed list unpacks it again).
        fs::write(pkg.join("modules").join(KEPT_LIST), kept_list()).unwrap();
        fs::write(k.join("debian-13"), "linux-image-x\n").unwrap();
        let kernel = resolve(Path::new("debian-13"), dir.path()).unwrap();
        assert_eq!(kernel.image, pkg.join("vmlinuz"));
        // The pre-name cache file still serves the default release.
        fs::write(k.join("default"), "linux-image-x").unwrap();
        assert_eq!(
            provision_default(dir.path()).unwrap().image,
            pkg.join("vmlinuz")
        );
    }

    #[test]
    fn config_check_names_what_is_missing() {
        let full: String = REQUIRED_OPTIONS
            .iter()
            .map(|(o, _)| format!("{o}=y\n"))
            .collect();
        assert!(missing_options(&full).is_empty());
        let partial = full.replace("CONFIG_USER_NS=y", "# CONFIG_USER_NS is not set");
        let partial = partial.replace("CONFIG_MEMCG=y", "CONFIG_MEMCG=m");
        let missing = missing_options(&partial);
        assert_eq!(missing.len(), 2, "{missing:?}");
        assert!(missing[0].contains("CONFIG_MEMCG"));
        assert!(missing[1].contains("CONFIG_USER_NS"));
    }

    #[test]
    fn a_text_file_is_not_a_kernel() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vmlinuz-x");
        fs::write(&p, vec![b'a'; 4096]).unwrap();
        assert!(matches!(
            Kernel::from_path(&p),
            Err(KernelError::NotBzImage(_))
        ));
        assert!(matches!(
            Kernel::from_path(&dir.path().join("nope")),
            Err(KernelError::Missing(_))
        ));
    }
}
