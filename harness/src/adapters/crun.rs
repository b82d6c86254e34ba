//! crun as the sandbox, with an OCI bundle we generate: what `docker run` would ask of it by
//! default (namespaces pid, network, ipc, uts, mount, cgroup; Docker's 14 default capabilities;
//! Docker's seccomp profile resolved for those capabilities; masked and read-only /proc and /sys
//! paths; the device allowlist), with a read-only bind of the guest's `/` as the root filesystem
//! and a tmpfs over /srv so the outside's world is not part of the "image".

use super::{launch, Adapter};
use crate::model::ProfileInfo;
use breakout_attacks::{LaunchRequest, Launched, Launcher, Layer};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub const BINARY: &str = "/usr/bin/crun";

/// Docker's seccomp profile, the same file our `docker-default` profile loads.
const DOCKER_SECCOMP: &str = include_str!("../../../profiles/seccomp/docker-default.json");

/// Docker's default capability set (moby oci/caps/defaults.go).
pub const DOCKER_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Docker's masked paths (moby oci/defaults.go).
const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SeccompConvertError {
    #[error("docker seccomp profile: {0}")]
    Malformed(String),
}

/// Docker's seccomp JSON resolved into OCI `linux.seccomp` for x86_64 and the kept
/// capabilities, the way dockerd does: a rule applies when its `includes` hold (capabilities
/// kept, native arch listed) and its `excludes` do not.
pub fn oci_seccomp(docker: &Value, kept_caps: &[&str]) -> Result<Value, SeccompConvertError> {
    let bad = |what: &str| SeccompConvertError::Malformed(what.to_string());
    let default_action = docker
        .get("defaultAction")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("missing string `defaultAction`"))?;
    let rules = docker
        .get("syscalls")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("missing array `syscalls`"))?;
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let native = "amd64";
    let mut out_rules = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let includes = rule.get("includes");
        let excludes = rule.get("excludes");
        let inc_caps = strings(includes.and_then(|v| v.get("caps")));
        let inc_arches = strings(includes.and_then(|v| v.get("arches")));
        let exc_caps = strings(excludes.and_then(|v| v.get("caps")));
        let exc_arches = strings(excludes.and_then(|v| v.get("arches")));
        let applies = inc_caps.iter().all(|c| kept_caps.contains(&c.as_str()))
            && (inc_arches.is_empty() || inc_arches.iter().any(|a| a == native))
            && !exc_caps.iter().any(|c| kept_caps.contains(&c.as_str()))
            && !exc_arches.iter().any(|a| a == native);
        if !applies {
            continue;
        }
        let names = rule.get("names").and_then(Value::as_array).ok_or_else(|| {
            SeccompConvertError::Malformed(format!("syscalls[{i}]: missing `names`"))
        })?;
        let action = rule.get("action").and_then(Value::as_str).ok_or_else(|| {
            SeccompConvertError::Malformed(format!("syscalls[{i}]: missing `action`"))
        })?;
        let mut out = json!({ "names": names, "action": action });
        if let Some(errno) = rule.get("errnoRet") {
            out["errnoRet"] = errno.clone();
        }
        if let Some(args) = rule.get("args").filter(|a| !a.is_null()) {
            out["args"] = args.clone();
        }
        out_rules.push(out);
    }
    let mut seccomp = json!({
        "defaultAction": default_action,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": out_rules,
    });
    if let Some(errno) = docker.get("defaultErrnoRet") {
        seccomp["defaultErrnoRet"] = errno.clone();
    }
    Ok(seccomp)
}

/// Whether an OCI seccomp filter denies `syscall` whatever its arguments: Some(true) when the
/// default action is not ALLOW and no unconditional ALLOW rule names it, Some(false) when one
/// does, None when only argument-conditional rules name it.
pub fn oci_denies(seccomp: &Value, syscall: &str) -> Option<bool> {
    let allow = "SCMP_ACT_ALLOW";
    let default_allows = seccomp.get("defaultAction").and_then(Value::as_str) == Some(allow);
    let mut conditional = false;
    for rule in seccomp.get("syscalls")?.as_array()? {
        let named = rule
            .get("names")
            .and_then(Value::as_array)
            .is_some_and(|n| n.iter().any(|s| s.as_str() == Some(syscall)));
        if !named {
            continue;
        }
        let has_args = rule
            .get("args")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        if has_args {
            conditional = true;
            continue;
        }
        return Some(rule.get("action").and_then(Value::as_str) != Some(allow));
    }
    if conditional {
        None
    } else {
        Some(!default_allows)
    }
}

/// The OCI seccomp filter the crun adapter installs.
pub fn adapter_seccomp() -> Value {
    let docker: Value = serde_json::from_str(DOCKER_SECCOMP)
        .expect("profiles/seccomp/docker-default.json is valid JSON (checked by a unit test)");
    oci_seccomp(&docker, &DOCKER_CAPS)
        .expect("the embedded Docker profile converts (checked by a unit test)")
}

