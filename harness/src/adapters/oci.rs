//! An OCI runtime config (config.json) under crun, runc or runsc: the user's own (`oci:PATH`) or
//! Docker's defaults (the short names). Its items are the entries a reviewer reads in the file:
//! each `linux.namespaces[TYPE]`, `process.capabilities`, `linux.seccomp`,
//! `process.noNewPrivileges`, `linux.maskedPaths`, `linux.readonlyPaths`, `process.rlimits`, the
//! user namespace mappings, `process.user`, `linux.resources.*`. `root.readonly` is listed but
//! not ablated: the guest's root is always bound read-only.
//!
//! What breakout changes for a launch, whatever the config says: `process.args` (the payload),
//! `process.terminal` (false: output is captured), `root.path` (a read-only bind of the guest's
//! `/`: the payload lives there), `linux.cgroupsPath`
//! (the launch's cgroup, so a timeout kills everything), a tmpfs over /srv (the outside's world
//! is not part of the "image") and `hooks` (dropped: they name host programs).

use super::{launch, registry, Item};
use breakout_attacks::{LaunchRequest, Launched, Launcher, Layer};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const CAPS: &str = "process.capabilities";
const SECCOMP: &str = "linux.seccomp";
const NNP: &str = "process.noNewPrivileges";
const MASKED: &str = "linux.maskedPaths";
const READONLY: &str = "linux.readonlyPaths";
const ROOT_RO: &str = "root.readonly";
const ROOT_PATH: &str = "root.path";
const RLIMITS: &str = "process.rlimits";
const MAPPINGS: &str = "linux.uidMappings/gidMappings";
const USER: &str = "process.user";
const DEVICES: &str = "linux.resources.devices";

/// Every capability the runtime knows, in the kernel's order ([`registry::Kind::Oci`]'s
/// `last_cap`): what "every capability" means when `process.capabilities` is taken out.
pub fn runtime_caps(runtime: &str) -> Vec<String> {
    let mut all = super::cmd::all_caps();
    if let Some(registry::Kind::Oci {
        last_cap: Some(last),
        ..
    }) = registry::by_name(runtime).map(|r| &r.kind)
    {
        if let Some(i) = all.iter().position(|c| c == last) {
            all.truncate(i + 1);
        }
    }
    all
}

fn namespace_item(kind: &str) -> String {
    format!("linux.namespaces[{kind}]")
}

fn namespace_layer(kind: &str) -> Option<Layer> {
    Some(match kind {
        "pid" => Layer::PidNs,
        "network" => Layer::NetNs,
        "ipc" => Layer::IpcNs,
        "uts" => Layer::UtsNs,
        "mount" => Layer::MountNs,
        "cgroup" => Layer::CgroupNs,
        "user" => Layer::UserNs,
        _ => return None,
    })
}

fn namespaces(config: &Value) -> Vec<String> {
    config
        .pointer("/linux/namespaces")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|n| n.get("type").and_then(Value::as_str).map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn non_empty(config: &Value, pointer: &str) -> bool {
    match config.pointer(pointer) {
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Null) | None => false,
        Some(_) => true,
    }
}

fn bounding(config: &Value) -> Option<Vec<String>> {
    config
        .pointer("/process/capabilities/bounding")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(String::from))
                .collect()
        })
}

