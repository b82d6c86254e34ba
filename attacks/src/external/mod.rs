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
//!
//! One module per job: `manifest` reads and checks `probe.toml` (and documents the oracles),
//! `outside` is the outside half (arrange and judge with the oracle), `inside` is the inside
//! half's wrapper; this file keeps the registry.

mod inside;
mod manifest;
mod outside;

pub use inside::run_inside_half;
pub use manifest::{
    default_layers, oracle_names, probe_dirs, valid_id, ExternalProbe, Oracle, OracleDoc, ORACLES,
};

use crate::Probe;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::Duration;

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
#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Layer, ProbeClass};
    use std::os::unix::fs::PermissionsExt;
    use std::time::Instant;

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
