//! Probes from files: a directory with a `probe.toml` (what the probe is, which layers could stop
//! it, which built-in oracle judges it) and an inside half that is any executable (a shell
//! script, a static binary) taking the same `key=value` arguments the built-in probes take.
//!
//! The outside half is never the user's code: the oracle named in `probe.toml` arranges the world
//! and judges from outside with the code the built-in probes use (most oracles *are* a built-in
//! probe's outside half: `victim-killed` arranges and judges exactly as `signal-outside` does).
//! The inside half's output is evidence only: `breakout-probe ID ARGS` runs the executable, turns
//! every line it prints into a step of the report (a line ending in ` = ENAME` is a failed step
//! with that errno), and the oracle decides.
//!
//! Registration: the registry hands out `&'static dyn Probe`, and built-in probes are statics. A
//! file probe is loaded at run time, so its metadata and the probe itself are leaked with
//! `Box::leak`: it is registered once per process (the host before the plan, the guest
//! orchestrator from the plan, `breakout-probe` for the one id it runs), lives as long as the
//! process anyway, and a few hundred bytes per probe are a bounded cost.

use crate::world::{Planted, VictimKind, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Where the harness puts file probes in the guest: under /usr, which the mount-ns layer binds,
/// so the inside half is visible in every sandbox.
pub const GUEST_PROBES_DIR: &str = "/usr/lib/breakout-probes";

/// Extra directories (colon-separated) `breakout-probe` searches for a file probe it does not
/// know, before [`GUEST_PROBES_DIR`] (for runs outside the VM: tests, `--self-check`).
pub const PROBE_PATH_ENV: &str = "BREAKOUT_PROBE_PATH";

/// The manifest's file name.
pub const MANIFEST: &str = "probe.toml";

/// How long the inside half may run when `probe.toml` gives no `timeout` (below the harness's
/// default per-launch timeout of 20 s, so the probe's own limit acts first).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{path}: field `{field}`: {message}")]
    Field {
        path: PathBuf,
        field: String,
        message: String,
    },
    #[error("{dir}: no {MANIFEST} in it or in any directory under it")]
    NoProbes { dir: PathBuf },
    #[error("probe id `{id}` ({path}) is already taken by {by}")]
    Duplicate {
        id: String,
        path: PathBuf,
        by: String,
    },
}

/// The oracles a file probe can name, with the arguments its inside half receives and what it
/// must do for the oracle to see an escape. `breakout new-probe --oracle`, the docs and the
/// error for an unknown name all read this table.
pub const ORACLES: &[OracleDoc] = &[
    OracleDoc {
        name: "secret-file",
        args: "path=FILE",
        task: "FILE lies outside the sandbox's root, readable by root only, and holds a fresh secret: print its content",
        params: "",
    },
    OracleDoc {
        name: "victim-memory",
        args: "pid=PID addr=0xADDR len=N",
        task: "a victim process outside holds a fresh secret in its heap at ADDR (N bytes) and in its environment (BREAKOUT_VICTIM_SECRET): print it",
        params: "victim = \"root\" (default) or \"same-uid\" (runs as uid 1000, the sandbox's uid)",
    },
    OracleDoc {
        name: "victim-killed",
        args: "pid=PID",
        task: "kill the victim process PID outside the sandbox; the outside watches it through a pidfd",
        params: "victim = \"root\" (default) or \"same-uid\"",
    },
    OracleDoc {
        name: "listener",
        args: "port=PORT",
        task: "a TCP service on the outside's 127.0.0.1:PORT hands a fresh secret to every client: print it",
        params: "",
    },
    OracleDoc {
        name: "hostname",
        args: "name=NAME",
        task: "set the machine's hostname to NAME (the outside reads its own hostname, and restores it)",
        params: "",
    },
    OracleDoc {
        name: "clock",
        args: "offset_s=N",
        task: "move the machine's wall clock forward by N seconds (the outside measures the jump, and restores it)",
        params: "",
    },
    OracleDoc {
        name: "kernel-log",
        args: "kmsg=/dev/kmsg tag=TAG",
        task: "the kernel log holds a line `breakout-kernel-log-canary:TAG:SECRET`: print it",
        params: "",
    },
    OracleDoc {
        name: "file-outside",
        args: "path=FILE content=TEXT",
        task: "create FILE (in a root-owned directory outside the sandbox's root) holding TEXT",
        params: "",
    },
    OracleDoc {
        name: "sysctl",
        args: "path=/proc/sys/KEY value=VALUE",
        task: "write VALUE into the sysctl (the outside compares the value it reads, and restores the original)",
        params: "key = \"kernel.core_pattern\" (default) or another writable string sysctl; value = \"...\" (`{nonce}` is replaced by a fresh nonce; default for core_pattern: \"|/bin/false breakout-{nonce}\")",
    },
    OracleDoc {
        name: "cgroup-pids",
        args: "count=N hold_ms=MS",
        task: "have N processes alive at once for MS milliseconds (N is past the profile's process limit; the outside samples the cgroup's counter)",
        params: "",
    },
    OracleDoc {
        name: "cgroup-memory",
        args: "bytes=N hold_ms=MS",
        task: "hold N bytes of memory for MS milliseconds (past the profile's memory limit; the outside reads the cgroup's peak)",
        params: "",
    },
];