/// Every item of the config, in the order of the file's sections.
pub fn items(config: &Value, runtime: &str) -> Vec<Item> {
    let mut items = Vec::new();
    for kind in namespaces(config) {
        items.push(Item::ablatable(
            namespace_item(&kind),
            namespace_layer(&kind),
        ));
    }
    if non_empty(config, "/linux/uidMappings") || non_empty(config, "/linux/gidMappings") {
        items.push(Item::ablatable(MAPPINGS, Some(Layer::UserNs)));
    }
    let uid = config.pointer("/process/user/uid").and_then(Value::as_u64);
    let gid = config.pointer("/process/user/gid").and_then(Value::as_u64);
    if uid.is_some_and(|u| u != 0) || gid.is_some_and(|g| g != 0) {
        items.push(Item::ablatable(USER, Some(Layer::Uid)));
    }
    if let Some(caps) = bounding(config) {
        if runtime_caps(runtime).iter().any(|c| !caps.contains(c)) {
            items.push(Item::ablatable(CAPS, Some(Layer::Caps)));
        }
    }
    if config.pointer("/process/noNewPrivileges") == Some(&Value::Bool(true)) {
        items.push(Item::ablatable(NNP, Some(Layer::NoNewPrivs)));
    }
    if non_empty(config, "/linux/seccomp") {
        items.push(Item::ablatable(SECCOMP, Some(Layer::Seccomp)));
    }
    if non_empty(config, "/linux/maskedPaths") {
        items.push(Item::ablatable(MASKED, Some(Layer::FsHardening)));
    }
    if non_empty(config, "/linux/readonlyPaths") {
        items.push(Item::ablatable(READONLY, Some(Layer::FsHardening)));
    }
    if root_kind(config) == RootKind::Own {
        items.push(Item::ablatable(ROOT_PATH, Some(Layer::MountNs)));
    }
    if config.pointer("/root/readonly") == Some(&Value::Bool(true)) {
        items.push(Item::ablatable(ROOT_RO, Some(Layer::FsHardening)));
    }
    if non_empty(config, "/process/rlimits") {
        items.push(Item::ablatable(RLIMITS, Some(Layer::Rlimits)));
    }
    if let Some(resources) = config
        .pointer("/linux/resources")
        .and_then(Value::as_object)
    {
        for (key, value) in resources {
            if value.is_null() {
                continue;
            }
            if key == "devices" {
                // The device allowlist decides which device nodes can be opened: the same
                // question nodev mounts answer (fs-hardening).
                items.push(Item::ablatable(DEVICES, Some(Layer::FsHardening)));
            } else {
                items.push(Item::ablatable(
                    format!("linux.resources.{key}"),
                    Some(Layer::CgroupLimits),
                ));
            }
        }
    }
    for (pointer, name) in [
        ("/process/apparmorProfile", "process.apparmorProfile"),
        ("/process/selinuxLabel", "process.selinuxLabel"),
        ("/linux/sysctl", "linux.sysctl"),
    ] {
        if non_empty(config, pointer) {
            items.push(Item::kept(name, None, "not ablated: kept in every run"));
        }
    }
    items.push(Item::kept(
        "descriptors 0, 1, 2 only (the OCI runtime passes no others)",
        Some(Layer::FdHygiene),
        "what every OCI runtime does",
    ));
    if let Some(registry::Kind::Oci {
        sandbox_kernel: Some((name, note)),
        ..
    }) = registry::by_name(runtime).map(|r| &r.kind)
    {
        items.push(Item::whole(*name, None, note));
    }
    items
}

