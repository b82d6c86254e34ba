//! bubblewrap as the sandbox: `--unshare-all --die-with-parent --new-session` with a root made
//! of read-only binds of the system directories, as its manual's examples do. Started as root
//! (as here), bwrap creates a user namespace mapping 0 to 0 and keeps every capability inside
//! it, sets no_new_privs, and passes inherited descriptors on by design.

use super::{launch, Adapter};
use crate::model::ProfileInfo;
use breakout_attacks::{LaunchRequest, Launched, Launcher, Layer};
use std::path::Path;

pub const BINARY: &str = "/usr/bin/bwrap";

/// System directories bound read-only into the sandbox root (each only if it exists).
const RO_BINDS: [&str; 6] = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc"];

pub struct Bwrap;

impl Bwrap {
    /// The command line for one launch.
    pub fn argv(&self, payload: &[String]) -> Vec<String> {
        let mut argv: Vec<String> = [
            BINARY,
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for dir in RO_BINDS {
            argv.extend([
                "--ro-bind-try".to_string(),
                dir.to_string(),
                dir.to_string(),
            ]);
        }
        for arg in ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--"] {
            argv.push(arg.to_string());
        }
        argv.extend(payload.iter().cloned());
        argv
    }
}

impl Adapter for Bwrap {
    fn name(&self) -> &'static str {
        "bwrap"
    }

    fn binary(&self) -> &'static Path {
        Path::new(BINARY)
    }

    fn description(&self) -> &'static str {
        "bubblewrap --unshare-all --die-with-parent --new-session, root of read-only binds of \
/usr /bin /sbin /lib /lib64 /etc, fresh /proc, /dev and /tmp. As root it keeps all capabilities \
inside its user namespace (uid 0 mapped to 0), sets no_new_privs, makes /proc/sys read-only but \
masks nothing else, and passes inherited descriptors on; no seccomp, no cgroup or rlimits."
    }

    fn profile_info(&self) -> ProfileInfo {
        ProfileInfo {
            name: self.name().to_string(),
            runtime: "bwrap".to_string(),
            layers: vec![
                Layer::UserNs,
                Layer::PidNs,
                Layer::MountNs,
                Layer::NetNs,
                Layer::IpcNs,
                Layer::UtsNs,
                Layer::CgroupNs,
                Layer::NoNewPrivs,
                Layer::FsHardening,
                Layer::NewSession,
            ],
            inferred: true,
        }
    }
}

impl Launcher for Bwrap {
    fn launch(&self, request: &LaunchRequest) -> Result<Launched, String> {
        let cgroup = launch::LaunchCgroup::create(&super::cgroup_base(request), self.name())
            .map_err(|e| e.to_string())?;
        launch::run(&self.argv(&request.argv), request, &cgroup).map_err(|e| e.to_string())
    }
}