/// One row of [`ORACLES`].
#[derive(Debug, Clone, Copy)]
pub struct OracleDoc {
    pub name: &'static str,
    /// The `key=value` arguments the inside half receives.
    pub args: &'static str,
    /// What the inside half must do.
    pub task: &'static str,
    /// Parameters `[oracle]` takes besides `name`.
    pub params: &'static str,
}

/// The oracle names, for messages.
pub fn oracle_names() -> Vec<&'static str> {
    ORACLES.iter().map(|o| o.name).collect()
}

/// A parsed, checked oracle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Oracle {
    SecretFile,
    /// The outside half of this built-in probe (same arguments, same judge).
    Builtin(&'static str),
    FileOutside,
    Sysctl {
        key: String,
        value: String,
    },
}

/// A file probe, loaded and checked.
#[derive(Debug)]
pub struct ExternalProbe {
    meta: &'static ProbeMeta,
    dir: PathBuf,
    inside: PathBuf,
    timeout: Duration,
    oracle: Oracle,
    oracle_name: &'static str,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    id: String,
    title: String,
    #[serde(default)]
    technique: String,
    #[serde(default)]
    references: Vec<String>,
    layers: Vec<String>,
    #[serde(default)]
    class: Option<String>,
    #[serde(default)]
    timeout: Option<u64>,
    #[serde(default = "default_inside")]
    inside: String,
    oracle: toml::Table,
}

fn default_inside() -> String {
    "inside.sh".to_string()
}

