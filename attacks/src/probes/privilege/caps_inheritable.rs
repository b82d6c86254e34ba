//! caps-inheritable: gain capabilities across exec from a file's capability set.

use crate::kit::{busybox, judge_by_secret, parse_or_report, read_step};
use crate::world::{Planted, World, SANDBOX_GID, SANDBOX_UID};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use nix::errno::Errno;
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The owner of the secret file: neither root nor the sandbox uid, so only a capability that
/// overrides file permissions (CAP_DAC_READ_SEARCH, CAP_DAC_OVERRIDE) reads it.
const OWNER_ID: u32 = 2000;

/// VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE.
const VFS_CAP_MAGIC_V2_EFFECTIVE: u32 = 0x0200_0001;
const CAP_DAC_READ_SEARCH: u32 = 2;

static META: ProbeMeta = ProbeMeta {
    id: "caps-inheritable",
    title: "Gain capabilities across exec from a file's capability set",
    technique: "A file can carry capabilities in its security.capability attribute; exec grants \
        them to any caller, up to the caller's bounding set, unless no_new_privs is set or the \
        file sits on a nosuid mount. An unprivileged process in a sandbox that left the \
        bounding set full therefore regains capabilities by running such a file (the CVE-2022-\
        29162 family: runtimes that left inheritable or bounding sets full). The inside drops \
        to uid 1000 and runs a 'cat' the outside marked cap_dac_read_search+ep on a file only \
        uid 2000 may read.",
    oracle: "The inside reports the secret of a file mode 0400 owned by uid 2000, which neither \
        root without capabilities nor uid 1000 can read.",
    layers: &[
        Layer::Caps,
        Layer::NoNewPrivs,
        Layer::FsHardening,
        Layer::UserNs,
        Layer::Seccomp,
    ],
    references: &[
        "CVE-2022-29162 (runc: inheritable capabilities not emptied)",
        "capabilities(7): transformation of capabilities during execve",
    ],
    class: ProbeClass::Plain,
};

pub struct CapsInheritable;

struct State {
    _dir: Planted,
    secret: String,
}

/// The v2 security.capability value: `cap` permitted and effective, nothing inheritable.
fn file_caps(cap: u32) -> [u8; 20] {
    let mut v = [0u8; 20];
    v[0..4].copy_from_slice(&VFS_CAP_MAGIC_V2_EFFECTIVE.to_le_bytes());
    v[4..8].copy_from_slice(&(1u32 << cap).to_le_bytes());
    v
}

fn set_file_caps(path: &Path, value: &[u8]) -> Result<(), Errno> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: c and the attribute name are NUL-terminated; value is valid for value.len() bytes.
    let r = unsafe {
        libc::setxattr(
            c.as_ptr(),
            c"security.capability".as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(r).map(drop)
}

impl Probe for CapsInheritable {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let id = META.id;
        let bb =
            busybox().ok_or_else(|| ProbeError::unsupported(id, "no static busybox in /bin"))?;
        let secret = world.fresh_secret().map_err(ProbeError::world(id))?;
        let dir = world
            .shared_scratch_dir("caps-inheritable")
            .map_err(ProbeError::world(id))?;
        let helper = dir.path().join("cat");
        fs::copy(&bb, &helper).map_err(|e| ProbeError::arrange(id, "copying busybox", e))?;
        fs::set_permissions(&helper, fs::Permissions::from_mode(0o755))
            .map_err(|e| ProbeError::arrange(id, "chmod 0755 of the helper", e))?;
        set_file_caps(&helper, &file_caps(CAP_DAC_READ_SEARCH)).map_err(|e| {
            ProbeError::arrange(id, "setxattr(security.capability) on the helper", e.into())
        })?;
        let file = dir.path().join("secret");
        crate::world::write_new_file(&file, &secret, 0o400).map_err(ProbeError::world(id))?;
        std::os::unix::fs::chown(&file, Some(OWNER_ID), Some(OWNER_ID))
            .map_err(|e| ProbeError::arrange(id, "chown of the secret to uid 2000", e))?;
        Ok(Arrangement::new(
            vec![
                kv("helper", helper.display()),
                kv("secret", file.display()),
                kv("uid", SANDBOX_UID),
                kv("gid", SANDBOX_GID),
            ],
            State { _dir: dir, secret },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        if let Some((helper, secret, uid, gid)) = parse_or_report(&mut steps, args, |a| {
            Ok((
                PathBuf::from(a.str("helper")?),
                PathBuf::from(a.str("secret")?),
                a.get::<u32>("uid")?,
                a.get::<u32>("gid")?,
            ))
        }) {
            attempt(&mut steps, &helper, &secret, uid, gid);
        }
        steps.finish()
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        judge_by_secret(
            &arrangement,
            run,
            META.id,
            |s: &State| &s.secret,
            "the uid-2000 file read with file capabilities",
        )
    }
}

fn attempt(steps: &mut Steps, helper: &Path, secret: &Path, uid: u32, gid: u32) {
    if let Ok(status) = fs::read_to_string("/proc/self/status") {
        let caps: Vec<&str> = status.lines().filter(|l| l.starts_with("Cap")).collect();
        steps.note("capabilities before", caps.join(" "));
    }
    // Become an ordinary user first (when we are root): what we read after this came from exec.
    if Uid::current().is_root() {
        steps.call("drop supplementary groups", "setgroups([])", || {
            setgroups(&[])
        });
        steps.call(
            "become an ordinary group",
            format!("setresgid({gid})"),
            || {
                let g = Gid::from_raw(gid);
                setresgid(g, g, g)
            },
        );
        steps.call(
            "become an ordinary user",
            format!("setresuid({uid})"),
            || {
                let u = Uid::from_raw(uid);
                setresuid(u, u, u)
            },
        );
    }
    let mut out = String::new();
    let ran = steps.io(
        "run the file-capability helper",
        format!("execve({} {})", helper.display(), secret.display()),
        || {
            let o = Command::new(helper).arg(secret).output()?;
            out = String::from_utf8_lossy(&o.stdout).trim().to_string();
            Ok(o.status.code().unwrap_or(-1))
        },
    );
    if ran.is_some() {
        steps.data(out);
    }
    // For comparison: the same read without the helper's capabilities.
    read_step(steps, "read the file directly", secret);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_value_is_v2_with_effective() {
        let v = file_caps(CAP_DAC_READ_SEARCH);
        assert_eq!(&v[0..4], &[0x01, 0, 0, 0x02]);
        assert_eq!(&v[4..8], &[0x04, 0, 0, 0]);
        assert!(v[8..].iter().all(|&b| b == 0));
    }

    #[test]
    fn bad_arguments_are_reported() {
        let report = CapsInheritable.attempt(&["helper=/x".into(), "secret=/y".into()]);
        assert_eq!(report.steps[0].action, "parse arguments");
        assert!(report.steps[0].data.as_deref().unwrap().contains("uid"));
    }
}
