//! The environment the verdicts depend on, read in the guest: kernel, CPU vulnerabilities and
//! mitigations, active LSMs, and the sysctls that change outcomes.

use crate::model::Environment;
use std::collections::BTreeMap;
use std::path::Path;

/// The sysctls that change probe outcomes, by the name reports show, with their /proc/sys path.
pub const SYSCTLS: [(&str, &str); 10] = [
    ("kernel.kptr_restrict", "kernel/kptr_restrict"),
    ("kernel.dmesg_restrict", "kernel/dmesg_restrict"),
    ("kernel.perf_event_paranoid", "kernel/perf_event_paranoid"),
    ("kernel.yama.ptrace_scope", "kernel/yama/ptrace_scope"),
    (
        "kernel.unprivileged_bpf_disabled",
        "kernel/unprivileged_bpf_disabled",
    ),
    ("vm.unprivileged_userfaultfd", "vm/unprivileged_userfaultfd"),
    ("kernel.io_uring_disabled", "kernel/io_uring_disabled"),
    ("user.max_user_namespaces", "user/max_user_namespaces"),
    (
        "kernel.unprivileged_userns_clone",
        "kernel/unprivileged_userns_clone",
    ),
    ("dev.tty.legacy_tiocsti", "dev/tty/legacy_tiocsti"),
];

/// Read the environment under `proc_root` (/proc) and `sys_root` (/sys). A knob the kernel lacks
/// reads as "absent"; the LSM list as empty with "lsm" "unreadable" when securityfs is missing.
pub fn read(proc_root: &Path, sys_root: &Path, accel: &str) -> Environment {
    let uname = nix::sys::utsname::uname().ok();
    let kernel = uname
        .as_ref()
        .map(|u| {
            format!(
                "{} {} {}",
                u.sysname().to_string_lossy(),
                u.release().to_string_lossy(),
                u.version().to_string_lossy()
            )
        })
        .unwrap_or_else(|| "unknown (uname failed)".to_string());

    let mut vulnerabilities = BTreeMap::new();
    let vuln_dir = sys_root.join("devices/system/cpu/vulnerabilities");
    if let Ok(entries) = std::fs::read_dir(&vuln_dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let value = std::fs::read_to_string(entry.path())
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|e| format!("unreadable: {e}"));
            vulnerabilities.insert(name, value);
        }
    }

    let lsms = std::fs::read_to_string(sys_root.join("kernel/security/lsm"))
        .map(|s| {
            s.trim()
                .split(',')
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();

    let mut sysctls = BTreeMap::new();
    for (name, rel) in SYSCTLS {
        let value = std::fs::read_to_string(proc_root.join("sys").join(rel))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "absent".to_string());
        sysctls.insert(name.to_string(), value);
    }

    Environment {
        kernel_release: crate::model::release_of(&kernel),
        kernel,
        arch: std::env::consts::ARCH.to_string(),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        accel: accel.to_string(),
        vulnerabilities,
        lsms,
        sysctls,
        external_probes: Vec::new(),
    }
}

/// Make /sys/kernel/security readable (the guest's init does not mount securityfs).
pub fn mount_securityfs() -> Result<(), nix::Error> {
    let target = Path::new("/sys/kernel/security");
    if target.join("lsm").exists() {
        return Ok(());
    }
    nix::mount::mount(
        Some("securityfs"),
        target,
        Some("securityfs"),
        nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV
            | nix::mount::MsFlags::MS_NOEXEC,
        None::<&str>,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_knobs_and_marks_missing_ones_absent() {
        let dir = tempfile::tempdir().unwrap();
        let proc_root = dir.path().join("proc");
        let sys_root = dir.path().join("sys");
        std::fs::create_dir_all(proc_root.join("sys/kernel/yama")).unwrap();
        std::fs::write(proc_root.join("sys/kernel/yama/ptrace_scope"), "1\n").unwrap();
        std::fs::create_dir_all(sys_root.join("devices/system/cpu/vulnerabilities")).unwrap();
        std::fs::write(
            sys_root.join("devices/system/cpu/vulnerabilities/meltdown"),
            "Not affected\n",
        )
        .unwrap();
        std::fs::create_dir_all(sys_root.join("kernel/security")).unwrap();
        std::fs::write(
            sys_root.join("kernel/security/lsm"),
            "lockdown,capability,yama",
        )
        .unwrap();

        let env = read(&proc_root, &sys_root, "tcg");
        assert_eq!(env.sysctls["kernel.yama.ptrace_scope"], "1");
        assert_eq!(env.sysctls["kernel.kptr_restrict"], "absent");
        assert_eq!(env.sysctls.len(), SYSCTLS.len());
        assert_eq!(env.vulnerabilities["meltdown"], "Not affected");
        assert_eq!(env.lsms, vec!["lockdown", "capability", "yama"]);
        assert_eq!(env.accel, "tcg");
        assert!(env.kernel.starts_with("Linux "), "{}", env.kernel);
    }
}
