//! `podman:'FLAGS'`: `podman run --rootfs` (the guest's `/`, read-only) with the user's flags and podman's own defaults
//! (seccomp profile, capabilities, masked paths, device cgroup), no image registry. Items: each
//! of the user's flags (a flag with the words after it that are no flags), and each default,
//! ablated by the flag that turns it off (`--security-opt=seccomp=unconfined`, `--cap-add=all`,
//! `--pid=host`, ...).

use super::{launch, registry, Item};
use breakout_attacks::{LaunchRequest, Launched, Launcher, Layer};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// Podman's defaults as items, with the flags that switch each off.
const DEFAULTS: [(&str, Layer, &[&str]); 8] = [
    (
        "podman default: seccomp profile",
        Layer::Seccomp,
        &["--security-opt=seccomp=unconfined"],
    ),
    (CAPS_ITEM, Layer::Caps, &["--cap-add=all"]),
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

/// podman's default capabilities (containers.conf `default_capabilities`, podman 4.3).
const DEFAULT_CAPS: [&str; 11] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

const CAPS_ITEM: &str = "podman default: capabilities";

/// The capabilities podman's defaults withhold, when the user's flags leave them as they are
/// (None when the flags add, drop or grant capabilities themselves: which ones podman then
/// keeps is not read here).
pub fn withheld_caps(flags: &[String]) -> Option<(String, Vec<String>)> {
    let touches_caps = |f: &String| {
        f.starts_with("--cap-add") || f.starts_with("--cap-drop") || f.starts_with("--privileged")
    };
    if flags.iter().any(touches_caps) {
        return None;
    }
    Some((
        CAPS_ITEM.to_string(),
        super::cmd::all_caps()
            .into_iter()
            .filter(|c| !DEFAULT_CAPS.contains(&c.as_str()))
            .collect(),
    ))
}

/// The flags keeping these capabilities too.
pub fn with_caps(flags: &[String], extra: &[String]) -> Vec<String> {
    let mut out = flags.to_vec();
    out.extend(extra.iter().map(|c| format!("--cap-add={c}")));
    out
}

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

/// Podman's state for our launches: its image store (unused with --rootfs, but podman opens
/// one) and run directory, on the guest's /run. /run is a file system of its own, so the store
/// never lies inside the root file system the containers see.
const STATE: &str = "/run/breakout-podman";

/// Files podman writes into a root file system that lacks them (/etc/mtab) or bind-mounts its
/// own over (hosts, hostname, resolv.conf). Our root file system is read-only, so they must
/// exist in the guest's root before the first launch: (path, symlink target or None for an
/// empty file).
const ROOT_FILES: [(&str, Option<&str>); 4] = [
    ("/etc/mtab", Some("/proc/mounts")),
    ("/etc/hosts", None),
    ("/etc/hostname", None),
    ("/etc/resolv.conf", None),
];

/// Whether the user's flags choose the network themselves.
fn names_network(flags: &[String]) -> bool {
    flags.iter().any(|f| {
        f == "--network" || f == "--net" || f.starts_with("--network=") || f.starts_with("--net=")
    })
}

/// The command line for one launch. What breakout adds to the user's flags: podman's state
/// under [`STATE`], the cgroupfs manager and no events journal (the guest runs no systemd),
/// the vfs store (the guest's kernel has no overlayfs), `--read-only` (the root is our
/// read-only bind of the guest's `/` whatever the flags say; podman then mounts tmpfs on /run,
/// /tmp and /var/tmp), `--network=none` unless the flags name a network (a network namespace
/// with only loopback: the guest has no bridge to give it), a tmpfs over /srv (the outside's
/// world is not part of the "image"), and the launch's cgroup as `--cgroup-parent`.
pub fn argv(
    flags: &[String],
    rootfs: &str,
    cgroup_parent: Option<&str>,
    payload: &[String],
) -> Vec<String> {
    let mut argv: Vec<String> = [
        registry::PODMAN_BINARY,
        "--cgroup-manager=cgroupfs",
        "--events-backend=none",
        "--storage-driver=vfs",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    argv.extend([
        format!("--root={STATE}/storage"),
        format!("--runroot={STATE}/run"),
        "run".to_string(),
        "--rm".to_string(),
        "--read-only".to_string(),
        "--tmpfs=/srv".to_string(),
    ]);
    if !names_network(flags) {
        argv.push("--network=none".to_string());
    }
    if let Some(parent) = cgroup_parent {
        argv.push(format!("--cgroup-parent={parent}"));
    }
    argv.extend(flags.iter().cloned());
    argv.extend(["--rootfs".to_string(), rootfs.to_string()]);
    argv.extend(payload.iter().cloned());
    argv
}

/// Creates what podman expects in the root file system ([`ROOT_FILES`]), once, in the guest's
/// root (the VM is thrown away after the run).
fn prepare_root() -> Result<(), String> {
    for (path, link) in ROOT_FILES {
        let path = std::path::Path::new(path);
        if path.symlink_metadata().is_ok() {
            continue;
        }
        let made = match link {
            Some(target) => std::os::unix::fs::symlink(target, path),
            None => std::fs::write(path, b""),
        };
        made.map_err(|e| format!("creating {} for podman: {e}", path.display()))?;
    }
    Ok(())
}

static NEXT_ROOT: AtomicU64 = AtomicU64::new(0);

pub struct PodmanLauncher {
    pub flags: Vec<String>,
}

impl Launcher for PodmanLauncher {
    fn launch(&self, request: &LaunchRequest) -> Result<Launched, String> {
        let cgroup = launch::LaunchCgroup::create(&super::cgroup_base(request), "podman")
            .map_err(|e| e.to_string())?;
        prepare_root()?;
        // podman cannot use `/` itself as --rootfs (pivot_root to the current root fails), so
        // it gets the read-only bind of `/` an OCI bundle gets.
        let n = NEXT_ROOT.fetch_add(1, Ordering::Relaxed);
        let bundle = super::oci::Bundle::create(
            super::oci::bundle_dir(&format!("breakout-podman-{}-{n}", std::process::id()))?,
            super::oci::RootKind::Own,
            false,
        )?;
        let rootfs = bundle.dir.join("rootfs");
        let mut argv = argv(
            &self.flags,
            &rootfs.display().to_string(),
            cgroup.payload_path_for_oci().as_deref(),
            &request.argv,
        );
        if request.stdin.is_some() {
            // conmon would copy stdin through a pipe of its own (with -i); the timing channel
            // goes as fd 3.
            if let Some(at) = argv.iter().position(|a| a == "run") {
                argv.insert(at + 1, "--preserve-fds=1".to_string());
            }
        }
        let timeout =
            registry::podman().map_or(request.timeout, |rt| rt.launch_timeout(request.timeout));
        launch::run_with(&argv, request, timeout, &cgroup, launch::StdinAt::Fd3)
            .map_err(|e| e.to_string())
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
        let argv = argv(
            &out,
            "/tmp/r/rootfs",
            Some("/b/payload"),
            &["/usr/bin/breakout-probe".to_string()],
        );
        assert_eq!(
            &argv[argv.len() - 3..],
            ["--rootfs", "/tmp/r/rootfs", "/usr/bin/breakout-probe"]
        );
        assert!(argv.contains(&"--network=none".to_string()));
        assert!(argv.contains(&"--cgroup-parent=/b/payload".to_string()));
        // The default's ablation chooses the network itself: no second --network.
        let host = without(
            &[],
            &BTreeSet::from(["podman default: network namespace".to_string()]),
        );
        let argv = super::argv(&host, "/r", None, &[]);
        assert!(argv.contains(&"--network=host".to_string()));
        assert!(!argv.contains(&"--network=none".to_string()));
        // Capabilities are bisected when the flags leave podman's own set alone.
        let (item, withheld) = withheld_caps(&[]).unwrap();
        assert_eq!(item, "podman default: capabilities");
        assert!(withheld.contains(&"CAP_MKNOD".to_string()));
        assert!(!withheld.contains(&"CAP_KILL".to_string()));
        assert!(withheld_caps(&flags).is_none());
        assert_eq!(
            with_caps(&[], &["CAP_MKNOD".to_string()]),
            ["--cap-add=CAP_MKNOD"]
        );
    }
}
