//! `podman:'FLAGS'`: `podman run --rootfs /` with the user's flags and podman's own defaults
//! (seccomp profile, capabilities, masked paths, device cgroup), no image registry. Items: each
//! of the user's flags (a flag with the words after it that are no flags), and each default,
//! ablated by the flag that turns it off (`--security-opt=seccomp=unconfined`, `--cap-add=all`,
//! `--pid=host`, ...).

use super::{launch, registry, Item};
use breakout_attacks::{LaunchRequest, Launched, Launcher, Layer};
use std::collections::BTreeSet;

/// Podman's defaults as items, with the flags that switch each off.
const DEFAULTS: [(&str, Layer, &[&str]); 8] = [
    (
        "podman default: seccomp profile",
        Layer::Seccomp,
        &["--security-opt=seccomp=unconfined"],
    ),
    (
        "podman default: capabilities",
        Layer::Caps,
        &["--cap-add=all"],
    ),
    (
        "podman default: pid namespace",
        Layer::PidNs,
        &["--pid=host"],
    ),
    (
        "podman default: network namespace",
        Layer::NetNs,
        &["--network=host"],
    ),
    (
        "podman default: ipc namespace",
        Layer::IpcNs,
        &["--ipc=host"],
    ),
    (
        "podman default: uts namespace",
        Layer::UtsNs,
        &["--uts=host"],
    ),
    (
        "podman default: masked paths",
        Layer::FsHardening,
        &["--security-opt=unmask=ALL"],
    ),
    (
        "podman default: device cgroup",
        Layer::FsHardening,
        &[
            "--device-cgroup-rule=b *:* rwm",
            "--device-cgroup-rule=c *:* rwm",
        ],
    ),
];

/// A flag with its words.
fn groups(flags: &[String]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    for word in flags {
        match out.last_mut() {
            Some(group) if !word.starts_with('-') => group.push(word.clone()),
            _ => out.push(vec![word.clone()]),
        }
    }
    out
}

pub fn items(flags: &[String]) -> Vec<Item> {
    let mut items: Vec<Item> = groups(flags)
        .into_iter()
        .map(|g| Item::ablatable(g.join(" "), None))
        .collect();
    items.extend(
        DEFAULTS
            .iter()
            .map(|(name, layer, _)| Item::ablatable(*name, Some(*layer))),
    );
    items
}

pub fn without(flags: &[String], names: &BTreeSet<String>) -> Vec<String> {
    let mut out: Vec<String> = groups(flags)
        .into_iter()
        .filter(|g| !names.contains(&g.join(" ")))
        .flatten()
        .collect();
    for (name, _, off) in DEFAULTS {
        if names.contains(name) {
            out.extend(off.iter().map(|s| s.to_string()));
        }
    }
    out
}

/// The command line for one launch.
pub fn argv(flags: &[String], payload: &[String]) -> Vec<String> {
    let mut argv: Vec<String> = [
        registry::PODMAN_BINARY,
        "--cgroup-manager=cgroupfs",
        "--events-backend=none",
        "run",
        "--rm",
        "--tmpfs=/srv",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    argv.extend(flags.iter().cloned());
    argv.extend(["--rootfs".to_string(), "/".to_string()]);
    argv.extend(payload.iter().cloned());
    argv
}

pub struct PodmanLauncher {
    pub flags: Vec<String>,
}

impl Launcher for PodmanLauncher {
    fn launch(&self, request: &LaunchRequest) -> Result<Launched, String> {
        let cgroup = launch::LaunchCgroup::create(&super::cgroup_base(request), "podman")
            .map_err(|e| e.to_string())?;
        launch::run(&argv(&self.flags, &request.argv), request, &cgroup).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_defaults_are_items() {
        let flags: Vec<String> = ["--read-only", "--cap-drop", "ALL", "--pids-limit=64"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let names: Vec<String> = items(&flags).into_iter().map(|i| i.name).collect();
        assert_eq!(
            &names[..3],
            ["--read-only", "--cap-drop ALL", "--pids-limit=64"]
        );
        let out = without(
            &flags,
            &BTreeSet::from([
                "--cap-drop ALL".to_string(),
                "podman default: pid namespace".to_string(),
            ]),
        );
        assert_eq!(out, ["--read-only", "--pids-limit=64", "--pid=host"]);
        let argv = argv(&out, &["/usr/bin/breakout-probe".to_string()]);
        assert_eq!(
            &argv[argv.len() - 3..],
            ["--rootfs", "/", "/usr/bin/breakout-probe"]
        );
    }
}