/// The config without the named items.
pub fn without(config: &Value, runtime: &str, names: &BTreeSet<String>) -> Value {
    let mut config = config.clone();
    let has = |n: &str| names.contains(n);
    if let Some(list) = config
        .pointer_mut("/linux/namespaces")
        .and_then(Value::as_array_mut)
    {
        list.retain(|n| {
            let kind = n.get("type").and_then(Value::as_str).unwrap_or("");
            !names.contains(&namespace_item(kind))
        });
    }
    let linux = config.get_mut("linux").and_then(Value::as_object_mut);
    if let Some(linux) = linux {
        if has(&namespace_item("user")) {
            // Mappings without a user namespace are an error for every runtime.
            linux.remove("uidMappings");
            linux.remove("gidMappings");
        } else if has(MAPPINGS) {
            // The user namespace stays; its root is the outside's root.
            let identity = json!([{"containerID": 0, "hostID": 0, "size": 4294967295u64}]);
            linux.insert("uidMappings".into(), identity.clone());
            linux.insert("gidMappings".into(), identity);
        }
        if has(SECCOMP) {
            linux.remove("seccomp");
        }
        if has(MASKED) {
            linux.remove("maskedPaths");
        }
        if has(READONLY) {
            linux.remove("readonlyPaths");
        }
        if let Some(resources) = linux.get_mut("resources").and_then(Value::as_object_mut) {
            if has(DEVICES) {
                resources.insert("devices".into(), json!([{"allow": true, "access": "rwm"}]));
            }
            resources.retain(|key, _| key == "devices" || !has(&format!("linux.resources.{key}")));
        }
    }
    if has(ROOT_PATH) || has(ROOT_RO) {
        let root = config
            .as_object_mut()
            .map(|o| o.entry("root").or_insert_with(|| json!({})));
        if let Some(root) = root.and_then(Value::as_object_mut) {
            if has(ROOT_PATH) {
                root.insert("path".into(), json!("/"));
            }
            if has(ROOT_RO) {
                root.insert("readonly".into(), json!(false));
            }
        }
    }
    if let Some(process) = config.get_mut("process").and_then(Value::as_object_mut) {
        if has(USER) {
            process.insert("user".into(), json!({"uid": 0, "gid": 0}));
        }
        if has(CAPS) {
            let all = runtime_caps(runtime);
            if let Some(caps) = process
                .get_mut("capabilities")
                .and_then(Value::as_object_mut)
            {
                for set in ["bounding", "effective", "permitted"] {
                    caps.insert(set.into(), json!(all));
                }
            }
        }
        if has(NNP) {
            process.insert("noNewPrivileges".into(), json!(false));
        }
        if has(RLIMITS) {
            process.remove("rlimits");
        }
    }
    config
}

/// `process.capabilities` and the capabilities it withholds.
pub fn withheld_caps(config: &Value, runtime: &str) -> Option<(String, Vec<String>)> {
    let kept = bounding(config)?;
    Some((
        CAPS.to_string(),
        runtime_caps(runtime)
            .into_iter()
            .filter(|c| !kept.contains(c))
            .collect(),
    ))
}

/// The config keeping these capabilities too.
pub fn with_caps(config: &Value, extra: &[String]) -> Value {
    let mut config = config.clone();
    if let Some(caps) = config
        .pointer_mut("/process/capabilities")
        .and_then(Value::as_object_mut)
    {
        for set in ["bounding", "effective", "permitted"] {
            let list = caps.entry(set).or_insert_with(|| json!([]));
            if let Some(list) = list.as_array_mut() {
                for cap in extra {
                    if !list.iter().any(|c| c == cap) {
                        list.push(json!(cap));
                    }
                }
            }
        }
    }
    config
}

/// The config a launch writes: the user's, with the payload, our root filesystem and cgroup.
pub fn for_launch(config: &Value, payload: &[String], cgroups_path: Option<&str>) -> Value {
    let mut config = config.clone();
    if !config.is_object() {
        config = json!({});
    }
    let obj = config.as_object_mut().expect("made an object above");
    obj.entry("ociVersion").or_insert(json!("1.0.2"));
    obj.remove("hooks");
    let process = obj.entry("process").or_insert_with(|| json!({}));
    if let Some(process) = process.as_object_mut() {
        process.insert("args".into(), json!(payload));
        process.insert("terminal".into(), json!(false));
        process.remove("consoleSize");
        process.entry("cwd").or_insert(json!("/"));
        process.entry("user").or_insert(json!({"uid": 0, "gid": 0}));
        process.entry("env").or_insert(json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        ]));
    }
    let kind = root_kind(&Value::Object(obj.clone()));
    let readonly = obj
        .get("root")
        .and_then(|r| r.get("readonly"))
        .cloned()
        .unwrap_or(json!(false));
    obj.insert(
        "root".into(),
        json!({"path": "rootfs", "readonly": readonly}),
    );
    let mounts = obj.entry("mounts").or_insert_with(|| json!([]));
    if let (Some(mounts), RootKind::Own) = (mounts.as_array_mut(), kind) {
        if !mounts
            .iter()
            .any(|m| m.get("destination") == Some(&json!("/srv")))
        {
            mounts.push(
                json!({"destination": "/srv", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "nodev", "noexec", "mode=755"]}),
            );
        }
    }
    let linux = obj.entry("linux").or_insert_with(|| json!({}));
    if let Some(linux) = linux.as_object_mut() {
        match cgroups_path {
            Some(path) => {
                linux.insert("cgroupsPath".into(), json!(path));
            }
            None => {
                linux.remove("cgroupsPath");
            }
        }
    }
    config
}

