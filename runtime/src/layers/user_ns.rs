//! user-ns: a new user namespace with id maps that keep the uid convention: with the `uid` layer
//! on the payload is outside uid/gid 1000 (inside 1000 maps to outside 1000), with it off the
//! payload is inside root mapped to outside root. Rootless: the unprivileged process maps only
//! itself (inside 0 = outside 1000), writing its own maps as any user may.

use crate::config::SandboxConfig;
use crate::layer::Layer;
use crate::step::{cstr, Op, Step};
use nix::sched::CloneFlags;

/// The id maps and the inside ids the `uid` layer switches to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdPlan {
    pub uid_map: String,
    pub gid_map: String,
    /// Inside uid/gid that correspond to the outside `user` ids.
    pub inside_uid: u32,
    pub inside_gid: u32,
    /// The child writes its own maps (rootless); otherwise the parent writes them.
    pub self_map: bool,
}

pub fn id_plan(cfg: &SandboxConfig) -> IdPlan {
    let (u, g) = (cfg.user.uid, cfg.user.gid);
    if cfg.rootless {
        return IdPlan {
            uid_map: format!("0 {u} 1\n"),
            gid_map: format!("0 {g} 1\n"),
            inside_uid: 0,
            inside_gid: 0,
            self_map: true,
        };
    }
    let uid_map = if cfg.enabled(Layer::Uid) && u != 0 {
        format!("0 0 1\n{u} {u} 1\n")
    } else {
        "0 0 1\n".to_string()
    };
    let gid_map = if cfg.enabled(Layer::Uid) && g != 0 {
        format!("0 0 1\n{g} {g} 1\n")
    } else {
        "0 0 1\n".to_string()
    };
    IdPlan {
        uid_map,
        gid_map,
        inside_uid: u,
        inside_gid: g,
        self_map: false,
    }
}

/// As [`id_plan`], but a rootless sandbox started by a non-root user maps that user's own ids
/// (it cannot become anyone else).
pub fn id_plan_for_caller(cfg: &SandboxConfig) -> IdPlan {
    let euid = nix::unistd::geteuid();
    if cfg.rootless && !euid.is_root() {
        let mut c = cfg.clone();
        c.user.uid = euid.as_raw();
        c.user.gid = nix::unistd::getegid().as_raw();
        return id_plan(&c);
    }
    id_plan(cfg)
}

pub(crate) fn steps(ids: &IdPlan) -> Vec<Step> {
    let l = Some(Layer::UserNs);
    let mut s = vec![Step::new(
        l,
        "unshare(CLONE_NEWUSER)",
        Op::Unshare(CloneFlags::CLONE_NEWUSER),
    )];
    if ids.self_map {
        for (file, data) in [
            ("setgroups", "deny\n".to_string()),
            ("uid_map", ids.uid_map.clone()),
            ("gid_map", ids.gid_map.clone()),
        ] {
            let path = format!("/proc/self/{file}");
            s.push(Step::new(
                l,
                format!("write({path}, {:?})", data.trim_end()),
                Op::WriteFile {
                    path: cstr(path),
                    data: data.into_bytes(),
                },
            ));
        }
    } else {
        s.push(Step::new(
            l,
            "id maps written by the parent",
            Op::AwaitIdMaps,
        ));
    }
    s
}

/// Parent side: write the child's maps (setgroups denied first, as the kernel requires for an
/// unprivileged gid map and as the uid layer promises).
pub(crate) fn write_maps(pid: libc::pid_t, ids: &IdPlan) -> Result<(), (String, std::io::Error)> {
    for (file, data) in [
        ("setgroups", "deny\n"),
        ("uid_map", ids.uid_map.as_str()),
        ("gid_map", ids.gid_map.as_str()),
    ] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, data).map_err(|e| (path, e))?;
    }
    Ok(())
}