impl ExternalProbe {
    /// Reads and checks `dir/probe.toml` and the inside half it names. Every error names the
    /// file and the field.
    pub fn load(dir: &Path) -> Result<ExternalProbe, ExternalError> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| ExternalError::File {
            path: path.clone(),
            message: format!("cannot read it: {e}"),
        })?;
        let manifest: Manifest = toml::from_str(&text).map_err(|e| ExternalError::File {
            path: path.clone(),
            message: e.message().to_string()
                + &e.span()
                    .map(|s| format!(" (line {})", line_of(&text, s.start)))
                    .unwrap_or_default(),
        })?;
        let field = |field: &str, message: String| ExternalError::Field {
            path: path.clone(),
            field: field.to_string(),
            message,
        };
        if !valid_id(&manifest.id) {
            return Err(field(
                "id",
                format!(
                    "`{}` is not a probe id (lower-case letters, digits and `-`, starting with a letter)",
                    manifest.id
                ),
            ));
        }
        if manifest.title.trim().is_empty() {
            return Err(field("title", "is empty".into()));
        }
        let mut layers = Vec::new();
        for name in &manifest.layers {
            let layer: Layer = name.parse().map_err(|_| {
                field(
                    "layers",
                    format!(
                        "unknown layer `{name}` (known: {})",
                        Layer::ALL.map(|l| l.name()).join(", ")
                    ),
                )
            })?;
            if !layers.contains(&layer) {
                layers.push(layer);
            }
        }
        let (oracle, oracle_name) =
            parse_oracle(&manifest.oracle).map_err(|(f, m)| field(&f, m))?;
        let natural = match oracle {
            Oracle::Builtin("fork-bomb") | Oracle::Builtin("memory-hog") => ProbeClass::Resource,
            _ => ProbeClass::Plain,
        };
        let class = match manifest.class.as_deref() {
            None => natural,
            Some("plain") if natural == ProbeClass::Plain => ProbeClass::Plain,
            Some("resource") => ProbeClass::Resource,
            Some("plain") => {
                return Err(field(
                    "class",
                    format!(
                        "the `{oracle_name}` oracle eats a resource: the class must be `resource`"
                    ),
                ))
            }
            Some(other) => {
                return Err(field(
                    "class",
                    format!("unknown class `{other}` (known: plain, resource)"),
                ))
            }
        };
        let timeout = match manifest.timeout {
            None => DEFAULT_TIMEOUT,
            Some(0) => return Err(field("timeout", "must be at least 1 second".into())),
            Some(s) => Duration::from_secs(s),
        };
        if manifest.inside.contains("..") || Path::new(&manifest.inside).is_absolute() {
            return Err(field(
                "inside",
                format!(
                    "`{}` must be a file inside the probe's directory (it travels into the VM with it)",
                    manifest.inside
                ),
            ));
        }
        let inside = dir.join(&manifest.inside);
        let meta = std::fs::metadata(&inside).map_err(|e| {
            field(
                "inside",
                format!("the inside half {} cannot be read: {e}", inside.display()),
            )
        })?;
        if !meta.is_file() {
            return Err(field(
                "inside",
                format!("the inside half {} is not a regular file", inside.display()),
            ));
        }
        // Every bit: the payload may run as uid 1000, which needs o+x (and o+r for a script).
        if meta.permissions().mode() & 0o001 == 0 {
            return Err(field(
                "inside",
                format!(
                    "the inside half {} is not executable by everyone (mode {:o}; the sandbox may run it as uid 1000): chmod 755 it",
                    inside.display(),
                    meta.permissions().mode() & 0o7777
                ),
            ));
        }
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        let references: Vec<&'static str> = manifest.references.into_iter().map(leak).collect();
        let meta: &'static ProbeMeta = Box::leak(Box::new(ProbeMeta {
            id: leak(manifest.id),
            title: leak(manifest.title),
            technique: leak(manifest.technique),
            oracle: oracle_text(oracle_name),
            layers: Box::leak(layers.into_boxed_slice()),
            references: Box::leak(references.into_boxed_slice()),
            class,
        }));
        Ok(ExternalProbe {
            meta,
            dir: dir.to_path_buf(),
            inside,
            timeout,
            oracle,
            oracle_name,
        })
    }

    /// The probe's directory (as loaded).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The oracle's name as `probe.toml` gives it.
    pub fn oracle_name(&self) -> &'static str {
        self.oracle_name
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// True for a well-formed probe id: lower-case letters, digits and `-`, starting with a letter.
pub fn valid_id(id: &str) -> bool {
    id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && id.len() <= 64
}

fn oracle_text(name: &str) -> &'static str {
    match name {
        "secret-file" => "The fresh secret of a root-only file outside the sandbox's root is in the inside's output.",
        "victim-memory" => "The fresh secret a victim process outside holds in its memory is in the inside's output.",
        "victim-killed" => "The victim outside is dead, as seen through the pidfd the outside holds on it.",
        "listener" => "The secret the outside's loopback TCP service hands out is in the inside's output.",
        "hostname" => "The outside's own hostname equals the name the inside was asked to set.",
        "clock" => "The outside's wall clock jumped by the offset the inside was given.",
        "kernel-log" => "The kernel-log canary's fresh secret is in the inside's output.",
        "file-outside" => "The file outside the sandbox's root exists and holds the outside's nonce.",
        "sysctl" => "The sysctl, read from outside, holds the value with the outside's nonce (restored after).",
        "cgroup-pids" => "The outside's sampler saw more processes in the sandbox's cgroup than the profile's limit.",
        "cgroup-memory" => "The sandbox's cgroup used more memory than the profile's limit.",
        _ => "",
    }
}

