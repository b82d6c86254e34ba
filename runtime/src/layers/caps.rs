//! caps: the bounding set cut to the kept list (first, while CAP_SETPCAP is still held), then
//! effective and permitted = the kept list for a root payload and empty for one the `uid` layer
//! switched to another uid; inheritable and ambient always empty.
//!
//! Why nothing inheritable or ambient (CVE-2022-29162, Docker since 20.10.16, runc 1.1.2, crun
//! 1.4.5): a process holding inheritable capabilities that drops to another uid keeps them and
//! regains them in full from any file whose inheritable bits match. How an unprivileged payload
//! keeps capabilities across execve then: it does not. Docker (`--user` with `--cap-add`), runc and
//! crun leave a non-root process only the bounding set, from which setuid or file-capability
//! binaries may grant (no-new-privs stops that too); a root payload gets its permitted set from
//! the bounding set at execve. We do the same, so `caps.keep` with the `uid` layer on widens only
//! the bounding set.

use crate::layer::Layer;
use crate::step::{Op, Step};
use caps::Capability;
use nix::errno::Errno;
use std::collections::BTreeSet;

/// Capabilities this kernel knows (cap_last_cap), so dropping never hits EINVAL.
fn supported() -> Vec<Capability> {
    let last: u8 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    let mut all: Vec<Capability> = caps::all()
        .into_iter()
        .filter(|c| c.index() <= last)
        .collect();
    all.sort_by_key(|c| c.index());
    all
}

fn keep_list(keep: &BTreeSet<String>) -> Vec<Capability> {
    keep.iter()
        .filter_map(|c| c.parse::<Capability>().ok())
        .collect()
}

/// The kept capabilities this kernel knows as a bit mask (bit N = capability N).
pub(crate) fn mask(keep: &BTreeSet<String>) -> u64 {
    let known = supported();
    keep_list(keep)
        .iter()
        .filter(|c| known.contains(c))
        .fold(0u64, |m, c| m | (1u64 << c.index()))
}

/// Before the uid switch.
pub(crate) fn bounding(keep: &BTreeSet<String>) -> Vec<Step> {
    let keep = keep_list(keep);
    let drop: Vec<Capability> = supported()
        .into_iter()
        .filter(|c| !keep.contains(c))
        .collect();
    vec![Step::new(
        Some(Layer::Caps),
        format!("prctl(PR_CAPBSET_DROP) x{} (bounding set)", drop.len()),
        Op::DropBounding(drop),
    )]
}

/// After the uid switch. `payload_is_root`: the payload runs as (inside) uid 0, so it keeps the
/// list in effective and permitted; any other uid keeps nothing there (see the module comment).
pub(crate) fn sets(keep: &BTreeSet<String>, payload_is_root: bool) -> Vec<Step> {
    let eff_prm = if payload_is_root { mask(keep) } else { 0 };
    let names: Vec<&String> = keep.iter().collect();
    let shown = if payload_is_root {
        format!("{names:?}")
    } else {
        "[]".to_string()
    };
    vec![Step::new(
        Some(Layer::Caps),
        format!("capset(effective, permitted = {shown}, inheritable = []), ambient cleared"),
        Op::SetCaps { eff_prm },
    )]
}

/// Just before execve: read back what `sets` and `bounding` did.
pub(crate) fn verify(keep: &BTreeSet<String>, payload_is_root: bool) -> Step {
    let eff_prm = if payload_is_root { mask(keep) } else { 0 };
    Step::new(
        Some(Layer::Caps),
        format!(
            "capget/PR_CAPBSET_READ/PR_CAP_AMBIENT_IS_SET: effective = permitted = {eff_prm:#x}, \
             inheritable = ambient = 0, bounding = {:#x} (checked before execve)",
            mask(keep)
        ),
        Op::VerifyCaps {
            eff_prm,
            bounding: mask(keep),
        },
    )
}

/// _LINUX_CAPABILITY_VERSION_3: two 32-bit words per set.
const CAP_V3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn join(d: &[CapData; 2], f: impl Fn(&CapData) -> u32) -> u64 {
    u64::from(f(&d[0])) | (u64::from(f(&d[1])) << 32)
}

/// capget of this thread: (effective, permitted, inheritable). The buffers start all ones, so a
/// capget that "succeeds" without writing (a seccomp rule answering 0) reads as every
/// capability, never as the empty sets a drop promises.
pub(crate) fn capget() -> Result<(u64, u64, u64), Errno> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData {
        effective: !0,
        permitted: !0,
        inheritable: !0,
    }; 2];
    // SAFETY: hdr and data are valid for the v3 layout (a header and two data words).
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    })?;
    Ok((
        join(&data, |d| d.effective),
        join(&data, |d| d.permitted),
        join(&data, |d| d.inheritable),
    ))
}

/// capset of this thread: effective = permitted = `eff_prm`, inheritable = `inh`.
pub(crate) fn capset(eff_prm: u64, inh: u64) -> Result<(), Errno> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let word = |m: u64, i: u32| (m >> (32 * i)) as u32;
    let data = [0u32, 1].map(|i| CapData {
        effective: word(eff_prm, i),
        permitted: word(eff_prm, i),
        inheritable: word(inh, i),
    });
    // SAFETY: hdr and data are valid for the v3 layout; the kernel only reads data.
    Errno::result(unsafe {
        libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr())
    })
    .map(drop)
}

/// A per-capability prctl query (PR_CAPBSET_READ, or PR_CAP_AMBIENT with PR_CAP_AMBIENT_IS_SET)
/// over every capability the kernel knows, as a mask. The kernel answers EINVAL just past its
/// last capability; a prctl that never does is not the kernel answering (a seccomp rule returning
/// a constant), which is an error.
pub(crate) fn prctl_mask(query: impl Fn(libc::c_ulong) -> libc::c_long) -> Result<u64, Errno> {
    let mut m = 0u64;
    for cap in 0..64u64 {
        let r = query(cap as libc::c_ulong);
        if r < 0 {
            let e = Errno::last();
            return if e == Errno::EINVAL && cap > 0 {
                Ok(m)
            } else {
                Err(e)
            };
        }
        if r > 0 {
            m |= 1 << cap;
        }
    }
    Err(Errno::ENOTRECOVERABLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_follow_capability_numbers() {
        let keep: BTreeSet<String> = ["CAP_NET_BIND_SERVICE".to_string(), "CAP_CHOWN".to_string()]
            .into_iter()
            .collect();
        assert_eq!(mask(&keep), (1 << 10) | 1);
        assert_eq!(mask(&BTreeSet::new()), 0);
    }

    #[test]
    fn a_non_root_payload_keeps_nothing_but_the_bounding_set() {
        let keep: BTreeSet<String> = ["CAP_NET_BIND_SERVICE".to_string()].into_iter().collect();
        let s = sets(&keep, false);
        assert!(matches!(s[0].op, Op::SetCaps { eff_prm: 0 }));
        let s = sets(&keep, true);
        assert!(matches!(s[0].op, Op::SetCaps { eff_prm: 0x400 }));
        assert!(matches!(
            verify(&keep, false).op,
            Op::VerifyCaps {
                eff_prm: 0,
                bounding: 0x400
            }
        ));
    }

    #[test]
    fn prctl_mask_needs_the_kernels_einval() {
        // A query that always answers 0 (a seccomp rule) is refused, not read as "empty".
        assert_eq!(prctl_mask(|_| 0), Err(Errno::ENOTRECOVERABLE));
    }
}
