//! The guest kernel: Debian's cloud kernel by default, fetched once with `apt-get download`
//! (no root needed) into the cache and taken out of the .deb; or any bzImage given by path.
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

#[derive(Debug, Error)]
pub enum KernelError {
    #[error("kernel image {0} does not exist")]
    Missing(PathBuf),
    #[error("{0} is not a bzImage (no \"HdrS\" boot header)")]
    NotBzImage(PathBuf),
    #[error("`{cmd}` failed: {reason} (the default kernel comes from `apt-get download {package}`; pass --kernel PATH to use another)", package = META_PACKAGE)]
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
/// files (the block-device probe); it needs no other module.
pub const KEPT_MODULES: &[&str] = &[
    "kernel/drivers/net/dummy.ko",
    "kernel/drivers/block/loop.ko",
];

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
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The unsigned image package the metapackage currently points at, e.g.
/// `linux-image-6.1.0-56-cloud-amd64-unsigned`.
pub fn default_package() -> Result<String, KernelError> {
    if let Ok(pkg) = std::env::var("BREAKOUT_KERNEL_PACKAGE") {
        return Ok(pkg);
    }
    let out = run(Command::new("apt-cache").args(["depends", META_PACKAGE]))?;
    package_from_depends(&out).ok_or_else(|| KernelError::Provision {
        cmd: format!("apt-cache depends {META_PACKAGE}"),
        reason: format!("no linux-image dependency in its output: {}", out.trim()),
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

/// The default kernel, downloaded and unpacked into `cache_dir/kernel/<package>/` once.
pub fn provision_default(cache_dir: &Path) -> Result<Kernel, KernelError> {
    let kernels = cache_dir.join("kernel");
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| KernelError::Io { what, path, source }
    };
    fs::create_dir_all(&kernels).map_err(io("cannot create", &kernels))?;
    // The chosen package is remembered so later runs need no apt-cache call.
    let chosen = kernels.join("default");
    let package = match fs::read_to_string(&chosen) {
        Ok(p)
            if !p.trim().is_empty()
                && kernels.join(p.trim()).join("vmlinuz").is_file()
                && kernels.join(p.trim()).join("modules").is_dir()
                && fs::read_to_string(kernels.join(p.trim()).join("modules").join(KEPT_LIST))
                    .is_ok_and(|k| k == kept_list()) =>
        {
            p.trim().to_string()
        }
        _ => {
            let p = default_package()?;
            download(&kernels, &p)?;
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

fn download(kernels: &Path, package: &str) -> Result<(), KernelError> {
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
        run(Command::new("apt-get")
            .args(["download", "-q", package])
            .current_dir(&work))?;
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

/// Copies [`KEPT_MODULES`] from the unpacked package into `out/lib/modules/<version>/...`.
/// A package without them (another kernel flavour) keeps none, which the kernel-module probe
/// reports as skipped.
fn keep_modules(tree: &Path, out: &Path) -> Result<(), KernelError> {
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| KernelError::Io { what, path, source }
    };
    fs::create_dir_all(out).map_err(io("cannot create", out))?;
    let list = out.join(KEPT_LIST);
    fs::write(&list, kept_list()).map_err(io("cannot write", &list))?;
    let modules = tree.join("lib/modules");
    let Ok(versions) = fs::read_dir(&modules) else {
        return Ok(());
    };
    for version in versions.filter_map(|e| e.ok()) {
        for rel in KEPT_MODULES {
            let from = version.path().join(rel);
            if from.is_file() {
                let to = out.join("lib/modules").join(version.file_name()).join(rel);
                if let Some(parent) = to.parent() {
                    fs::create_dir_all(parent).map_err(io("cannot create", parent))?;
                }
                fs::copy(&from, &to).map_err(io("cannot copy", &from))?;
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