/// Parses `[oracle]`; an error is (field, message).
fn parse_oracle(table: &toml::Table) -> Result<(Oracle, &'static str), (String, String)> {
    let name = match table.get("name") {
        Some(toml::Value::String(s)) => s.as_str(),
        Some(_) => return Err(("oracle.name".into(), "must be a string".into())),
        None => {
            return Err((
                "oracle.name".into(),
                format!("missing (one of: {})", oracle_names().join(", ")),
            ))
        }
    };
    let Some(doc) = ORACLES.iter().find(|o| o.name == name) else {
        return Err((
            "oracle.name".into(),
            format!(
                "unknown oracle `{name}` (known: {})",
                oracle_names().join(", ")
            ),
        ));
    };
    let allowed: &[&str] = match doc.name {
        "victim-memory" | "victim-killed" => &["name", "victim"],
        "sysctl" => &["name", "key", "value"],
        _ => &["name"],
    };
    if let Some(extra) = table.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err((
            format!("oracle.{extra}"),
            format!(
                "the `{name}` oracle takes no parameter `{extra}`{}",
                if doc.params.is_empty() {
                    String::new()
                } else {
                    format!(" (it takes: {})", doc.params)
                }
            ),
        ));
    }
    let string = |key: &str| -> Result<Option<String>, (String, String)> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err((format!("oracle.{key}"), "must be a string".into())),
        }
    };
    let victim = || -> Result<VictimKind, (String, String)> {
        match string("victim")?.as_deref() {
            None | Some("root") => Ok(VictimKind::Root),
            Some("same-uid") => Ok(VictimKind::SandboxUid),
            Some(other) => Err((
                "oracle.victim".into(),
                format!("unknown victim `{other}` (known: root, same-uid)"),
            )),
        }
    };
    let oracle = match doc.name {
        "secret-file" => Oracle::SecretFile,
        "victim-memory" => Oracle::Builtin(match victim()? {
            VictimKind::Root => "ptrace-outside",
            VictimKind::SandboxUid => "ptrace-same-uid",
        }),
        "victim-killed" => Oracle::Builtin(match victim()? {
            VictimKind::Root => "signal-outside",
            VictimKind::SandboxUid => "signal-same-uid",
        }),
        "listener" => Oracle::Builtin("host-loopback"),
        "hostname" => Oracle::Builtin("hostname"),
        "clock" => Oracle::Builtin("clock"),
        "kernel-log" => Oracle::Builtin("kernel-log"),
        "file-outside" => Oracle::FileOutside,
        "cgroup-pids" => Oracle::Builtin("fork-bomb"),
        "cgroup-memory" => Oracle::Builtin("memory-hog"),
        "sysctl" => {
            let key = string("key")?.unwrap_or_else(|| "kernel.core_pattern".to_string());
            let ok = !key.is_empty()
                && !key.contains("..")
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
            if !ok {
                return Err(("oracle.key".into(), format!("`{key}` is not a sysctl name")));
            }
            let value = match string("value")? {
                Some(v) => v,
                None if key == "kernel.core_pattern" => "|/bin/false breakout-{nonce}".into(),
                None => {
                    return Err((
                        "oracle.value".into(),
                        format!("missing: the value the inside writes into {key} (`{{nonce}}` is replaced by a fresh nonce)"),
                    ))
                }
            };
            if !value.contains("{nonce}") {
                return Err((
                    "oracle.value".into(),
                    "must contain `{nonce}`, so the outside can tell this attempt's write from any other value".into(),
                ));
            }
            Oracle::Sysctl { key, value }
        }
        other => unreachable!("oracle {other} is in ORACLES but not parsed"),
    };
    Ok((oracle, doc.name))
}

/// The layers a new probe with this oracle starts with in its skeleton: the candidates of the
/// built-in probe whose outside half the oracle is, else a list for the oracle's own world.
pub fn default_layers(oracle: &str) -> Vec<Layer> {
    let table = toml::Table::from_iter([("name".to_string(), toml::Value::from(oracle))]);
    match parse_oracle(&table) {
        Ok((Oracle::Builtin(id), _)) => crate::probe(id)
            .map(|p| p.meta().layers.to_vec())
            .unwrap_or_default(),
        Ok((Oracle::SecretFile | Oracle::FileOutside, _)) => {
            vec![Layer::MountNs, Layer::Uid, Layer::UserNs]
        }
        Ok((Oracle::Sysctl { .. }, _)) => crate::probe("core-pattern")
            .map(|p| p.meta().layers.to_vec())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// Which directories under `path` are file probes: `path` itself when it holds a probe.toml,
/// else every directory directly under it that does (sorted by name).
pub fn probe_dirs(path: &Path) -> Result<Vec<PathBuf>, ExternalError> {
    if path.join(MANIFEST).is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|e| ExternalError::File {
        path: path.to_path_buf(),
        message: format!("cannot read the probe directory: {e}"),
    })?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join(MANIFEST).is_file())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(ExternalError::NoProbes {
            dir: path.to_path_buf(),
        });
    }
    Ok(dirs)
}

static REGISTERED: RwLock<Vec<&'static ExternalProbe>> = RwLock::new(Vec::new());

