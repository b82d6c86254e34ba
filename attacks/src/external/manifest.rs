//! `probe.toml`: reading and checking a file probe's manifest, and the table of oracles it may
//! name.

use super::{ExternalError, DEFAULT_TIMEOUT, MANIFEST};
use crate::world::VictimKind;
use crate::{Layer, ProbeClass, ProbeMeta};
use serde::Deserialize;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    pub(super) meta: &'static ProbeMeta,
    pub(super) dir: PathBuf,
    pub(super) inside: PathBuf,
    pub(super) timeout: Duration,
    pub(super) oracle: Oracle,
    pub(super) oracle_name: &'static str,
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
