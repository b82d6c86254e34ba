//! `SandboxConfig`: one switch per layer plus each layer's settings, read from TOML profiles.
//! The builtin profiles are embedded so the binary works anywhere (also in the VM).

use crate::layer::{requires, Layer};
use crate::seccomp::{self, ResolveContext, SeccompError, SeccompProfile};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Everything that can be wrong with a configuration. Each message names the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read sandbox config: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: malformed sandbox config: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("unknown profile `{name}` (builtin profiles: {})", builtin_names().join(", "))]
    UnknownProfile { name: String },
    #[error("{}: field `{field}`: {message}", path.display())]
    Field {
        path: PathBuf,
        field: String,
        message: String,
    },
    #[error("{}: layer `{layer}` needs layer `{needs}` on: {why}", path.display())]
    Requires {
        path: PathBuf,
        layer: Layer,
        needs: Layer,
        why: &'static str,
    },
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
}

/// A size in bytes, written as a number or with a K/M/G suffix ("256M").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(Size(n)),
            Raw::Str(s) => parse_size(&s).map(Size).map_err(serde::de::Error::custom),
        }
    }
}

/// "64M" -> 67108864. Suffixes K, M, G (powers of 1024), optionally followed by "i"/"B".
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().trim_end_matches(['B', 'b']).trim_end_matches('i');
    let (num, mult) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 1 << 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("bad size `{s}` (a number of bytes, or with K, M or G)"))
}

/// The sandbox's own range of outside ids, as podman's subordinate ids (subuid(5)) and Docker's
/// userns-remap give one: the user namespace maps inside `0..size` to outside `base..base+size`
/// (uids and gids alike), so inside root is outside `base`, never the host's root. No account on
/// the host may use these ids. Every sandbox with the same section shares the range.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct UserConfig {
    /// First outside id of the range (inside root). 0 is refused: no map contains host id 0.
    pub base: u32,
    /// Number of ids in the range.
    pub size: u32,
    /// The uid/gid the `uid` layer switches to, inside the range: inside `uid` is outside
    /// `base + uid`; without a user namespace the payload switches to `base + uid` directly.
    /// `rootless` drops to that outside id and maps only it (inside root = outside `base + uid`).
    pub uid: u32,
    pub gid: u32,
}

impl Default for UserConfig {
    fn default() -> Self {
        UserConfig {
            base: DEFAULT_ID_BASE,
            size: 65536,
            uid: DEFAULT_OUTSIDE_UID - DEFAULT_ID_BASE,
            gid: DEFAULT_OUTSIDE_UID - DEFAULT_ID_BASE,
        }
    }
}

/// Where the default range starts (podman's first subordinate range, far above accounts).
pub const DEFAULT_ID_BASE: u32 = 100_000;

/// The outside uid (and gid) the `uid` layer's payload runs as with the default `[user]`.
pub const DEFAULT_OUTSIDE_UID: u32 = DEFAULT_ID_BASE + 1000;

impl UserConfig {
    /// The outside uid the `uid` layer's payload runs as (also rootless's unprivileged user).
    pub fn outside_uid(&self) -> u32 {
        self.base.saturating_add(self.uid)
    }

    /// The outside gid, as [`Self::outside_uid`].
    pub fn outside_gid(&self) -> u32 {
        self.base.saturating_add(self.gid)
    }

