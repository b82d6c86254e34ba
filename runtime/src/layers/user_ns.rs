//! user-ns: a new user namespace whose maps hold only the sandbox's own outside range
//! (`[user] base`/`size`, default 100000 + 65536, as podman's subordinate ids and Docker's
//! userns-remap): inside root is outside `base`, the `uid` layer's inside `uid` is outside
//! `base + uid`. No map ever contains host uid 0 or gid 0: the kernel lets a process whose euid
//! is the host's 0 write global sysctls without a capability check, and root-owned files are the
//! owner's to read. Rootless: the unprivileged outside id `base + uid` alone is mapped to inside
//! root, as any user may map itself.
//!
//! The parent writes the maps whenever it can (it is root); only a sandbox started by an
//! unprivileged user maps itself, holding nothing but that user's own resources.

use crate::config::SandboxConfig;
use crate::layer::Layer;
use crate::step::{cstr, Op, Step};
use nix::sched::CloneFlags;
use serde::{Deserialize, Serialize};

/// The id maps and the ids the `uid` layer and `rootless` switch to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdPlan {
    /// /proc/PID/uid_map as written ("inside outside count" lines).
    pub uid_map: String,
    pub gid_map: String,
    /// Inside uid/gid the `uid` layer switches to with user-ns on.
    pub inside_uid: u32,
    pub inside_gid: u32,
    /// The payload's uid/gid as the host sees them when the `uid` layer is on (and rootless's
    /// unprivileged user).
    pub outside_uid: u32,
    pub outside_gid: u32,
    /// The child writes its own maps (rootless started by an unprivileged user); otherwise the
    /// parent writes them.
    #[serde(skip)]
    pub self_map: bool,
}

/// The plan for a runtime started by root.
pub fn id_plan(cfg: &SandboxConfig) -> IdPlan {
    let u = &cfg.user;
    let (ou, og) = (u.outside_uid(), u.outside_gid());
    if cfg.rootless {
        return IdPlan {
            uid_map: format!("0 {ou} 1\n"),
            gid_map: format!("0 {og} 1\n"),
            inside_uid: 0,
            inside_gid: 0,
            outside_uid: ou,
            outside_gid: og,
            self_map: false,
        };
    }
    IdPlan {
        uid_map: format!("0 {} {}\n", u.base, u.size),
        gid_map: format!("0 {} {}\n", u.base, u.size),
        inside_uid: u.uid,
        inside_gid: u.gid,
        outside_uid: ou,
        outside_gid: og,
        self_map: false,
    }
}

/// As [`id_plan`], but a rootless sandbox started by a non-root user maps that user's own ids
/// (it cannot become anyone else) and writes its maps itself (an unprivileged parent cannot open
/// the maps of a child that is not dumpable).
pub fn id_plan_for_caller(cfg: &SandboxConfig) -> IdPlan {
    let euid = nix::unistd::geteuid();
    if cfg.rootless && !euid.is_root() {
        let (ou, og) = (euid.as_raw(), nix::unistd::getegid().as_raw());
        return IdPlan {
            uid_map: format!("0 {ou} 1\n"),
            gid_map: format!("0 {og} 1\n"),
            inside_uid: 0,
            inside_gid: 0,
            outside_uid: ou,
            outside_gid: og,
            self_map: true,
        };
    }
    id_plan(cfg)
}

/// Does any line of a map ("inside outside count") cover outside id 0?
pub fn covers_host_root(map: &str) -> bool {
    map.lines().any(|l| {
        let f: Vec<u64> = l
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        f.len() == 3 && f[1] == 0 && f[2] > 0
    })
}

/// The outside ids a map ("inside outside count" lines) covers, as ranges; a line that does
/// not parse covers every id (the safe reading for sealed_exe's decision).
pub fn outside_ranges(map: &str) -> Vec<std::ops::Range<u64>> {
    map.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<u64> = l
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            match f[..] {
                [_, outside, count] => outside..outside.saturating_add(count),
                _ => 0..u64::MAX,
            }
        })
        .collect()
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
            format!(
                "id maps written by the parent: uid_map {:?}, gid_map {:?}",
                ids.uid_map.trim_end(),
                ids.gid_map.trim_end()
            ),
            Op::AwaitIdMaps,
        ));
        // The creator keeps its ids (the host's root, which the maps leave out: inside it would
        // be the overflow id, and the filesystems mounted in the namespace refuse to create
        // files for it): become inside root, the map's first outside id, as runc and crun do.
        s.push(Step::new(
            l,
            "setresgid(0, 0, 0) (inside root)",
            Op::SetResGid(0),
        ));
        s.push(Step::new(
            l,
            "setresuid(0, 0, 0) (inside root)",
            Op::SetResUid(0),
        ));
    }
    s
}

/// Parent side: write the child's maps (setgroups denied first, as the kernel requires for an
/// unprivileged gid map and as the uid layer promises).
pub(crate) fn write_maps(pid: libc::pid_t, ids: &IdPlan) -> Result<(), (String, std::io::Error)> {
    // The promise, checked where the maps are written whatever built the plan.
    for (file, map) in [("uid_map", &ids.uid_map), ("gid_map", &ids.gid_map)] {
        if covers_host_root(map) {
            return Err((
                format!("/proc/{pid}/{file}"),
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "refusing a map that contains host id 0: {:?}",
                        map.trim_end()
                    ),
                ),
            ));
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_builtin_profile_maps_host_root() {
        for name in crate::config::builtin_names() {
            let p = id_plan(&SandboxConfig::builtin(name).unwrap());
            assert!(!covers_host_root(&p.uid_map), "{name}: {}", p.uid_map);
            assert!(!covers_host_root(&p.gid_map), "{name}: {}", p.gid_map);
        }
    }

    #[test]
    fn range_and_rootless_maps() {
        let strict = id_plan(&SandboxConfig::builtin("strict").unwrap());
        assert_eq!(strict.uid_map, "0 100000 65536\n");
        assert_eq!((strict.inside_uid, strict.outside_uid), (1000, 101000));
        let rootless = id_plan(&SandboxConfig::builtin("rootless").unwrap());
        assert_eq!(rootless.uid_map, "0 101000 1\n");
        assert_eq!((rootless.inside_uid, rootless.outside_uid), (0, 101000));
        assert!(!rootless.self_map, "root writes a rootless sandbox's maps");
    }

    #[test]
    fn map_check_sees_host_root_anywhere() {
        assert!(covers_host_root("0 0 1\n"));
        assert!(covers_host_root("0 100000 10\n1000 0 1\n"));
        assert!(!covers_host_root("0 100000 65536\n"));
    }
}
