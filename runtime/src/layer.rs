//! The isolation layers. The same kebab-case names appear in profiles, on the command line and in
//! every report (see design.md, "The isolation layers").

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One isolation layer of the sandbox. Each can be switched on and off on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    UserNs,
    PidNs,
    MountNs,
    NetNs,
    IpcNs,
    UtsNs,
    CgroupNs,
    Uid,
    Caps,
    NoNewPrivs,
    Seccomp,
    CgroupLimits,
    Rlimits,
    FsHardening,
    FdHygiene,
    NewSession,
    Landlock,
}

impl Layer {
    /// Every layer, in the order the child applies them.
    pub const ALL: [Layer; 17] = [
        Layer::UserNs,
        Layer::PidNs,
        Layer::MountNs,
        Layer::NetNs,
        Layer::IpcNs,
        Layer::UtsNs,
        Layer::CgroupNs,
        Layer::Uid,
        Layer::Caps,
        Layer::NoNewPrivs,
        Layer::Seccomp,
        Layer::CgroupLimits,
        Layer::Rlimits,
        Layer::FsHardening,
        Layer::FdHygiene,
        Layer::NewSession,
        Layer::Landlock,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Layer::UserNs => "user-ns",
            Layer::PidNs => "pid-ns",
            Layer::MountNs => "mount-ns",
            Layer::NetNs => "net-ns",
            Layer::IpcNs => "ipc-ns",
            Layer::UtsNs => "uts-ns",
            Layer::CgroupNs => "cgroup-ns",
            Layer::Uid => "uid",
            Layer::Caps => "caps",
            Layer::NoNewPrivs => "no-new-privs",
            Layer::Seccomp => "seccomp",
            Layer::CgroupLimits => "cgroup-limits",
            Layer::Rlimits => "rlimits",
            Layer::FsHardening => "fs-hardening",
            Layer::FdHygiene => "fd-hygiene",
            Layer::NewSession => "new-session",
            Layer::Landlock => "landlock",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The layers that must also be on for `layer` to work. Empty for all but one: every layer was
/// built to work alone.
///
/// - `fs-hardening` needs `mount-ns`: masking /proc paths and remounting read-only outside a
///   private mount namespace would change the host's own mounts.
pub fn requires(layer: Layer) -> &'static [Layer] {
    match layer {
        Layer::FsHardening => &[Layer::MountNs],
        _ => &[],
    }
}

/// Why `layer` needs `needs` (for error messages).
pub fn requirement_reason(layer: Layer, needs: Layer) -> &'static str {
    match (layer, needs) {
        (Layer::FsHardening, Layer::MountNs) => {
            "without a private mount namespace its masks and read-only remounts would change the host's mounts"
        }
        _ => "it depends on it",
    }
}

/// An unknown layer name, with the list of the known ones so the user can fix the typo.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown layer `{0}` (known layers: user-ns, pid-ns, mount-ns, net-ns, ipc-ns, uts-ns, cgroup-ns, uid, caps, no-new-privs, seccomp, cgroup-limits, rlimits, fs-hardening, fd-hygiene, new-session, landlock)")]
pub struct UnknownLayer(pub String);

impl FromStr for Layer {
    type Err = UnknownLayer;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Layer::ALL
            .iter()
            .copied()
            .find(|l| l.name() == s)
            .ok_or_else(|| UnknownLayer(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for layer in Layer::ALL {
            assert_eq!(layer.name().parse::<Layer>(), Ok(layer));
            let json = serde_json::to_string(&layer).unwrap();
            assert_eq!(json, format!("\"{}\"", layer.name()));
        }
        assert!("pid_ns".parse::<Layer>().is_err());
    }
}