fn registered_list() -> Vec<&'static ExternalProbe> {
    match REGISTERED.read() {
        Ok(list) => list.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

/// Every registered file probe (what [`crate::all_probes`] appends).
pub fn registered() -> Vec<&'static dyn Probe> {
    registered_list()
        .into_iter()
        .map(|p| p as &'static dyn Probe)
        .collect()
}

/// The registered file probe with this id.
pub fn external(id: &str) -> Option<&'static ExternalProbe> {
    registered_list().into_iter().find(|p| p.meta.id == id)
}

/// True when `id` is a registered file probe.
pub fn is_external(id: &str) -> bool {
    external(id).is_some()
}

/// Loads the probe in `dir` and adds it to the registry; a duplicate id (of a built-in probe or
/// of another file probe) is an error naming both. Registering the same directory twice is a
/// no-op (the host and a test may both load it).
pub fn register(dir: &Path) -> Result<&'static ExternalProbe, ExternalError> {
    let probe = ExternalProbe::load(dir)?;
    let id = probe.meta.id;
    let mut list = match REGISTERED.write() {
        Ok(l) => l,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(same) = list.iter().find(|p| p.meta.id == id) {
        if same.dir == probe.dir {
            return Ok(same);
        }
        return Err(ExternalError::Duplicate {
            id: id.to_string(),
            path: dir.join(MANIFEST),
            by: format!("the file probe in {}", same.dir.display()),
        });
    }
    if crate::all_builtin().iter().any(|p| p.meta().id == id) {
        return Err(ExternalError::Duplicate {
            id: id.to_string(),
            path: dir.join(MANIFEST),
            by: "a built-in probe (`breakout list probes`)".to_string(),
        });
    }
    let leaked: &'static ExternalProbe = Box::leak(Box::new(probe));
    list.push(leaked);
    Ok(leaked)
}

/// Registers every probe under `path` (see [`probe_dirs`]); returns their ids in order.
pub fn register_all(path: &Path) -> Result<Vec<&'static ExternalProbe>, ExternalError> {
    probe_dirs(path)?.iter().map(|d| register(d)).collect()
}

