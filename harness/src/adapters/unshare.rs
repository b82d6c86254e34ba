//! util-linux unshare(1) as the sandbox: every namespace it offers, root mapped into a new user
//! namespace, a fresh /proc. It has no pivot_root (the root directory stays the outside's),
//! no seccomp, no capability bounding, no new session, no descriptor closing.

use super::{launch, Adapter};
use crate::model::ProfileInfo;
use breakout_attacks::{LaunchRequest, Launched, Launcher, Layer};
use std::path::Path;

pub const BINARY: &str = "/usr/bin/unshare";

pub struct Unshare;

impl Unshare {
    pub fn argv(&self, payload: &[String]) -> Vec<String> {
        let mut argv: Vec<String> = [
            BINARY,
            "--user",
            "--map-root-user",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount",
            "--mount-proc",
            "--net",
            "--ipc",
            "--uts",
            "--cgroup",
            "--",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        argv.extend(payload.iter().cloned());
        argv
    }
}

impl Adapter for Unshare {
    fn name(&self) -> &'static str {
        "unshare"
    }

    fn binary(&self) -> &'static Path {
        Path::new(BINARY)
    }

    fn description(&self) -> &'static str {
        "unshare --user --map-root-user --pid --fork --kill-child --mount --mount-proc --net --ipc \
--uts --cgroup: new namespaces only. The mount namespace has no pivot_root, so the outside's \
files stay reachable (not counted as mount-ns); root keeps its capabilities inside the user \
namespace; no seccomp, no_new_privs, new session or descriptor closing."
    }

    fn profile_info(&self) -> ProfileInfo {
        ProfileInfo {
            name: self.name().to_string(),
            runtime: "unshare".to_string(),
            layers: vec![
                Layer::UserNs,
                Layer::PidNs,
                Layer::NetNs,
                Layer::IpcNs,
                Layer::UtsNs,
                Layer::CgroupNs,
            ],
            inferred: true,
        }
    }
}

impl Launcher for Unshare {
    fn launch(&self, request: &LaunchRequest) -> Result<Launched, String> {
        let cgroup = launch::LaunchCgroup::create(&super::cgroup_base(request), self.name())
            .map_err(|e| e.to_string())?;
        launch::run(&self.argv(&request.argv), request, &cgroup).map_err(|e| e.to_string())
    }
}