    /// What is wrong with the range, as (field, message).
    fn check(&self) -> Result<(), (&'static str, String)> {
        if self.base == 0 {
            return Err((
                "user.base",
                "0 would map the sandbox's root onto the host's root (give an unused range, e.g. 100000)".into(),
            ));
        }
        if self.size == 0 {
            return Err(("user.size", "the range must hold at least one id".into()));
        }
        // u32::MAX is (uid_t)-1, which no map may name.
        if u64::from(self.base) + u64::from(self.size) > u64::from(u32::MAX) {
            return Err((
                "user.size",
                format!("{} + {} runs past the largest id", self.base, self.size),
            ));
        }
        for (field, id) in [("user.uid", self.uid), ("user.gid", self.gid)] {
            if id >= self.size {
                return Err((
                    field,
                    format!("{id} is outside the range of {} ids", self.size),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MountConfig {
    /// A directory to use as the sandbox root (read-only bind) instead of a tmpfs with binds.
    pub root: Option<PathBuf>,
    /// Host directories bound read-only into the new root (skipped when absent on the host;
    /// symbolic links such as a merged-/usr `/bin` are recreated as links).
    pub binds: Vec<PathBuf>,
    /// Size of the sandbox's /tmp.
    pub tmp_size: Size,
    /// Mount a read-only sysfs at /sys (Docker does; fs-hardening then masks its paths).
    pub sysfs: bool,
}

impl Default for MountConfig {
    fn default() -> Self {
        MountConfig {
            root: None,
            binds: ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc"]
                .iter()
                .map(PathBuf::from)
                .collect(),
            tmp_size: Size(64 << 20),
            sysfs: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct FsHardeningConfig {
    /// Remount the sandbox root read-only (Docker leaves it writable by default).
    pub read_only_root: bool,
    /// Hidden behind /dev/null (files) or an empty read-only tmpfs (directories).
    pub masked_paths: Vec<String>,
    /// Bound read-only over themselves.
    pub readonly_paths: Vec<String>,
}

/// The paths Docker (moby oci/defaults.go) and the OCI default spec of runc and crun hide: the
/// fs-hardening layer's default, and what the crun adapter gives crun.
pub const DOCKER_MASKED_PATHS: [&str; 12] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// The paths Docker and the OCI default spec bind read-only over themselves.
pub const DOCKER_READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

impl Default for FsHardeningConfig {
    fn default() -> Self {
        FsHardeningConfig {
            read_only_root: true,
            masked_paths: DOCKER_MASKED_PATHS.map(String::from).to_vec(),
            readonly_paths: DOCKER_READONLY_PATHS.map(String::from).to_vec(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CapsConfig {
    /// Capabilities the payload keeps (`CAP_NET_BIND_SERVICE`); all others leave every set.
    pub keep: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SeccompConfig {
    /// A builtin name (`strict`, `docker-default`) or a path to a `.json` (Docker/OCI) or
    /// `.toml` (our allowlist format) profile, relative to the config file.
    pub profile: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct CgroupConfig {
    /// cgroup v2 directory under which each sandbox gets its leaf.
    pub parent: PathBuf,
    pub memory_max: Option<Size>,
    /// Written only when memory_max is set; 0 keeps the sandbox out of swap.
    pub memory_swap_max: Size,
    pub pids_max: Option<u64>,
    /// cpu.max: "QUOTA PERIOD" in microseconds, or "max PERIOD".
    pub cpu_max: Option<String>,
}

impl Default for CgroupConfig {
    fn default() -> Self {
        CgroupConfig {
            parent: PathBuf::from("/sys/fs/cgroup/breakout"),
            memory_max: None,
            memory_swap_max: Size(0),
            pids_max: None,
            cpu_max: None,
        }
    }
}

/// The resource limits the rlimits layer knows, by their names in profiles.
pub const RLIMIT_NAMES: &[&str] = &[
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rtprio",
    "sigpending",
    "stack",
];

/// A sandbox configuration: which layers are on and how each is set up.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The switches. A layer not listed is off.
    #[serde(default)]
    pub layers: BTreeMap<Layer, bool>,
    /// Start as an unprivileged user: the runtime drops to the outside ids `user.base + user.uid`
    /// (and gid) before it creates the user namespace, and the namespace maps only that id
    /// (inside root = that outside id), exactly what an unprivileged user could set up.
    #[serde(default)]
    pub rootless: bool,
    #[serde(default)]
    pub user: UserConfig,
    #[serde(default = "default_hostname")]
    pub hostname: String,
    #[serde(default)]
    pub mount: MountConfig,
    #[serde(default)]
    pub fs_hardening: FsHardeningConfig,
    #[serde(default)]
    pub caps: CapsConfig,
    #[serde(default)]
    pub seccomp: SeccompConfig,
    #[serde(default)]
    pub cgroup: CgroupConfig,
    /// name -> value (soft = hard), names from [`RLIMIT_NAMES`].
    #[serde(default)]
    pub rlimits: BTreeMap<String, u64>,
    /// The loaded seccomp profile (from `seccomp.profile`).
    #[serde(skip)]
    seccomp_profile: Option<SeccompProfile>,
    /// Where this config came from, for messages.
    #[serde(skip)]
    origin: PathBuf,
    /// Record every syscall instead of filtering (`breakout learn`); not part of a profile.
    #[serde(skip)]
    record_syscalls: bool,
}

fn default_hostname() -> String {
    "breakout".to_string()
}

const BUILTIN: &[(&str, &str)] = &[
    ("none", include_str!("../../profiles/none.toml")),
    ("namespaces", include_str!("../../profiles/namespaces.toml")),
    (
        "docker-default",
        include_str!("../../profiles/docker-default.toml"),
    ),
    ("strict", include_str!("../../profiles/strict.toml")),
    ("rootless", include_str!("../../profiles/rootless.toml")),
    ("deny-all", include_str!("../../profiles/deny-all.toml")),
    ("learned", include_str!("../../profiles/learned.toml")),
];

/// The top-level keys of a profile that configure a layer, and the layers that use them (any one
/// of them on makes the settings meaningful; `user` is also used by `rootless`).
pub const SECTION_LAYERS: &[(&str, &[Layer])] = &[
    ("user", &[Layer::Uid, Layer::UserNs]),
    ("hostname", &[Layer::UtsNs]),
    ("mount", &[Layer::MountNs, Layer::Landlock]),
    ("fs_hardening", &[Layer::FsHardening]),
    ("caps", &[Layer::Caps]),
    ("seccomp", &[Layer::Seccomp]),
    ("cgroup", &[Layer::CgroupLimits]),
    ("rlimits", &[Layer::Rlimits]),
];

/// The names of the builtin profiles.
pub fn builtin_names() -> &'static [&'static str] {
    &[
        "none",
        "namespaces",
        "docker-default",
        "strict",
        "rootless",
        "deny-all",
        "learned",
    ]
}

impl SandboxConfig {
    /// Read a profile from a TOML file; relative seccomp paths resolve beside it.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path, path.parent())
    }

    /// A builtin profile by name.
    pub fn builtin(name: &str) -> Result<Self, ConfigError> {
        let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            ConfigError::UnknownProfile {
                name: name.to_string(),
            }
        })?;
        Self::from_toml(text, Path::new(&format!("<builtin profile {name}>")), None)
    }

    /// Parse a config from TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &Path, base: Option<&Path>) -> Result<Self, ConfigError> {
        let mut cfg: SandboxConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: origin.to_path_buf(),
            message: crate::seccomp::allowlist_one_line(&e.to_string()),
        })?;
        cfg.origin = origin.to_path_buf();
        if !cfg.seccomp.profile.is_empty() {
            let spec = cfg.seccomp.profile.clone();
            cfg.seccomp_profile = Some(seccomp::load(&spec, base).map_err(|e| match e {
                SeccompError::UnknownBuiltin { name, .. } => ConfigError::Field {
                    path: origin.to_path_buf(),
                    field: "seccomp.profile".into(),
                    message: format!("unknown builtin seccomp profile `{name}` (builtin: strict, docker-default, deny-all, learned-workloads; or a path to a .json/.toml file)"),
                },
                other => ConfigError::Seccomp(other),
            })?);
        }
        cfg.check_fields()?;
        cfg.check_sections_have_their_layer(text)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Where the config came from.
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    pub fn enabled(&self, layer: Layer) -> bool {
        self.layers.get(&layer).copied().unwrap_or(false)
    }

    pub fn set_enabled(&mut self, layer: Layer, on: bool) {
        self.layers.insert(layer, on);
    }

    pub fn enabled_layers(&self) -> BTreeSet<Layer> {
        Layer::ALL
            .into_iter()
            .filter(|l| self.enabled(*l))
            .collect()
    }

    /// The configuration as far as it shapes the sandbox: the labels cleared and the settings of
    /// layers that are off reset, so that two configurations that start the same sandbox compare
    /// equal (the orchestrator runs such launches once). Every field is named, so a new one does
    /// not compile until it is sorted here.
    pub fn in_effect(&self) -> SandboxConfig {
        let SandboxConfig {
            name: _,
            description: _,
            layers,
            rootless,
            user,
            hostname,
            mount,
            fs_hardening,
            caps,
            seccomp,
            cgroup,
            rlimits,
            seccomp_profile,
            origin,
            record_syscalls,
        } = self;
        let on = |layer: Layer| self.enabled(layer);
        fn kept<T: Clone + Default>(on: bool, value: &T) -> T {
            if on {
                value.clone()
            } else {
                T::default()
            }
        }
        SandboxConfig {
            name: String::new(),
            description: String::new(),
            layers: layers.clone(),
            rootless: *rootless,
            user: kept(on(Layer::Uid) || on(Layer::UserNs) || *rootless, user),
            hostname: kept(on(Layer::UtsNs), hostname),
            mount: kept(on(Layer::MountNs), mount),
            fs_hardening: kept(on(Layer::FsHardening), fs_hardening),
            caps: kept(on(Layer::Caps), caps),
            seccomp: kept(on(Layer::Seccomp), seccomp),
            cgroup: kept(on(Layer::CgroupLimits), cgroup),
            rlimits: kept(on(Layer::Rlimits), rlimits),
            // Not serialized: the filter follows `seccomp.profile`, the origin is for messages.
            seccomp_profile: seccomp_profile.clone(),
            origin: origin.clone(),
            // A recording launch is a different launch: never shared with a filtering one.
            record_syscalls: *record_syscalls,
        }
    }

    /// Replace the seccomp profile (a builtin name or a path); the CLI's `--seccomp-profile`.
    pub fn set_seccomp_profile(&mut self, spec: &str) -> Result<(), ConfigError> {
        let profile = seccomp::load(spec, None)?;
        self.seccomp.profile = spec.to_string();
        self.seccomp_profile = Some(profile);
        Ok(())
    }

    /// Record every syscall of the sandbox instead of filtering them (seccomp/record.rs); the
    /// recording comes back in `Outcome::recording`. Needs root and the seccomp layer off.
    pub fn set_record_syscalls(&mut self, on: bool) {
        self.record_syscalls = on;
    }

    /// True when this sandbox records its syscalls.
    pub fn records_syscalls(&self) -> bool {
        self.record_syscalls
    }

    /// The loaded seccomp profile, if any.
    pub fn seccomp_profile(&self) -> Option<&SeccompProfile> {
        self.seccomp_profile.as_ref()
    }

    /// Keep one more capability (the harness's drill-down). Names are canonicalized (`sys_admin`
    /// -> `CAP_SYS_ADMIN`).
    pub fn keep_cap(&mut self, name: &str) -> Result<(), ConfigError> {
        let canon = canonical_cap(name)
            .ok_or_else(|| self.field_err("caps.keep", format!("unknown capability `{name}`")))?;
        if !self.caps.keep.contains(&canon) {
            self.caps.keep.push(canon);
        }
        Ok(())
    }

    /// The capabilities the payload ends up with: the kept list with the caps layer on, every
    /// capability with it off (seccomp profiles are resolved against this set, as Docker does).
    pub fn effective_caps(&self) -> BTreeSet<String> {
        if self.enabled(Layer::Caps) {
            self.caps
                .keep
                .iter()
                .filter_map(|c| canonical_cap(c))
                .collect()
        } else {
            caps::all().iter().map(|c| c.to_string()).collect()
        }
    }

    /// Does the filter this config would load deny `syscall` whatever its arguments? `None`
    /// when seccomp is off or the answer depends on the arguments.
    pub fn seccomp_denies(&self, syscall: &str) -> Option<bool> {
        if !self.enabled(Layer::Seccomp) {
            return None;
        }
        let profile = self.seccomp_profile.as_ref()?;
        profile
            .resolve(&ResolveContext::native(self.effective_caps()))
            .denies(syscall)
    }

    /// pids.max the payload runs under (cgroup-limits on and a value set).
    pub fn pids_max(&self) -> Option<u64> {
        self.cgroup
            .pids_max
            .filter(|_| self.enabled(Layer::CgroupLimits))
    }

    /// memory.max in bytes (cgroup-limits on and a value set).
    pub fn memory_max(&self) -> Option<u64> {
        self.cgroup
            .memory_max
            .map(|s| s.0)
            .filter(|_| self.enabled(Layer::CgroupLimits))
    }

    /// RLIMIT_NPROC (rlimits on and a value set).
    pub fn rlimit_nproc(&self) -> Option<u64> {
        self.rlimit("nproc")
    }

    /// RLIMIT_NOFILE (rlimits on and a value set).
    pub fn rlimit_nofile(&self) -> Option<u64> {
        self.rlimit("nofile")
    }

    fn rlimit(&self, name: &str) -> Option<u64> {
        self.rlimits
            .get(name)
            .copied()
            .filter(|_| self.enabled(Layer::Rlimits))
    }

    fn field_err(&self, field: &str, message: String) -> ConfigError {
        ConfigError::Field {
            path: self.origin.clone(),
            field: field.to_string(),
            message,
        }
    }

    /// Settings for a layer that is off are an error, not silently ignored: `[caps] keep = []`
    /// with `caps` off would read as "no capabilities" while the payload keeps all of them. An
    /// error rather than switching the layer on by declaring it: a profile says in one place,
    /// `[layers]`, what is on, and a stray section never switches a layer on behind the reader's
    /// back. (Ablation and `--disable` switch layers off after loading; their settings stay, as
    /// the variant of a profile the user wrote.)
    fn check_sections_have_their_layer(&self, text: &str) -> Result<(), ConfigError> {
        let Ok(table) = text.parse::<toml::Table>() else {
            return Ok(()); // syntax errors are reported by the typed parse
        };
        // Binds the profile names itself must exist (the default list skips what a host lacks,
        // such as /lib64 on some distributions; a bind the user asked for never silently goes).
        let explicit_binds = table.get("mount").and_then(|m| m.get("binds")).is_some();
        if explicit_binds {
            for (i, b) in self.mount.binds.iter().enumerate() {
                if b.is_absolute() && std::fs::symlink_metadata(b).is_err() {
                    return Err(self.field_err(
                        &format!("mount.binds[{i}]"),
                        format!("bind source `{}` does not exist", b.display()),
                    ));
                }
            }
        }
        for (key, owners) in SECTION_LAYERS {
            if !table.contains_key(*key) {
                continue;
            }
            let on = owners.iter().any(|l| self.enabled(*l)) || (*key == "user" && self.rootless);
            if !on {
                let names: Vec<String> = owners.iter().map(|l| format!("`{l}`")).collect();
                return Err(self.field_err(
                    key,
                    format!(
                        "settings for {} while that layer is off in [layers]: switch it on or remove `{key}`",
                        names.join(" or ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Values that are wrong whatever the switches say.
    fn check_fields(&self) -> Result<(), ConfigError> {
        for (i, c) in self.caps.keep.iter().enumerate() {
            if canonical_cap(c).is_none() {
                return Err(self.field_err(
                    &format!("caps.keep[{i}]"),
                    format!("unknown capability `{c}`"),
                ));
            }
        }
        for name in self.rlimits.keys() {
            if !RLIMIT_NAMES.contains(&name.as_str()) {
                return Err(self.field_err(
                    &format!("rlimits.{name}"),
                    format!(
                        "unknown resource limit (known: {})",
                        RLIMIT_NAMES.join(", ")
                    ),
                ));
            }
        }
        if self.hostname.is_empty() || self.hostname.len() > 64 {
            return Err(self.field_err(
                "hostname",
                format!("`{}` must be 1 to 64 bytes", self.hostname),
            ));
        }
        for (i, b) in self.mount.binds.iter().enumerate() {
            if !b.is_absolute() {
                return Err(self.field_err(
                    &format!("mount.binds[{i}]"),
                    format!("`{}` is not an absolute path", b.display()),
                ));
            }
        }
        if let Some(cpu) = &self.cgroup.cpu_max {
            let mut it = cpu.split_whitespace();
            let quota_ok = it
                .next()
                .is_some_and(|q| q == "max" || q.parse::<u64>().is_ok());
            let period_ok = it.next().is_none_or(|p| p.parse::<u64>().is_ok());
            if !quota_ok || !period_ok || it.next().is_some() {
                return Err(self.field_err(
                    "cgroup.cpu_max",
                    format!("`{cpu}` is not \"QUOTA PERIOD\" or \"max PERIOD\""),
                ));
            }
        }
        if let Err((field, message)) = self.user.check() {
            return Err(self.field_err(field, message));
        }
        if !self.cgroup.parent.is_absolute() {
            return Err(self.field_err("cgroup.parent", "must be an absolute path".into()));
        }
        for (i, p) in self
            .fs_hardening
            .masked_paths
            .iter()
            .chain(&self.fs_hardening.readonly_paths)
            .enumerate()
        {
            if !p.starts_with('/') {
                return Err(
                    self.field_err("fs_hardening", format!("path {i} `{p}` is not absolute"))
                );
            }
        }
        Ok(())
    }

    /// Check the switches against the real dependencies between layers ([`requires`]) and the
    /// settings a switched-on layer needs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for layer in self.enabled_layers() {
            for &needs in requires(layer) {
                if !self.enabled(needs) {
                    return Err(ConfigError::Requires {
                        path: self.origin.clone(),
                        layer,
                        needs,
                        why: crate::layer::requirement_reason(layer, needs),
                    });
                }
            }
        }
        if self.record_syscalls && self.enabled(Layer::Seccomp) {
            return Err(self.field_err(
                "seccomp",
                "recording syscalls replaces the seccomp layer's filter: switch the seccomp layer off".into(),
            ));
        }
        if self.enabled(Layer::Seccomp) && self.seccomp_profile.is_none() {
            return Err(self.field_err(
                "seccomp.profile",
                "the seccomp layer is on but no profile is named".into(),
            ));
        }
        if self.rootless {
            let needs_priv = [
                Layer::MountNs,
                Layer::PidNs,
                Layer::NetNs,
                Layer::IpcNs,
                Layer::UtsNs,
                Layer::CgroupNs,
            ];
            if let Some(l) = needs_priv.iter().find(|l| self.enabled(**l)) {
                if !self.enabled(Layer::UserNs) {
                    return Err(self.field_err(
                        "rootless",
                        format!("an unprivileged user can create `{l}` only inside a user namespace: switch `user-ns` on"),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl SandboxConfig {
    /// Layer combinations that are valid but quietly weaken another layer, one line each (for
    /// the plan, stderr of `breakout sandbox` and the run's profile info), plus what the
    /// seccomp profile's loader had to say. Empty for the builtin profiles but `none`.
    pub fn warnings(&self) -> Vec<String> {
        let on = |l: Layer| self.enabled(l);
        let keeps = |cap: &str| self.effective_caps().contains(cap);
        let mut w = Vec::new();
        if on(Layer::MountNs) && !on(Layer::PidNs) {
            w.push(if on(Layer::UserNs) {
                "pid-ns off with mount-ns on: the host's /proc is bound into the sandbox, every host process and its /proc/PID links (exe, root, fd) in view".to_string()
            } else {
                "pid-ns off with mount-ns on: the sandbox's /proc is the host pid namespace's, every host process and its /proc/PID links (exe, root, fd) in view".to_string()
            });
        }
        if !on(Layer::PidNs) && !on(Layer::CgroupLimits) {
            w.push("pid-ns and cgroup-limits off: processes the payload daemonizes outlive it and the runtime (kill reaches the payload only)".into());
        }
        if !on(Layer::UserNs) && !on(Layer::Uid) {
            w.push(format!(
                "user-ns and uid off: the payload is the host's root (uid 0 of the initial user namespace){}",
                if on(Layer::Caps) { "" } else { " with every capability" }
            ));
        }
        if on(Layer::Uid) && !on(Layer::NoNewPrivs) && !on(Layer::FsHardening) {
            w.push("uid on, no-new-privs and fs-hardening off (no nosuid mounts): a setuid binary the payload can run gives back the ids the uid switch took".into());
        }
        if on(Layer::Rlimits) && keeps("CAP_SYS_RESOURCE") && !self.rlimits.is_empty() {
            w.push("rlimits on but the payload keeps CAP_SYS_RESOURCE: it can raise every hard limit again".into());
        }
        if on(Layer::NewSession) && keeps("CAP_SYS_ADMIN") {
            w.push("new-session on but the payload keeps CAP_SYS_ADMIN: TIOCSTI still injects input into any terminal it can open".into());
        }
        if on(Layer::Seccomp) && !on(Layer::Caps) {
            let by_caps = self
                .seccomp_profile
                .as_ref()
                .is_some_and(|p| p.rules.iter().any(|r| !r.includes.caps.is_empty()));
            if by_caps {
                w.push("seccomp on with caps off: the profile's capability-conditioned rules are resolved against every capability, so it allows mount, unshare, bpf and the like".into());
            }
        }
        if on(Layer::Seccomp) {
            if let Some(p) = &self.seccomp_profile {
                w.extend(p.warnings.iter().cloned());
            }
        }
        w
    }
}

/// `sys_admin`, `CAP_SYS_ADMIN`, `cap_sys_admin` -> `CAP_SYS_ADMIN`, if the caps crate knows it.
pub fn canonical_cap(name: &str) -> Option<String> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    full.parse::<caps::Capability>().ok().map(|c| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn parse(text: &str) -> Result<SandboxConfig, ConfigError> {
        SandboxConfig::from_toml(text, Path::new("test.toml"), None)
    }

    #[rstest]
    #[case::none("none", &[])]
    #[case::namespaces("namespaces", &[Layer::UserNs, Layer::PidNs, Layer::MountNs, Layer::NetNs, Layer::IpcNs, Layer::UtsNs, Layer::CgroupNs])]
    #[case::docker("docker-default", &[Layer::PidNs, Layer::MountNs, Layer::NetNs, Layer::IpcNs, Layer::UtsNs, Layer::CgroupNs, Layer::Caps, Layer::Seccomp, Layer::FsHardening, Layer::FdHygiene, Layer::NewSession])]
    #[case::strict("strict", &Layer::ALL)]
    #[case::rootless("rootless", &Layer::ALL)]
    #[case::deny_all("deny-all", &[Layer::Seccomp])]
    #[case::learned("learned", &[Layer::PidNs, Layer::MountNs, Layer::NetNs, Layer::IpcNs, Layer::UtsNs, Layer::CgroupNs, Layer::Caps, Layer::Seccomp, Layer::FsHardening, Layer::FdHygiene, Layer::NewSession])]
    fn builtin_profiles_switch_the_documented_layers(#[case] name: &str, #[case] want: &[Layer]) {
        let cfg = SandboxConfig::builtin(name).unwrap();
        assert_eq!(
            cfg.enabled_layers(),
            want.iter().copied().collect::<BTreeSet<_>>()
        );
        assert_eq!(cfg.name, name);
        assert_eq!(cfg.rootless, name == "rootless");
    }

    #[test]
    fn every_builtin_name_loads() {
        for name in builtin_names() {
            SandboxConfig::builtin(name).unwrap();
        }
        let e = SandboxConfig::builtin("strictest").unwrap_err().to_string();
        assert!(
            e.contains("unknown profile `strictest`") && e.contains("strict, rootless"),
            "{e}"
        );
    }

    #[test]
    fn docker_default_keeps_dockers_fourteen_capabilities() {
        let cfg = SandboxConfig::builtin("docker-default").unwrap();
        assert_eq!(cfg.caps.keep.len(), 14);
        assert!(cfg.effective_caps().contains("CAP_NET_RAW"));
        assert!(!cfg.effective_caps().contains("CAP_SYS_ADMIN"));
        assert!(!cfg.fs_hardening.read_only_root);
    }

    #[test]
    fn strict_limits_reach_the_accessors_only_while_their_layer_is_on() {
        let mut cfg = SandboxConfig::builtin("strict").unwrap();
        assert_eq!(cfg.pids_max(), Some(64));
        assert_eq!(cfg.memory_max(), Some(256 << 20));
        assert_eq!(cfg.rlimit_nproc(), Some(64));
        assert_eq!(cfg.rlimit_nofile(), Some(256));
        cfg.set_enabled(Layer::CgroupLimits, false);
        cfg.set_enabled(Layer::Rlimits, false);
        assert_eq!((cfg.pids_max(), cfg.memory_max()), (None, None));
        assert_eq!((cfg.rlimit_nproc(), cfg.rlimit_nofile()), (None, None));
    }

    #[rstest]
    #[case::unknown_layer("[layers]\nfoo-ns = true\n", "line 2", "unknown variant `foo-ns`")]
    #[case::unknown_field("colour = 1\n", "line 1", "unknown field `colour`")]
    #[case::malformed("[layers\n", "line 1", "test.toml")]
    #[case::bad_size("[cgroup]\nmemory_max = \"12Q\"\n", "line 2", "bad size")]
    #[case::not_bool("[layers]\nuid = \"yes\"\n", "line 2", "test.toml")]
    fn malformed_toml_names_file_and_place(
        #[case] text: &str,
        #[case] line: &str,
        #[case] what: &str,
    ) {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.starts_with("test.toml: "), "{e}");
        assert!(e.contains(line) && e.contains(what), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }

    #[rstest]
    #[case::cap(
        "[caps]\nkeep = [\"CAP_FLY\"]\n",
        "caps.keep[0]",
        "unknown capability `CAP_FLY`"
    )]
    #[case::rlimit("[rlimits]\nwings = 2\n", "rlimits.wings", "unknown resource limit")]
    #[case::cpu(
        "[cgroup]\ncpu_max = \"fast\"\n",
        "cgroup.cpu_max",
        "not \"QUOTA PERIOD\""
    )]
    #[case::hostname("hostname = \"\"\n", "hostname", "1 to 64 bytes")]
    #[case::bind(
        "[mount]\nbinds = [\"usr\"]\n",
        "mount.binds[0]",
        "not an absolute path"
    )]
    #[case::seccomp_builtin(
        "[seccomp]\nprofile = \"nosuch\"\n",
        "seccomp.profile",
        "unknown builtin seccomp profile"
    )]
    #[case::seccomp_missing("[layers]\nseccomp = true\n", "seccomp.profile", "no profile is named")]
    #[case::host_root("[user]\nbase = 0\n", "user.base", "host's root")]
    #[case::empty_range("[user]\nsize = 0\n", "user.size", "at least one id")]
    #[case::past_the_end("[user]\nbase = 4294967000\n", "user.size", "largest id")]
    #[case::uid_outside("[user]\nsize = 1000\n", "user.uid", "outside the range")]
    fn bad_values_name_the_field(#[case] text: &str, #[case] field: &str, #[case] what: &str) {
        let e = parse(text).unwrap_err().to_string();
        assert!(
            e.contains(&format!("field `{field}`")) && e.contains(what),
            "{e}"
        );
    }

    #[rstest]
    #[case::caps("[caps]\nkeep = []\n", "caps", "`caps`")]
    #[case::rlimits("[rlimits]\nnofile = 64\n", "rlimits", "`rlimits`")]
    #[case::cgroup("[cgroup]\npids_max = 64\n", "cgroup", "`cgroup-limits`")]
    #[case::seccomp("[seccomp]\nprofile = \"strict\"\n", "seccomp", "`seccomp`")]
    #[case::fs(
        "[fs_hardening]\nread_only_root = true\n",
        "fs_hardening",
        "`fs-hardening`"
    )]
    #[case::mount("[mount]\nsysfs = true\n", "mount", "`mount-ns`")]
    #[case::hostname("hostname = \"x\"\n", "hostname", "`uts-ns`")]
    #[case::user("[user]\nuid = 2000\ngid = 2000\n", "user", "`uid`")]
    fn settings_for_a_layer_that_is_off_are_an_error(
        #[case] section: &str,
        #[case] field: &str,
        #[case] layer: &str,
    ) {
        let text = format!("{section}[layers]\npid-ns = true\n");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains(field), "{err}");
        assert!(err.contains(layer), "{err}");
        assert!(err.contains("is off"), "{err}");
    }

    #[test]
    fn settings_for_a_layer_that_is_on_load() {
        let text =
            "[layers]\ncaps = true\nrlimits = true\n[caps]\nkeep = []\n[rlimits]\nnofile = 64\n";
        let cfg = parse(text).unwrap();
        assert_eq!(cfg.rlimit_nofile(), Some(64));
    }

    const PROFILE_FORMAT: &str = include_str!("../../docs/profile-format.md");

    /// The field names of docs/profile-format.md's table (`section.key`, `key`).
    fn documented_fields() -> BTreeSet<String> {
        PROFILE_FORMAT
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .map(String::from)
            .collect()
    }

    /// Every field of the config struct, as the table names it: maps keyed by the user
    /// (`layers`, `rlimits`) appear once as `<section>.<name>`/`<layer>`.
    fn struct_fields() -> BTreeSet<String> {
        let mut cfg = SandboxConfig::builtin("strict").unwrap();
        cfg.mount.root = Some(PathBuf::from("/"));
        let value = toml::Value::try_from(&cfg).unwrap();
        let mut out = BTreeSet::new();
        for (key, v) in value.as_table().unwrap() {
            match (key.as_str(), v) {
                ("layers", _) => {
                    out.insert("layers.<layer>".to_string());
                }
                ("rlimits", _) => {
                    out.insert("rlimits.<name>".to_string());
                }
                (_, toml::Value::Table(t)) => {
                    out.extend(t.keys().map(|k| format!("{key}.{k}")));
                }
                _ => {
                    out.insert(key.clone());
                }
            }
        }
        // Optional fields left unset do not serialize; the strict profile sets the cgroup ones.
        out
    }

    #[test]
    fn profile_format_doc_names_every_field_and_no_other() {
        let doc = documented_fields();
        let fields = struct_fields();
        let undocumented: Vec<_> = fields.difference(&doc).collect();
        let stale: Vec<_> = doc.difference(&fields).collect();
        assert!(
            undocumented.is_empty() && stale.is_empty(),
            "docs/profile-format.md: undocumented fields {undocumented:?}, documented fields that do not exist {stale:?}"
        );
    }

    #[test]
    fn profile_format_doc_example_loads() {
        let example = PROFILE_FORMAT
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("an example in docs/profile-format.md");
        let cfg = parse(example).unwrap();
        assert_eq!(cfg.name, "web-worker");
        assert_eq!(cfg.pids_max(), Some(32));
    }

    #[test]
    fn a_bind_source_named_in_the_profile_must_exist() {
        let text = "[layers]\nmount-ns = true\n[mount]\nbinds = [\"/usr\", \"/no/such/dir\"]\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains("mount.binds[1]"), "{err}");
        assert!(err.contains("/no/such/dir"), "{err}");
        assert!(err.contains("does not exist"), "{err}");
    }

    #[test]
    fn fs_hardening_without_mount_ns_is_an_explicit_error() {
        let e = parse("[layers]\nfs-hardening = true\n").unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::Requires {
                    layer: Layer::FsHardening,
                    needs: Layer::MountNs,
                    ..
                }
            ),
            "{e}"
        );
        parse("[layers]\nfs-hardening = true\nmount-ns = true\n").unwrap();
    }

    #[test]
    fn rootless_needs_user_ns_for_other_namespaces() {
        let e = parse("rootless = true\n[layers]\nnet-ns = true\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("field `rootless`") && e.contains("user-ns"),
            "{e}"
        );
        parse("rootless = true\n[layers]\nnet-ns = true\nuser-ns = true\n").unwrap();
    }

    /// Every layer alone is a valid configuration, except the one with a declared dependency.
    #[test]
    fn every_layer_alone_validates_or_names_its_requirement() {
        for layer in Layer::ALL {
            let mut cfg = SandboxConfig::builtin("none").unwrap();
            cfg.set_enabled(layer, true);
            if layer == Layer::Seccomp {
                cfg.set_seccomp_profile("strict").unwrap();
            }
            match (cfg.validate(), requires(layer)) {
                (Ok(()), []) => {}
                (Err(ConfigError::Requires { needs, .. }), deps) => assert!(deps.contains(&needs)),
                (r, deps) => panic!("{layer}: {r:?} with requires {deps:?}"),
            }
        }
    }

    #[test]
    fn user_range_defaults_and_outside_ids() {
        let cfg = parse(
            "[layers]\nuid = true\n[user]\nbase = 200000\nsize = 2000\nuid = 1000\ngid = 1001\n",
        )
        .unwrap();
        assert_eq!(
            (cfg.user.outside_uid(), cfg.user.outside_gid()),
            (201000, 201001)
        );
        let d = SandboxConfig::builtin("strict").unwrap().user;
        assert_eq!(d, UserConfig::default());
        assert_eq!((d.base, d.size, d.outside_uid()), (100_000, 65536, 101_000));
    }

    /// Each combination that weakens another layer gives exactly its line; the full profiles
    /// give none of them.
    #[rstest]
    #[case::pid_ns_off("strict", &[], &[Layer::PidNs], "host's /proc is bound into the sandbox")]
    #[case::pid_ns_off_no_user_ns("docker-default", &[], &[Layer::PidNs], "/proc is the host pid namespace's")]
    #[case::daemons("strict", &[], &[Layer::PidNs, Layer::CgroupLimits], "outlive it and the runtime")]
    #[case::real_root("namespaces", &[], &[Layer::UserNs], "the payload is the host's root")]
    #[case::setuid("none", &[Layer::Uid], &[], "a setuid binary")]
    #[case::rlimits("none", &[Layer::Rlimits], &[], "CAP_SYS_RESOURCE")]
    #[case::tiocsti("none", &[Layer::NewSession], &[], "TIOCSTI")]
    #[case::seccomp_all_caps("docker-default", &[], &[Layer::Caps], "resolved against every capability")]
    fn warnings_name_the_weakened_layer(
        #[case] base: &str,
        #[case] enable: &[Layer],
        #[case] disable: &[Layer],
        #[case] want: &str,
    ) {
        let mut cfg = SandboxConfig::builtin(base).unwrap();
        let before: Vec<String> = cfg.warnings();
        assert!(
            !before.iter().any(|w| w.contains(want)),
            "{base}: {before:?}"
        );
        for l in enable {
            cfg.set_enabled(*l, true);
        }
        for l in disable {
            cfg.set_enabled(*l, false);
        }
        if base == "none" && enable == [Layer::Rlimits] {
            cfg.rlimits.insert("nofile".into(), 64);
        }
        let after = cfg.warnings();
        let hits: Vec<&String> = after.iter().filter(|w| w.contains(want)).collect();
        assert_eq!(hits.len(), 1, "{after:?}");
        assert!(
            after.iter().all(|w| !w.contains('\n')),
            "one line each: {after:?}"
        );
    }

    #[test]
    fn strict_and_rootless_have_no_warnings_docker_default_only_its_profiles() {
        for name in ["strict", "rootless"] {
            let w = SandboxConfig::builtin(name).unwrap().warnings();
            assert!(w.is_empty(), "{name}: {w:?}");
        }
        // docker-default: real root outside (no user-ns, no uid), as Docker runs by default,
        // and libseccomp's missing names; nothing else.
        let w = SandboxConfig::builtin("docker-default").unwrap().warnings();
        assert!(w[0].contains("host's root"), "{w:?}");
        assert!(
            w[1..]
                .iter()
                .all(|l| l.contains("libseccomp does not know")),
            "{w:?}"
        );
        assert!(!SandboxConfig::builtin("none")
            .unwrap()
            .warnings()
            .is_empty());
    }

    #[rstest]
    #[case("1024", 1024)]
    #[case("64K", 64 << 10)]
    #[case("256M", 256 << 20)]
    #[case("2G", 2 << 30)]
    #[case("16MiB", 16 << 20)]
    fn sizes(#[case] s: &str, #[case] want: u64) {
        assert_eq!(parse_size(s), Ok(want));
    }

    #[test]
    fn keep_cap_canonicalizes_and_rejects_unknown() {
        let mut cfg = SandboxConfig::builtin("strict").unwrap();
        cfg.keep_cap("sys_admin").unwrap();
        cfg.keep_cap("CAP_SYS_ADMIN").unwrap();
        assert_eq!(cfg.caps.keep, vec!["CAP_SYS_ADMIN".to_string()]);
        assert!(cfg.keep_cap("cap_teleport").is_err());
    }

    #[test]
    fn seccomp_denies_follows_profile_and_kept_caps() {
        let mut cfg = SandboxConfig::builtin("docker-default").unwrap();
        assert_eq!(cfg.seccomp_denies("mount"), Some(true));
        assert_eq!(cfg.seccomp_denies("read"), Some(false));
        assert_eq!(
            cfg.seccomp_denies("clone"),
            None,
            "argument-filtered without CAP_SYS_ADMIN"
        );
        cfg.keep_cap("CAP_SYS_ADMIN").unwrap();
        assert_eq!(cfg.seccomp_denies("mount"), Some(false));
        assert_eq!(cfg.seccomp_denies("clone"), Some(false));
        cfg.set_enabled(Layer::Seccomp, false);
        assert_eq!(cfg.seccomp_denies("mount"), None);
    }

    #[test]
    fn load_reads_files_and_resolves_seccomp_paths_beside_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("deny.toml"), "default_action = \"allow\"\n[[rule]]\naction = \"errno\"\nerrno = \"ENOSYS\"\nnames = [\"keyctl\"]\n").unwrap();
        let p = dir.path().join("p.toml");
        std::fs::write(
            &p,
            "[layers]\nseccomp = true\n[seccomp]\nprofile = \"deny.toml\"\n",
        )
        .unwrap();
        let cfg = SandboxConfig::load(&p).unwrap();
        assert_eq!(cfg.seccomp_denies("keyctl"), Some(true));
        assert_eq!(cfg.seccomp_denies("read"), Some(false));
        let e = SandboxConfig::load(&dir.path().join("missing.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing.toml: cannot read sandbox config"),
            "{e}"
        );
    }
}