/// For `breakout-probe ID`: finds the file probe `id` in [`PROBE_PATH_ENV`]'s directories or in
/// [`GUEST_PROBES_DIR`] and registers it.
pub fn find_installed(id: &str) -> Option<&'static ExternalProbe> {
    if !valid_id(id) {
        return None;
    }
    if let Some(p) = external(id) {
        return Some(p);
    }
    let mut roots: Vec<PathBuf> = std::env::var(PROBE_PATH_ENV)
        .map(|v| {
            v.split(':')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default();
    roots.push(PathBuf::from(GUEST_PROBES_DIR));
    for root in roots {
        // A probe directory may be the root itself or named after the id under it.
        for dir in [root.join(id), root.clone()] {
            if let Ok(p) = ExternalProbe::load(&dir) {
                if p.meta.id == id {
                    return register(&dir).ok();
                }
            }
        }
    }
    None
}

/// The outside state of an oracle that is not a built-in probe's.
enum OwnState {
    SecretFile {
        _file: Planted,
        secret: String,
    },
    FileOutside {
        dir: Planted,
        path: PathBuf,
        nonce: String,
    },
    Sysctl {
        restore: crate::kit::SysctlRestore,
        wanted: String,
        _exclusive: crate::world::ExclusiveGuard,
    },
}

impl Probe for ExternalProbe {
    fn meta(&self) -> &'static ProbeMeta {
        self.meta
    }

    fn arrange(&self, world: &World, limits: &Limits) -> Result<Arrangement, ProbeError> {
        let id = self.meta.id;
        match &self.oracle {
            Oracle::Builtin(builtin) => match crate::probe(builtin) {
                Some(p) => p.arrange(world, limits),
                None => Err(ProbeError::Unsupported {
                    probe: id,
                    reason: format!("the built-in probe `{builtin}` behind the oracle is missing"),
                }),
            },
            Oracle::SecretFile => {
                let (file, secret) = crate::kit::plant_canary_file(world, id, "file-probe-canary")?;
                Ok(Arrangement::new(
                    vec![kv("path", file.path().display())],
                    OwnState::SecretFile {
                        _file: file,
                        secret,
                    },
                ))
            }
            Oracle::FileOutside => {
                let dir = world
                    .scratch_dir("file-outside")
                    .map_err(ProbeError::world(id))?;
                let nonce = world.fresh_secret().map_err(ProbeError::world(id))?;
                let path = dir.path().join("created-by-the-sandbox");
                Ok(Arrangement::new(
                    vec![kv("path", path.display()), kv("content", &nonce)],
                    OwnState::FileOutside { dir, path, nonce },
                ))
            }
            Oracle::Sysctl { key, value } => {
                // Machine-wide state: one attempt on this sysctl at a time (the name is the one
                // core-pattern and reboot hold for theirs), so no attempt captures another's value
                // as the original.
                let exclusive = world
                    .exclusive(&format!("sysctl {key}"), crate::world::EXCLUSIVE_WAIT)
                    .map_err(ProbeError::world(id))?;
                let nonce = world.fresh_secret().map_err(ProbeError::world(id))?;
                let path = Path::new("/proc/sys").join(key.replace('.', "/"));
                let restore = crate::kit::SysctlRestore::capture(&path).map_err(|e| {
                    ProbeError::Unsupported {
                        probe: id,
                        reason: format!("sysctl {key}: {e}"),
                    }
                })?;
                let wanted = value.replace("{nonce}", &nonce[..16]);
                Ok(Arrangement::new(
                    vec![kv("path", path.display()), kv("value", &wanted)],
                    OwnState::Sysctl {
                        restore,
                        wanted,
                        _exclusive: exclusive,
                    },
                ))
            }
        }
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        run_inside_half(self.meta.id, &self.inside, args, self.timeout)
    }

    fn judge(&self, world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        use crate::kit::{conclude, Oracle as Seen};
        if let Oracle::Builtin(builtin) = &self.oracle {
            return match crate::probe(builtin) {
                Some(p) => p.judge(world, arrangement, run),
                None => Judgement::inconclusive(format!("the built-in `{builtin}` is missing")),
            };
        }
        let Ok(state) = arrangement.state.downcast::<OwnState>() else {
            return crate::kit::wrong_state(self.meta.id);
        };
        let seen = match &*state {
            OwnState::SecretFile { secret, .. } => {
                crate::kit::secret_oracle(run, secret, "the secret file's content")
            }
            OwnState::FileOutside { path, nonce, dir } => {
                let found = std::fs::read_to_string(path);
                let listing: Vec<String> = std::fs::read_dir(dir.path())
                    .map(|d| {
                        d.filter_map(|e| e.ok())
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                match found {
                    Ok(text) if text.contains(nonce.as_str()) => Seen::Hit(format!(
                        "{} was created outside the sandbox with the nonce",
                        path.display()
                    )),
                    Ok(_) => {
                        Seen::Undecided(format!("{} exists without the nonce", path.display()))
                    }
                    Err(_) if listing.is_empty() => Seen::Miss(format!(
                        "{} was not created (its directory is empty)",
                        path.display()
                    )),
                    Err(_) => Seen::Undecided(format!(
                        "{} missing, but the directory holds {}",
                        path.display(),
                        listing.join(", ")
                    )),
                }
            }
            OwnState::Sysctl {
                restore, wanted, ..
            } => {
                match restore.current() {
                    Ok(now) => {
                        let seen = if &now == wanted {
                            Seen::Hit(format!(
                                "the sysctl became {now:?} (restored to {:?})",
                                restore.original()
                            ))
                        } else if now != restore.original() {
                            Seen::Undecided(format!("the sysctl changed to {now:?}, not to this attempt's value (restored)"))
                        } else {
                            Seen::Miss("the sysctl is unchanged".to_string())
                        };
                        if let Err(e) = restore.restore() {
                            return Judgement::inconclusive(format!(
                                "could not restore the sysctl: {e}"
                            ));
                        }
                        seen
                    }
                    Err(e) => Seen::Undecided(format!("reading the sysctl from outside: {e}")),
                }
            }
        };
        conclude(seen, run)
    }
}

/// The inside half's wrapper (runs in the sandbox, inside `breakout-probe ID ARGS`): runs the
/// executable with the arguments, every stdout line becomes a step (evidence for the oracle; a
/// line ending in ` = ENAME` is a failed step with that errno), then one step with its exit.
pub fn run_inside_half(
    id: &str,
    program: &Path,
    args: &[String],
    timeout: Duration,
) -> InsideReport {
    let mut steps = Steps::new(id);
    let shown = format!("execve({}, ...)", program.display());
    let child = crate::kit::io_keep(&mut steps, "start the inside half", shown, || {
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
    });
    let Some(mut child) = child else {
        return steps.finish();
    };
    let stdout = crate::pipe::drain(child.stdout.take());
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => break None,
        }
    };
    let out = stdout.collect();
    for line in String::from_utf8_lossy(&out).lines() {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        record_line(&mut steps, line);
    }
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(s) if timed_out => {
            steps.note(
                "the inside half ran past its timeout",
                format!("killed after {} s", timeout.as_secs()),
            );
            if let Some(sig) = s.signal() {
                steps.signal(sig);
            }
        }
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => {
                steps.call("the inside half exited", format!("exit({code})"), || {
                    Ok(i64::from(code))
                });
            }
            (None, Some(sig)) => {
                steps.note("the inside half was killed", format!("signal {sig}"));
                steps.signal(sig);
            }
            (None, None) => steps.note("the inside half ended", "no exit status"),
        },
        None => steps.note("the inside half ended", "waiting for it failed"),
    }
    steps.finish()
}

