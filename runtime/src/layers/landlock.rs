//! landlock: an unprivileged access-control ruleset the payload cannot lift (Landlock LSM).
//!
//! Filesystem: read and execute beneath the sandbox's read-only binds (`mount.binds`, or the whole
//! root when `mount.root` is set), read and write beneath its /tmp and its working directory (when
//! the caller chose one other than `/`), read and write (no ioctl) on the harmless character
//! devices programs expect (/dev/null, zero, full, random, urandom), listing (no file opened)
//! beneath /dev (ttyname(3) finds a terminal by scanning it), and read (no write, no execute)
//! beneath /proc; nothing else. /proc is there because programs read their own
//! status, descriptors and maps there; which processes it shows is pid-ns's business, and a file
//! reached through it (/proc/PID/root/..., /proc/self/fd/N) is checked where it really lies, so
//! the rule opens no road to the outside's files. Writes to /proc (core_pattern,
//! sysrq-trigger) stay refused. Where the
//! kernel's ABI has them: TCP bind and connect denied on every port (ABI 4), connecting to
//! abstract unix sockets and signalling processes outside the sandbox's domain denied (ABI 6).
//!
//! The layer asks for the rights of ABI 6 ([`TARGET_ABI`]) with the crate's best-effort
//! compatibility: on an older kernel it enforces what the kernel has and says so in the evidence
//! (`partial`, with what is missing). A kernel without Landlock is an error before anything
//! forks: the layer is never dropped silently.
//!
//! The ruleset is built in the payload, after pivot_root (the rules name the new root's paths)
//! and after the last mount (a Landlock domain may not mount), and enforced while the payload
//! still holds CAP_SYS_ADMIN in its namespace, so `landlock_restrict_self` needs no
//! no-new-privs: the crate's default of switching it on is turned off (`no_new_privs(false)`),
//! no-new-privs stays the `no-new-privs` layer's job.

use crate::config::SandboxConfig;
use crate::layer::Layer;
use crate::step::{cstr, Op, Step};
use landlock::{
    Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};
use nix::errno::Errno;
use serde::{Deserialize, Serialize};
use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The ABI whose rights this layer asks for (Linux 6.12: filesystem, TCP, scopes).
pub const TARGET_ABI: u32 = 6;

fn target() -> ABI {
    ABI::V6
}

/// The harmless character devices the payload may read and write (never ioctl).
const DEVICES: [&str; 5] = [
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LandlockError {
    /// The kernel has no Landlock at all: the layer cannot be applied.
    #[error("layer landlock: this kernel has no Landlock ({reason}); switch the layer off or boot a kernel with it (e.g. --kernel debian-13)")]
    Unsupported { reason: String },
}

/// How much of the layer the kernel enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Enforcement {
    /// Every right of [`TARGET_ABI`].
    Full,
    /// The kernel's ABI lacks some of them (listed in [`LandlockEvidence::missing`]).
    Partial,
}

/// What the landlock layer could enforce on this kernel (evidence of every launch with it on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandlockEvidence {
    /// The kernel's Landlock ABI version.
    pub abi: u32,
    /// The ABI the layer asks for.
    pub target_abi: u32,
    pub enforcement: Enforcement,
    /// What the kernel's ABI lacks of the target, e.g. "TCP bind and connect (ABI 4)".
    #[serde(default)]
    pub missing: Vec<String>,
}

impl LandlockEvidence {
    /// The evidence for a kernel of this ABI (>= 1).
    pub fn for_abi(abi: u32) -> Self {
        let missing: Vec<String> = [
            (
                2,
                "linking and renaming across directories (ABI 2: refused outright below it)",
            ),
            (3, "truncate (ABI 3)"),
            (4, "TCP bind and connect (ABI 4)"),
            (5, "ioctl on devices (ABI 5)"),
            (6, "abstract unix socket and signal scoping (ABI 6)"),
        ]
        .iter()
        .filter(|(needs, _)| abi < *needs)
        .map(|(_, what)| what.to_string())
        .collect();
        LandlockEvidence {
            abi,
            target_abi: TARGET_ABI,
            enforcement: if missing.is_empty() {
                Enforcement::Full
            } else {
                Enforcement::Partial
            },
            missing,
        }
    }

    /// One line for stderr and reports: "landlock ABI 2: partially enforced (missing: ...)".
    pub fn summary(&self) -> String {
        match self.enforcement {
            Enforcement::Full => format!(
                "landlock ABI {}: fully enforced (every right of ABI {})",
                self.abi, self.target_abi
            ),
            Enforcement::Partial => format!(
                "landlock ABI {}: partially enforced (missing: {})",
                self.abi,
                self.missing.join(", ")
            ),
        }
    }
}

/// The running kernel's Landlock ABI, or why there is none.
pub fn kernel_abi() -> Result<u32, LandlockError> {
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) only returns the
    // ABI version; no memory is passed and no descriptor is created.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32, // LANDLOCK_CREATE_RULESET_VERSION
        )
    };
    if v > 0 {
        return Ok(v as u32);
    }
    let reason = match Errno::last() {
        Errno::EOPNOTSUPP => {
            "built in but not enabled at boot: `landlock` is missing from the lsm= list".to_string()
        }
        Errno::ENOSYS => "not built in (no landlock_create_ruleset system call)".to_string(),
        e => format!("landlock_create_ruleset: {e}"),
    };
    Err(LandlockError::Unsupported { reason })
}

/// What the layer enforces here; an error when the kernel has no Landlock.
pub fn evidence() -> Result<LandlockEvidence, LandlockError> {
    kernel_abi().map(LandlockEvidence::for_abi)
}

/// The prepared rules, applied by the payload (see [`Rules::apply`]).
pub struct Rules {
    list_only: Vec<CString>,
    read_only: Vec<CString>,
    read_exec: Vec<CString>,
    read_write: Vec<CString>,
    devices: Vec<CString>,
}