/// The bundle's config.json for one launch.
pub fn config(payload: &[String], cgroups_path: Option<&str>) -> Value {
    let caps: Vec<&str> = DOCKER_CAPS.to_vec();
    let mut linux = json!({
        "namespaces": [
            {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
            {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
        ],
        "maskedPaths": MASKED_PATHS,
        "readonlyPaths": READONLY_PATHS,
        "seccomp": adapter_seccomp(),
        "resources": {
            // Docker's device allowlist: deny all, then the standard character devices.
            "devices": [
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
                {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
                {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
                {"allow": true, "type": "c", "major": 136, "access": "rwm"}
            ]
        }
    });
    if let Some(path) = cgroups_path {
        linux["cgroupsPath"] = json!(path);
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": payload,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps,
                "inheritable": [], "ambient": []
            },
            "noNewPrivileges": false
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "breakout-crun",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "nodev", "mode=1777"]},
            {"destination": "/srv", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "nodev", "noexec", "mode=755"]}
        ],
        "linux": linux
    })
}

static NEXT_BUNDLE: AtomicU64 = AtomicU64::new(0);

/// A bundle directory: config.json and rootfs/, a read-only bind mount of the guest's `/`.
/// crun cannot use `/` itself as the root (pivot_root to the current root fails with EBUSY), so
/// the launcher binds it onto the bundle's rootfs, non-recursively: the root filesystem's files
/// without the mounts on top (/proc, /sys, /dev, /tmp), which the OCI config mounts afresh.
struct Bundle {
    dir: PathBuf,
    rootfs_mounted: bool,
}

impl Bundle {
    fn create(dir: PathBuf) -> Result<Bundle, String> {
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(&rootfs)
            .map_err(|e| format!("creating the OCI bundle {}: {e}", rootfs.display()))?;
        let mut bundle = Bundle {
            dir,
            rootfs_mounted: false,
        };
        let flags = MsFlags::MS_BIND;
        mount(Some("/"), &rootfs, None::<&str>, flags, None::<&str>)
            .map_err(|e| format!("bind-mounting / onto {}: {e}", rootfs.display()))?;
        bundle.rootfs_mounted = true;
        // Our own propagation, so nothing crun does under it reaches the guest's `/`.
        mount(
            None::<&str>,
            &rootfs,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|e| format!("making {} private: {e}", rootfs.display()))?;
        let ro = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        mount(None::<&str>, &rootfs, None::<&str>, ro, None::<&str>)
            .map_err(|e| format!("remounting {} read-only: {e}", rootfs.display()))?;
        Ok(bundle)
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // Never a recursive removal: rootfs is the guest's `/` while mounted. Each step only
        // removes what it names, and stops when the unmount failed.
        let rootfs = self.dir.join("rootfs");
        if self.rootfs_mounted && umount2(&rootfs, MntFlags::MNT_DETACH).is_err() {
            return;
        }
        let _ = std::fs::remove_dir(&rootfs);
        let _ = std::fs::remove_file(self.dir.join("config.json"));
        let _ = std::fs::remove_dir(&self.dir);
    }
}

pub struct Crun;

impl Adapter for Crun {
    fn name(&self) -> &'static str {
        "crun"
    }

    fn binary(&self) -> &'static Path {
        Path::new(BINARY)
    }

    fn description(&self) -> &'static str {
        "crun with a generated OCI bundle as `docker run` would ask by default: pid, network, ipc, \
uts, mount and cgroup namespaces (no user namespace), root with Docker's 14 default capabilities, \
Docker's seccomp profile, masked and read-only /proc and /sys paths, the device allowlist, a \
read-only bind of / as the root filesystem with /srv hidden; only descriptors 0, 1, 2 passed \
on; no no_new_privs, no limits."
    }

    fn profile_info(&self) -> ProfileInfo {
        ProfileInfo {
            name: self.name().to_string(),
            runtime: "crun".to_string(),
            layers: vec![
                Layer::PidNs,
                Layer::MountNs,
                Layer::NetNs,
                Layer::IpcNs,
                Layer::UtsNs,
                Layer::CgroupNs,
                Layer::Caps,
                Layer::Seccomp,
                Layer::FsHardening,
                // OCI runtimes pass only 0, 1, 2 (and --preserve-fds) to the container.
                Layer::FdHygiene,
            ],
            inferred: true,
        }
    }
}

impl Launcher for Crun {
    fn launch(&self, request: &LaunchRequest) -> Result<Launched, String> {
        let cgroup = launch::LaunchCgroup::create(&super::cgroup_base(request), self.name())
            .map_err(|e| e.to_string())?;
        let n = NEXT_BUNDLE.fetch_add(1, Ordering::Relaxed);
        let id = format!("breakout-{}-{n}", std::process::id());
        let bundle = Bundle::create(std::env::temp_dir().join(&id))?;
        let config = config(&request.argv, cgroup.payload_path_for_oci().as_deref());
        let text = serde_json::to_vec_pretty(&config).map_err(|e| e.to_string())?;
        launch::write_file(&bundle.dir.join("config.json"), &text).map_err(|e| e.to_string())?;
        let argv: Vec<String> = [
            BINARY,
            "run",
            "--bundle",
            &bundle.dir.to_string_lossy(),
            &id,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let launched = launch::run(&argv, request, &cgroup).map_err(|e| e.to_string())?;
        if launched.timed_out {
            // The container was killed through the cgroup, but crun's state for it remains.
            let _ = std::process::Command::new(BINARY)
                .args(["delete", "--force", &id])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
        Ok(launched)
    }
}