/// The root file system a launch gets, from `root.path`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootKind {
    /// A root of the container's own (any `root.path` but `/`, or none): the guest's root
    /// files without what is mounted on them (/proc, /sys, /dev, /tmp, /run come afresh from
    /// the config or not at all) and a tmpfs over /srv, where the outside's world lies. The
    /// payload, breakout-probe, lives in the guest's root, so a path the config names is not
    /// used as such.
    Own,
    /// `root.path` `/`: the guest's root as the outside sees it, with its mounts (the
    /// outside's /tmp, /run and /srv). What taking `root.path` out means.
    Host,
}

pub fn root_kind(config: &Value) -> RootKind {
    match config.pointer("/root/path").and_then(Value::as_str) {
        Some("/") => RootKind::Host,
        _ => RootKind::Own,
    }
}

static NEXT_BUNDLE: AtomicU64 = AtomicU64::new(0);

/// Where bundles live: a directory that is its own mount, marked unbindable.
const BUNDLES: &str = "/run/breakout-bundles";

/// The directory for the bundle `id`, under [`BUNDLES`]. Bundles' rootfs mounts come and go while
/// other launches run beside them; a wrapper that binds the outside's `/` recursively (bwrap's
/// `--ro-bind / /`) would copy them and then fail when one vanishes under it ("Can't bind mount
/// /oldroot/... No such file or directory"). A recursive bind skips an unbindable mount and
/// everything under it, so no other launch ever sees a bundle (nor does a bundle's own recursive
/// bind of `/`, which would otherwise nest every earlier bundle). The runtime's own bind of the
/// rootfs onto itself is unaffected: the rootfs mount is bindable, only its parent is not.
pub(super) fn bundle_dir(id: &str) -> Result<PathBuf, String> {
    static PARENT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    PARENT
        .get_or_init(|| {
            let dir = Path::new(BUNDLES);
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
            if !is_mount_point(dir)? {
                mount(Some(dir), dir, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                    .map_err(|e| format!("bind-mounting {} onto itself: {e}", dir.display()))?;
            }
            mount(
                None::<&str>,
                dir,
                None::<&str>,
                MsFlags::MS_UNBINDABLE,
                None::<&str>,
            )
            .map_err(|e| format!("making {} unbindable: {e}", dir.display()))
        })
        .clone()?;
    Ok(Path::new(BUNDLES).join(id))
}

/// True when `dir` is the mount point of a mount of this mount namespace (mountinfo's fifth
/// field; the path has no spaces or escapes).
fn is_mount_point(dir: &Path) -> Result<bool, String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
    let wanted = dir.to_string_lossy();
    Ok(info
        .lines()
        .any(|line| line.split(' ').nth(4) == Some(wanted.as_ref())))
}

/// A bundle directory: config.json and rootfs/. An OCI runtime cannot use `/` itself as the
/// root (pivot_root to the current root fails with EBUSY), so rootfs/ is one of:
/// - a read-only bind of the guest's `/`: non-recursive for a root of the container's own
///   ([`RootKind::Own`]: the root file system's files without the mounts on top, which the
///   config mounts afresh), recursive for the outside's root ([`RootKind::Host`]); only the root
///   file system itself is read-only there, the outside's /tmp and /run stay as they are;
/// - for `root.readonly` false, a tmpfs holding a copy of the guest's root files, thrown away
///   after the launch: the payload may write its root, never the guest's, whose files every
///   later launch runs (the payload, the outside's programs).
pub(super) struct Bundle {
    pub(super) dir: PathBuf,
    rootfs_mounted: bool,
}