impl Rules {
    /// The paths of each rule, for tests and messages.
    pub fn read_exec(&self) -> &[CString] {
        &self.read_exec
    }
    pub fn read_write(&self) -> &[CString] {
        &self.read_write
    }

    /// Builds the ruleset and enforces it on the calling process. A path that does not exist in
    /// the sandbox (no /lib64 on this distribution) gets no rule; every other failure is the
    /// step's errno. A kernel that enforced nothing is EOPNOTSUPP, never a silent pass.
    pub(crate) fn apply(&self) -> Result<(), Errno> {
        let abi = target();
        let fs_all = AccessFs::from_all(abi);
        let read_exec = AccessFs::from_read(abi);
        let device: BitFlags<AccessFs> = AccessFs::ReadFile | AccessFs::WriteFile;
        let read_only: BitFlags<AccessFs> = AccessFs::ReadFile | AccessFs::ReadDir;
        let mut ruleset = Ruleset::default()
            .set_compatibility(CompatLevel::BestEffort)
            .handle_access(fs_all)
            .and_then(|r| r.handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp))
            .and_then(|r| r.scope(Scope::from_all(abi)))
            .and_then(|r| r.create())
            .map_err(errno)?
            .no_new_privs(false);
        let list_only: BitFlags<AccessFs> = AccessFs::ReadDir.into();
        let sets = [
            (&self.list_only, list_only),
            (&self.read_only, read_only),
            (&self.read_exec, read_exec),
            (&self.read_write, fs_all),
            (&self.devices, device),
        ];
        for (paths, access) in sets {
            for path in paths {
                let fd = match PathFd::new(Path::new(OsStr::from_bytes(path.as_bytes()))) {
                    Ok(fd) => fd,
                    Err(e) => match errno_of(&e) {
                        Errno::ENOENT => continue,
                        other => return Err(other),
                    },
                };
                ruleset = ruleset
                    .add_rule(PathBeneath::new(fd, access))
                    .map_err(errno)?;
            }
        }
        let status = ruleset.restrict_self().map_err(errno)?;
        if status.ruleset == RulesetStatus::NotEnforced {
            return Err(Errno::EOPNOTSUPP);
        }
        Ok(())
    }
}

fn errno_of(e: &(dyn std::error::Error + 'static)) -> Errno {
    // The crate wraps the io::Error of the failing system call; find it in the source chain.
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(raw) = io.raw_os_error() {
                return Errno::from_raw(raw);
            }
        }
        cur = err.source();
    }
    Errno::EINVAL
}

fn errno(e: landlock::RulesetError) -> Errno {
    errno_of(&e)
}

/// The step of the payload's chain.
pub(crate) fn steps(cfg: &SandboxConfig, cwd: Option<&CString>) -> Vec<Step> {
    let rules = rules(cfg, cwd);
    let shown = |v: &[CString]| {
        v.iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    vec![Step::new(
        Some(Layer::Landlock),
        format!(
            "landlock_restrict_self (ABI {TARGET_ABI} rights; read+exec: {}; read+write: {})",
            shown(&rules.read_exec),
            shown(&rules.read_write)
        ),
        Op::Landlock(Box::new(rules)),
    )]
}

/// The paths of the rules for this configuration, as the payload sees them.
pub fn rules(cfg: &SandboxConfig, cwd: Option<&CString>) -> Rules {
    let own_root = cfg.enabled(Layer::MountNs) && cfg.mount.root.is_some();
    let read_exec = if own_root {
        vec![cstr("/")]
    } else {
        cfg.mount
            .binds
            .iter()
            .map(|p| cstr(p.as_os_str().as_encoded_bytes()))
            .collect()
    };
    let mut read_write = vec![cstr("/tmp")];
    if let Some(cwd) = cwd {
        // The default working directory with mount-ns is "/": a read-write rule there would
        // allow everything.
        if cwd.as_bytes() != b"/" && !read_write.contains(cwd) {
            read_write.push(cwd.clone());
        }
    }
    Rules {
        list_only: vec![cstr("/dev")],
        read_only: vec![cstr("/proc")],
        read_exec,
        read_write,
        devices: DEVICES.iter().map(|d| cstr(*d)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_by_abi() {
        let old = LandlockEvidence::for_abi(2);
        assert_eq!(old.enforcement, Enforcement::Partial);
        assert_eq!(old.missing.len(), 4, "{old:?}");
        assert!(
            old.summary().contains("partially enforced"),
            "{}",
            old.summary()
        );
        assert!(old.summary().contains("TCP bind and connect (ABI 4)"));
        let new = LandlockEvidence::for_abi(6);
        assert_eq!(new.enforcement, Enforcement::Full);
        assert!(new.missing.is_empty());
        assert_eq!(LandlockEvidence::for_abi(9).enforcement, Enforcement::Full);
        assert_eq!(LandlockEvidence::for_abi(1).missing.len(), 5);
    }

    #[test]
    fn rules_follow_the_binds_and_never_open_the_root_for_writing() {
        let mut cfg = SandboxConfig::builtin("strict").unwrap();
        let r = rules(&cfg, Some(&cstr("/")));
        assert!(r.read_exec().contains(&cstr("/usr")));
        assert!(r.read_exec().contains(&cstr("/etc")));
        assert_eq!(r.read_write(), [cstr("/tmp")]);
        let r = rules(&cfg, Some(&cstr("/work")));
        assert_eq!(r.read_write(), [cstr("/tmp"), cstr("/work")]);
        cfg.mount.root = Some("/srv/root".into());
        assert_eq!(rules(&cfg, None).read_exec(), [cstr("/")]);
    }
}
