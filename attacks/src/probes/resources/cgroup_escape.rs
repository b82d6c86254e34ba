//! cgroup-escape: lift the pids limit of the cgroup the outside put the payload in.

use crate::kit::{conclude, parse_or_report, Oracle};
use crate::world::{SafetyCgroup, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use std::fs;
use std::path::{Path, PathBuf};

/// The limit the outside sets lies in [BASE_LIMIT, BASE_LIMIT + SPREAD): high enough never to
/// bite, random so that no other writer can produce it by accident.
const BASE_LIMIT: u64 = 5000;
const SPREAD: u64 = 4000;

static META: ProbeMeta = ProbeMeta {
    id: "cgroup-escape",
    title: "Raise the limits of one's own cgroup",
    technique: "Resource limits live in cgroupfs files (pids.max, memory.max) that anyone with \
        write access can change, and a process that can write a parent's cgroup.procs can leave \
        its group. The inside reads its own cgroup path from /proc/self/cgroup and writes 'max' \
        to pids.max of that cgroup and of its parent (a runtime's leaf sits below the cgroup the \
        outside watches). A cgroup namespace hides the real path, a mount namespace without \
        cgroupfs or a read-only mount hides the files, and the files are root's.",
    oracle: "pids.max of the cgroup the outside placed the payload in, read by the outside, is \
        no longer the random limit it set.",
    layers: &[
        Layer::CgroupNs,
        Layer::MountNs,
        Layer::FsHardening,
        Layer::Uid,
        Layer::UserNs,
        Layer::Seccomp,
        Layer::Landlock,
    ],
    references: &[
        "CDK lxcfs_rw_cgroup exploit",
        "cgroups(7): delegation and cgroup namespaces",
    ],
    class: ProbeClass::Plain,
};

pub struct CgroupEscape;

struct State {
    cgroup: SafetyCgroup,
    limit: u64,
}

/// The verdict on pids.max read after the attempt.
fn classify(current: Option<&str>, limit: u64) -> Oracle {
    match current.map(str::trim) {
        Some(v) if v == limit.to_string() => Oracle::Miss(format!("pids.max still {limit}")),
        Some(v) => Oracle::Hit(format!("pids.max went from {limit} to {v}")),
        None => Oracle::Undecided("pids.max of the watched cgroup is unreadable".to_string()),
    }
}

/// The cgroup v2 path in a /proc/self/cgroup listing ("0::/a/b").
fn unified_path(listing: &str) -> Option<String> {
    listing
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
}

impl Probe for CgroupEscape {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let id = META.id;
        let salt = world.fresh_secret().map_err(ProbeError::world(id))?;
        let limit = BASE_LIMIT + u64::from_str_radix(&salt[..8], 16).unwrap_or(0) % SPREAD;
        let cgroup = world
            .safety_cgroup("cgroup-escape", Some(limit), None)
            .map_err(ProbeError::world(id))?;
        let path = cgroup.path().to_path_buf();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Arrangement::new(
            vec![kv("cgroupfs", "/sys/fs/cgroup"), kv("stop_at", name)],
            State { cgroup, limit },
        )
        .with_cgroup(path))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        if let Some((root, stop_at)) = parse_or_report(&mut steps, args, |a| {
            Ok((
                PathBuf::from(a.str("cgroupfs")?),
                a.str("stop_at")?.to_string(),
            ))
        }) {
            attempt(&mut steps, &root, &stop_at);
        }
        steps.finish()
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        let Some(state) = arrangement.state::<State>() else {
            return Judgement::inconclusive("cgroup-escape: arrangement state of the wrong type");
        };
        let current = fs::read_to_string(state.cgroup.path().join("pids.max")).ok();
        conclude(classify(current.as_deref(), state.limit), run)
    }
}

/// Writes "max" to pids.max of the own cgroup and its ancestors up to the one named `stop_at`
/// (the cgroup the outside watches), never above it: the harness's cgroups stay untouched.
fn attempt(steps: &mut Steps, root: &Path, stop_at: &str) {
    let mut listing = String::new();
    if steps
        .io("find my cgroup", "read(/proc/self/cgroup)", || {
            listing = fs::read_to_string("/proc/self/cgroup")?;
            Ok(listing.len())
        })
        .is_none()
    {
        return;
    }
    let Some(own) = unified_path(&listing) else {
        steps.note("find my cgroup", "no cgroup v2 line in /proc/self/cgroup");
        return;
    };
    steps.data(format!("0::{own}"));
    let own = root.join(own.trim_start_matches('/'));
    for dir in targets(root, &own, stop_at) {
        let file = dir.join("pids.max");
        steps.io(
            "lift the pids limit",
            format!("write({}, \"max\")", file.display()),
            || fs::write(&file, "max"),
        );
    }
}

/// `own` and its ancestors below `root`, up to the first one named `stop_at`; only `own` when no
/// ancestor has that name (a cgroup namespace hides the real path).
fn targets(root: &Path, own: &Path, stop_at: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dir = Some(own);
    while let Some(d) = dir.filter(|d| d.starts_with(root)) {
        out.push(d.to_path_buf());
        if d.file_name().is_some_and(|n| n == stop_at) {
            return out;
        }
        dir = d.parent().filter(|p| *p != root);
    }
    out.truncate(1);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_other_limit_is_an_escape() {
        assert!(matches!(classify(Some("6123\n"), 6123), Oracle::Miss(_)));
        assert!(matches!(classify(Some("max\n"), 6123), Oracle::Hit(_)));
        assert!(matches!(classify(None, 6123), Oracle::Undecided(_)));
    }

    #[test]
    fn the_unified_line_is_found() {
        assert_eq!(
            unified_path("12:pids:/x\n0::/breakout-safety/a-1\n").as_deref(),
            Some("/breakout-safety/a-1")
        );
        assert_eq!(unified_path("1:name=systemd:/\n"), None);
    }

    #[test]
    fn targets_stop_at_the_watched_cgroup() {
        let root = Path::new("/sys/fs/cgroup");
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(
            targets(root, &p("/sys/fs/cgroup/safety/w-1/leaf"), "w-1"),
            vec![
                p("/sys/fs/cgroup/safety/w-1/leaf"),
                p("/sys/fs/cgroup/safety/w-1")
            ]
        );
        assert_eq!(
            targets(root, &p("/sys/fs/cgroup/safety/w-1"), "w-1"),
            vec![p("/sys/fs/cgroup/safety/w-1")]
        );
        assert_eq!(
            targets(root, &p("/sys/fs/cgroup/other/x"), "w-1"),
            vec![p("/sys/fs/cgroup/other/x")]
        );
        assert_eq!(
            targets(root, &p("/sys/fs/cgroup"), "w-1"),
            vec![p("/sys/fs/cgroup")]
        );
    }

    #[test]
    fn bad_arguments_are_reported() {
        let report = CgroupEscape.attempt(&["root=/sys/fs/cgroup".into()]);
        assert_eq!(report.steps[0].action, "parse arguments");
    }
}
