//! The OCI config of `docker run`'s defaults, which the short names `crun`, `runc` and `runsc`
//! run (see `oci` for how a config is launched): what `docker run` would ask of a runtime by
//! default (namespaces pid, network, ipc, uts, mount, cgroup; Docker's 14 default capabilities;
//! Docker's seccomp profile resolved for those capabilities; masked and read-only /proc and /sys
//! paths; the device allowlist), with a read-only bind of the guest's `/` as the root filesystem
//! and (added at launch, `oci::for_launch`) a tmpfs over /srv so the outside's world is not part
//! of the "image".

use breakout_runtime::config::{DOCKER_MASKED_PATHS, DOCKER_READONLY_PATHS};
use serde_json::{json, Value};

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
        "maskedPaths": DOCKER_MASKED_PATHS,
        "readonlyPaths": DOCKER_READONLY_PATHS,
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
             "options": ["nosuid", "nodev", "mode=1777"]}
        ],
        "linux": linux
    })
}
