//! fs-hardening (after pivot_root, inside the sandbox's mount namespace): the masked and
//! read-only /proc and /sys paths of runc and crun, a read-only root, and nosuid/nodev on the
//! read-only binds (set by mount.rs when this layer is on).

use crate::config::SandboxConfig;
use crate::layer::Layer;
use crate::step::{cstr, Op, Step};
use nix::mount::MsFlags;

pub(crate) fn steps(cfg: &SandboxConfig) -> Vec<Step> {
    let l = Some(Layer::FsHardening);
    let h = &cfg.fs_hardening;
    let mut s = Vec::new();
    for p in &h.masked_paths {
        s.push(Step::new(
            l,
            format!("mount(\"/dev/null\" or tmpfs, {p:?}) (mask)"),
            Op::MaskPath {
                path: cstr(p.as_str()),
            },
        ));
    }
    for p in &h.readonly_paths {
        // proc is mounted nosuid,nodev,noexec; a remount in a user namespace must keep them.
        let locked = if p.starts_with("/proc") {
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC
        } else {
            MsFlags::empty()
        };
        s.push(Step::new(
            l,
            format!("mount({p:?}, {p:?}, MS_BIND|MS_REMOUNT|MS_RDONLY)"),
            Op::ReadOnlyPath {
                path: cstr(p.as_str()),
                locked,
            },
        ));
    }
    if h.read_only_root {
        let (flags, what) = if cfg.mount.root.is_some() {
            (
                MsFlags::MS_BIND
                    | MsFlags::MS_REMOUNT
                    | MsFlags::MS_RDONLY
                    | MsFlags::MS_NOSUID
                    | MsFlags::MS_NODEV,
                "MS_BIND|MS_REMOUNT|MS_RDONLY|MS_NOSUID|MS_NODEV",
            )
        } else {
            (
                MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                "MS_REMOUNT|MS_RDONLY|MS_NOSUID|MS_NODEV",
            )
        };
        s.push(Step::new(
            l,
            format!("mount(none, \"/\", {what})"),
            Op::Mount {
                src: None,
                target: cstr("/"),
                fstype: None,
                flags,
                data: None,
            },
        ));
    }
    s
}