impl Bundle {
    pub(super) fn create(dir: PathBuf, kind: RootKind, writable: bool) -> Result<Bundle, String> {
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(&rootfs)
            .map_err(|e| format!("creating the OCI bundle {}: {e}", rootfs.display()))?;
        let mut bundle = Bundle {
            dir,
            rootfs_mounted: false,
        };
        if writable && kind == RootKind::Own {
            bundle.copy_root(&rootfs)?;
            return Ok(bundle);
        }
        let bind = match kind {
            RootKind::Own => MsFlags::MS_BIND,
            RootKind::Host => MsFlags::MS_BIND | MsFlags::MS_REC,
        };
        mount(Some("/"), &rootfs, None::<&str>, bind, None::<&str>)
            .map_err(|e| format!("bind-mounting / onto {}: {e}", rootfs.display()))?;
        bundle.rootfs_mounted = true;
        // Our own propagation, so nothing the runtime does under it reaches the guest's `/`.
        mount(
            None::<&str>,
            &rootfs,
            None::<&str>,
            MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| format!("making {} private: {e}", rootfs.display()))?;
        let ro = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        mount(None::<&str>, &rootfs, None::<&str>, ro, None::<&str>)
            .map_err(|e| format!("remounting {} read-only: {e}", rootfs.display()))?;
        Ok(bundle)
    }

    /// A tmpfs on `rootfs` with a copy of the guest's root files (read through a
    /// non-recursive bind, so what is mounted on them is not copied).
    fn copy_root(&mut self, rootfs: &Path) -> Result<(), String> {
        mount(
            Some("tmpfs"),
            rootfs,
            Some("tmpfs"),
            MsFlags::empty(),
            Some("mode=755"),
        )
        .map_err(|e| format!("mounting a tmpfs on {}: {e}", rootfs.display()))?;
        self.rootfs_mounted = true;
        let source = self.dir.join("source");
        std::fs::create_dir_all(&source)
            .map_err(|e| format!("creating {}: {e}", source.display()))?;
        mount(
            Some("/"),
            &source,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("bind-mounting / onto {}: {e}", source.display()))?;
        let copied = copy_tree(&source, rootfs);
        let unmounted = umount2(&source, MntFlags::MNT_DETACH);
        copied.map_err(|e| format!("copying the guest's root into {}: {e}", rootfs.display()))?;
        unmounted.map_err(|e| format!("unmounting {}: {e}", source.display()))?;
        let _ = std::fs::remove_dir(&source);
        Ok(())
    }
}

/// Copies a tree: directories, regular files and symlinks with their modes (set-id bits
/// included) and owners; other kinds (sockets, fifos, device nodes) are left out.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = std::fs::symlink_metadata(&src)?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if kind.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
        } else if kind.is_file() {
            std::fs::copy(&src, &dst)?;
        } else {
            continue;
        }
        std::os::unix::fs::lchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
        if !kind.is_symlink() {
            // After chown, which clears set-id bits.
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
    }
    Ok(())
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // Never a recursive removal: rootfs is the guest's `/` while mounted. Each step only
        // removes what it names, and stops when the unmount failed.
        let rootfs = self.dir.join("rootfs");
        if self.rootfs_mounted && umount2(&rootfs, MntFlags::MNT_DETACH).is_err() {
            return;
        }
        let _ = std::fs::remove_dir(&rootfs);
        let _ = std::fs::remove_file(self.dir.join("config.json"));
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Runs a config under an OCI runtime: `BINARY --root STATE GLOBAL_ARGS run --bundle DIR ID`.
pub struct OciLauncher {
    pub runtime: &'static registry::Runtime,
    pub config: Value,
}