/// One line of the inside half's stdout as a step.
fn record_line(steps: &mut Steps, line: &str) {
    if let Some((what, errno)) = line.rsplit_once(" = ") {
        if let Some(n) = errno_number(errno.trim()) {
            let what = what.trim().to_string();
            steps.call::<()>("the inside half reported", what, || {
                Err(nix::errno::Errno::from_raw(n))
            });
            return;
        }
    }
    // A successful step named after where the line came from, so a reason that quotes the step
    // reads "came back from `write(stdout)`".
    steps.call("the inside half printed", "write(stdout)", || Ok(0i64));
    steps.data(line.to_string());
}

/// The number of an errno name (`EPERM`), for the names a script is likely to print.
fn errno_number(name: &str) -> Option<i32> {
    let table: BTreeMap<&str, i32> = [
        ("EPERM", libc::EPERM),
        ("ENOENT", libc::ENOENT),
        ("ESRCH", libc::ESRCH),
        ("EINTR", libc::EINTR),
        ("EIO", libc::EIO),
        ("E2BIG", libc::E2BIG),
        ("EBADF", libc::EBADF),
        ("ECHILD", libc::ECHILD),
        ("EAGAIN", libc::EAGAIN),
        ("ENOMEM", libc::ENOMEM),
        ("EACCES", libc::EACCES),
        ("EFAULT", libc::EFAULT),
        ("EBUSY", libc::EBUSY),
        ("EEXIST", libc::EEXIST),
        ("ENODEV", libc::ENODEV),
        ("ENOTDIR", libc::ENOTDIR),
        ("EISDIR", libc::EISDIR),
        ("EINVAL", libc::EINVAL),
        ("EMFILE", libc::EMFILE),
        ("ENOSPC", libc::ENOSPC),
        ("EROFS", libc::EROFS),
        ("ENOSYS", libc::ENOSYS),
        ("ENOTSUP", libc::ENOTSUP),
        ("EOPNOTSUPP", libc::EOPNOTSUPP),
        ("ECONNREFUSED", libc::ECONNREFUSED),
        ("ENETUNREACH", libc::ENETUNREACH),
        ("ETIMEDOUT", libc::ETIMEDOUT),
    ]
    .into_iter()
    .collect();
    table.get(name).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    pub(crate) fn write_probe(dir: &Path, toml: &str, script: &str, mode: u32) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(MANIFEST), toml).unwrap();
        let inside = dir.join("inside.sh");
        std::fs::write(&inside, script).unwrap();
        std::fs::set_permissions(&inside, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    const GOOD: &str = r#"
id = "demo-kill"
title = "kill a root process outside"
layers = ["pid-ns", "uid"]
[oracle]
name = "victim-killed"
"#;

    #[test]
    fn a_good_manifest_loads() {
        let tmp = tempfile::tempdir().unwrap();
        write_probe(
            tmp.path(),
            GOOD,
            "#!/bin/sh\nkill -9 \"${1#pid=}\"\n",
            0o755,
        );
        let p = ExternalProbe::load(tmp.path()).unwrap();
        assert_eq!(p.meta().id, "demo-kill");
        assert_eq!(p.meta().layers, &[Layer::PidNs, Layer::Uid]);
        assert_eq!(p.oracle, Oracle::Builtin("signal-outside"));
        assert_eq!(p.meta().class, ProbeClass::Plain);
    }

    fn load_err(toml: &str, mode: u32) -> String {
        let tmp = tempfile::tempdir().unwrap();
        write_probe(tmp.path(), toml, "#!/bin/sh\n", mode);
        ExternalProbe::load(tmp.path()).unwrap_err().to_string()
    }

    #[test]
    fn bad_manifests_name_the_file_and_the_field() {
        let e = load_err(&GOOD.replace("victim-killed", "victim-kiled"), 0o755);
        assert!(
            e.contains("probe.toml: field `oracle.name`: unknown oracle `victim-kiled`"),
            "{e}"
        );
        let e = load_err(&GOOD.replace("\"uid\"", "\"uidd\""), 0o755);
        assert!(e.contains("field `layers`: unknown layer `uidd`"), "{e}");
        let e = load_err(GOOD, 0o644);
        assert!(
            e.contains("field `inside`") && e.contains("not executable"),
            "{e}"
        );
        let e = load_err(&GOOD.replace("demo-kill", "Demo"), 0o755);
        assert!(e.contains("field `id`"), "{e}");
        let e = load_err(&format!("{GOOD}victim = \"nobody\"\n"), 0o755);
        assert!(e.contains("field `oracle.victim`"), "{e}");
        let e = load_err(&format!("{GOOD}port = 1\n"), 0o755);
        assert!(e.contains("field `oracle.port`"), "{e}");
        let e = load_err("id = \"x\"\n", 0o755);
        assert!(e.contains("probe.toml: missing field `title`"), "{e}");
        let e = load_err(
            &GOOD.replace("\"victim-killed\"", "\"sysctl\"\nkey = \"vm.swappiness\""),
            0o755,
        );
        assert!(e.contains("field `oracle.value`"), "{e}");
    }

    #[test]
    fn resource_oracles_make_resource_probes() {
        let tmp = tempfile::tempdir().unwrap();
        write_probe(
            tmp.path(),
            &GOOD.replace("victim-killed", "cgroup-pids"),
            "#!/bin/sh\n",
            0o755,
        );
        let p = ExternalProbe::load(tmp.path()).unwrap();
        assert_eq!(p.meta().class, ProbeClass::Resource);
        let e = load_err(
            &GOOD
                .replace("victim-killed", "cgroup-pids")
                .replace("[oracle]", "class = \"plain\"\n[oracle]"),
            0o755,
        );
        assert!(e.contains("field `class`"), "{e}");
    }

    #[test]
    fn duplicates_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        let b = tmp.path().join("b");
        let toml = GOOD.replace("demo-kill", "dup-test-probe");
        write_probe(&a, &toml, "#!/bin/sh\n", 0o755);
        write_probe(&b, &toml, "#!/bin/sh\n", 0o755);
        register(&a).unwrap();
        register(&a).unwrap();
        let e = register(&b).unwrap_err().to_string();
        assert!(e.contains("already taken by the file probe in"), "{e}");
        let c = tmp.path().join("c");
        write_probe(
            &c,
            &GOOD.replace("demo-kill", "hostname"),
            "#!/bin/sh\n",
            0o755,
        );
        let e = register(&c).unwrap_err().to_string();
        assert!(e.contains("already taken by a built-in probe"), "{e}");
        assert!(crate::probe("dup-test-probe").is_some());
    }

    #[test]
    fn the_inside_half_output_becomes_steps() {
        let tmp = tempfile::tempdir().unwrap();
        write_probe(
            tmp.path(),
            GOOD,
            "#!/bin/sh\necho \"got $1\"\necho 'kill(12, SIGKILL) = EPERM'\nexit 3\n",
            0o755,
        );
        let report = run_inside_half(
            "demo",
            &tmp.path().join("inside.sh"),
            &["pid=12".to_string()],
            Duration::from_secs(5),
        );
        assert!(report.data_contains("got pid=12"), "{report:?}");
        assert_eq!(report.failures(), "kill(12, SIGKILL) = EPERM");
        assert_eq!(report.steps.last().unwrap().result, Some(3));
    }

    #[test]
    fn a_hanging_inside_half_is_killed_at_its_timeout() {
        let tmp = tempfile::tempdir().unwrap();
        write_probe(tmp.path(), GOOD, "#!/bin/sh\nexec sleep 30\n", 0o755);
        let t = Instant::now();
        let report = run_inside_half(
            "demo",
            &tmp.path().join("inside.sh"),
            &[],
            Duration::from_millis(300),
        );
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(report.data_contains("killed after"), "{report:?}");
    }
}