impl Launcher for OciLauncher {
    fn launch(&self, request: &LaunchRequest) -> Result<Launched, String> {
        let name = self.runtime.name;
        let cgroup = launch::LaunchCgroup::create(&super::cgroup_base(request), name)
            .map_err(|e| e.to_string())?;
        let n = NEXT_BUNDLE.fetch_add(1, Ordering::Relaxed);
        let id = format!("breakout-{}-{n}", std::process::id());
        let config = for_launch(
            &self.config,
            &request.argv,
            cgroup.payload_path_for_oci().as_deref(),
        );
        let writable = self.config.pointer("/root/readonly") != Some(&Value::Bool(true));
        let bundle = Bundle::create(bundle_dir(&id)?, root_kind(&self.config), writable)?;
        let text = serde_json::to_vec_pretty(&config).map_err(|e| e.to_string())?;
        launch::write_file(&bundle.dir.join("config.json"), &text).map_err(|e| e.to_string())?;
        let state = PathBuf::from("/run/breakout-oci").join(name);
        std::fs::create_dir_all(&state).map_err(|e| {
            format!(
                "creating the runtime's state directory {}: {e}",
                state.display()
            )
        })?;
        let global: Vec<String> = match &self.runtime.kind {
            registry::Kind::Oci { global_args, .. } => {
                global_args.iter().map(|s| s.to_string()).collect()
            }
            _ => Vec::new(),
        };
        let mut argv = vec![
            self.runtime.binary.to_string(),
            "--root".to_string(),
            state.display().to_string(),
        ];
        argv.extend(global);
        argv.push("run".to_string());
        if request.stdin.is_some() && self.runtime.preserves_fds() {
            // The runtime may copy stdin through a pipe of its own (runc does), reading the
            // channel itself: the timing channel goes as fd 3 instead.
            argv.extend(["--preserve-fds".to_string(), "1".to_string()]);
        }
        argv.extend([
            "--bundle".to_string(),
            bundle.dir.display().to_string(),
            id.clone(),
        ]);
        let timeout = self.runtime.launch_timeout(request.timeout);
        let stdin_at = if self.runtime.preserves_fds() {
            launch::StdinAt::Fd3
        } else {
            launch::StdinAt::Stdin
        };
        let launched = launch::run_with(&argv, request, timeout, &cgroup, stdin_at)
            .map_err(|e| e.to_string())?;
        // The container was killed through the cgroup (or exited), but the runtime's state for
        // it may remain.
        let _ = std::process::Command::new(self.runtime.binary)
            .args([
                "--root",
                &state.display().to_string(),
                "delete",
                "--force",
                &id,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        Ok(launched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docker() -> Value {
        super::super::crun::config(&[], None)
    }

    #[test]
    fn docker_defaults_have_their_items_in_file_order() {
        let names: Vec<String> = items(&docker(), "crun")
            .into_iter()
            .filter(|i| i.ablatable)
            .map(|i| i.name)
            .collect();
        assert_eq!(
            names,
            [
                "linux.namespaces[pid]",
                "linux.namespaces[network]",
                "linux.namespaces[ipc]",
                "linux.namespaces[uts]",
                "linux.namespaces[mount]",
                "linux.namespaces[cgroup]",
                "process.capabilities",
                "linux.seccomp",
                "linux.maskedPaths",
                "linux.readonlyPaths",
                "root.path",
                "root.readonly",
                "linux.resources.devices",
            ]
        );
    }

    #[test]
    fn without_takes_out_exactly_the_named_items() {
        let config = docker();
        let out = without(
            &config,
            "crun",
            &BTreeSet::from([
                "linux.namespaces[pid]".to_string(),
                "process.capabilities".to_string(),
                "linux.seccomp".to_string(),
            ]),
        );
        assert_eq!(
            namespaces(&out),
            ["network", "ipc", "uts", "mount", "cgroup"]
        );
        assert!(out.pointer("/linux/seccomp").is_none());
        assert!(bounding(&out)
            .unwrap()
            .contains(&"CAP_SYS_ADMIN".to_string()));
        assert_eq!(out["linux"]["maskedPaths"], config["linux"]["maskedPaths"]);
        let (item, withheld) = withheld_caps(&config, "crun").unwrap();
        assert_eq!(item, "process.capabilities");
        assert!(withheld.contains(&"CAP_SYS_PTRACE".to_string()));
        assert!(!withheld.contains(&"CAP_KILL".to_string()));
        let more = with_caps(&config, &["CAP_SYS_PTRACE".to_string()]);
        assert!(bounding(&more)
            .unwrap()
            .contains(&"CAP_SYS_PTRACE".to_string()));
    }

    #[test]
    fn runsc_gets_back_only_the_capabilities_it_knows() {
        let caps = runtime_caps("runsc");
        assert_eq!(caps.last().unwrap(), "CAP_AUDIT_READ");
        let out = without(&docker(), "runsc", &BTreeSet::from([CAPS.to_string()]));
        let kept = bounding(&out).unwrap();
        assert!(kept.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(!kept.contains(&"CAP_BPF".to_string()));
        let (_, withheld) = withheld_caps(&docker(), "runsc").unwrap();
        assert!(!withheld.contains(&"CAP_CHECKPOINT_RESTORE".to_string()));
        assert!(runtime_caps("crun").contains(&"CAP_BPF".to_string()));
    }

    #[test]
    fn a_user_namespace_goes_with_its_mappings() {
        let config = json!({
            "process": {"user": {"uid": 1000, "gid": 1000}, "noNewPrivileges": true},
            "linux": {
                "namespaces": [{"type": "user"}, {"type": "pid"}],
                "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
                "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]
            }
        });
        let names: Vec<String> = items(&config, "crun").into_iter().map(|i| i.name).collect();
        assert!(names.contains(&MAPPINGS.to_string()) && names.contains(&USER.to_string()));
        let out = without(&config, "crun", &BTreeSet::from([namespace_item("user")]));
        assert!(out.pointer("/linux/uidMappings").is_none());
        let out = without(&config, "crun", &BTreeSet::from([MAPPINGS.to_string()]));
        assert_eq!(out["linux"]["uidMappings"][0]["hostID"], 0);
        assert_eq!(namespaces(&out), ["user", "pid"]);
    }

    #[test]
    fn a_launch_runs_the_payload_in_our_root_and_cgroup() {
        let config = json!({"process": {"terminal": true, "args": ["sh"]},
            "root": {"path": "rootfs", "readonly": true}, "hooks": {"prestart": []},
            "linux": {"cgroupsPath": "/user/path"}});
        let out = for_launch(
            &config,
            &["/usr/bin/breakout-probe".to_string()],
            Some("/b/payload"),
        );
        assert_eq!(out["process"]["args"], json!(["/usr/bin/breakout-probe"]));
        assert_eq!(out["process"]["terminal"], false);
        assert_eq!(out["linux"]["cgroupsPath"], "/b/payload");
        assert!(out.get("hooks").is_none());
        assert_eq!(out["root"], json!({"path": "rootfs", "readonly": true}));
        assert!(out["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["destination"] == "/srv"));
        assert_eq!(root_kind(&config), RootKind::Own);
        // Taking root.path out gives the outside's root, with no /srv of our own on it.
        let host = without(&config, "crun", &BTreeSet::from([ROOT_PATH.to_string()]));
        assert_eq!(root_kind(&host), RootKind::Host);
        let out = for_launch(&host, &[], None);
        assert!(out["mounts"].as_array().unwrap().is_empty());
        assert_eq!(out["root"]["readonly"], true);
        let writable = without(&config, "crun", &BTreeSet::from([ROOT_RO.to_string()]));
        assert_eq!(writable["root"]["readonly"], false);
    }
}
