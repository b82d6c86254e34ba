//! Labs: exercises that grade themselves with a real run in the VM (`breakout lab
//! list|show|start|check ID`). Each lab names the cells it needs (a probe under a configuration
//! the student wrote or one the lab brings), runs them, and judges the student's answer from the
//! run's evidence: verdicts, the oracle's reason, attribution by ablation. A failed check says
//! which concept to look at (docs/course.md).
//!
//! The starting files are compiled in (`lab start` writes them), so the binary works without the
//! repository; the reference solutions live in `labs/ID/solution/` (the tests grade them).

use crate::model::{ProbeResult, RunReport};
use crate::suite::file_probes::FileProbeArgs;
use crate::suite::host::{Binaries, Observer, VmArgs};
use crate::suite::plan::{Configuration, ConfigurationKind, RunPlan};
use breakout_attacks::{Layer, Verdict};
use breakout_runtime::config::SandboxConfig;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("unknown lab `{0}` (`breakout lab list` shows the labs)")]
    Unknown(String),
    #[error("{path}: {message}")]
    Answer { path: PathBuf, message: String },
    #[error("{0}")]
    Plan(String),
    #[error("the run failed: {0}")]
    Run(String),
}

/// One exercise.
pub struct Lab {
    pub id: &'static str,
    pub title: &'static str,
    /// The concepts it teaches (docs/course.md's vocabulary).
    pub concepts: &'static [&'static str],
    /// What to do.
    pub task: &'static str,
    /// The files `lab start` writes: (path in the answer directory, content).
    pub start: &'static [(&'static str, &'static str)],
    kind: Kind,
}

enum Kind {
    /// Switch on one layer in the profile so that `probe` is blocked.
    OneLayer {
        probe: &'static str,
        start_profile: &'static str,
        concept: &'static str,
    },
    /// Keep the start's layers; `probe` blocked with no necessary layer and depth >= 2.
    Depth {
        probe: &'static str,
        start_profile: &'static str,
        concept: &'static str,
    },
    /// A file probe in `probe/`: escapes `none`, blocked under `seccomp` alone.
    SeccompProbe,
    /// `probe` blocked with `rlimits` on and `cgroup-limits` off.
    RlimitsHold {
        probe: &'static str,
        concept: &'static str,
    },
    /// prediction.toml: verdict, necessary, sufficient of `probe` under `profile`.
    Predict {
        probe: &'static str,
        profile: &'static str,
    },
}

const PROFILE: &str = "profile.toml";

/// Only the seccomp layer, with our allowlist: the lab's "seccomp alone".
const SECCOMP_ONLY: &str = r#"name = "seccomp-only"
description = "the strict seccomp allowlist and no other layer"

[layers]
seccomp = true

[seccomp]
profile = "strict"
"#;

pub static LABS: &[Lab] = &[
    Lab {
        id: "pid-namespace",
        title: "A signal between equals: find the one layer that stops it",
        concepts: &["namespaces", "capabilities"],
        task: "profile.toml is Docker's defaults with one layer switched off, and signal-same-uid \
            escapes it: the payload kills a uid-1000 process outside. Switch on the one layer that \
            stops it, and nothing else.",
        start: &[(
            PROFILE,
            include_str!("../../../labs/pid-namespace/start/profile.toml"),
        )],
        kind: Kind::OneLayer {
            probe: "signal-same-uid",
            start_profile: include_str!("../../../labs/pid-namespace/start/profile.toml"),
            concept:
                "kill(2) needs CAP_KILL or the same uid, and a same-uid victim needs neither: \
                no capability or uid switch helps. What can the payload not name? (concept: \
                namespaces, pid)",
        },
    },
    Lab {
        id: "defense-in-depth",
        title: "Depth 2: a second layer that stops the keyring probe by itself",
        concepts: &["attribution", "capabilities", "seccomp", "uid"],
        task: "profile.toml is Docker's defaults; the keyring probe (read root's user key) is \
            blocked by one layer only. Keep every layer that is on and make a second layer stop \
            it by itself: ablation must find no necessary layer and at least two sufficient ones.",
        start: &[(
            PROFILE,
            include_str!("../../../labs/defense-in-depth/start/profile.toml"),
        )],
        kind: Kind::Depth {
            probe: "keyring",
            start_profile: include_str!("../../../labs/defense-in-depth/start/profile.toml"),
            concept: "the key belongs to root and is readable by uid 0: which layer makes the \
                payload someone else? (concepts: attribution, depth; uid)",
        },
    },
    Lab {
        id: "seccomp-probe",
        title: "Write a file probe that seccomp alone stops",
        concepts: &["seccomp", "probes"],
        task: "probe/ is a file probe (docs/writing-probes.md). Make it a probe that escapes a \
            sandbox without layers (`none`) and is blocked by the seccomp layer alone (our strict \
            allowlist, no other layer). Any oracle will do.",
        start: &[
            (
                "probe/probe.toml",
                include_str!("../../../labs/seccomp-probe/start/probe/probe.toml"),
            ),
            (
                "probe/inside.sh",
                include_str!("../../../labs/seccomp-probe/start/probe/inside.sh"),
            ),
        ],
        kind: Kind::SeccompProbe,
    },
    Lab {
        id: "rlimits-root",
        title: "Why RLIMIT_NPROC does not stop a fork bomb run by root",
        concepts: &["rlimits", "uid", "cgroups"],
        task: "profile.toml limits the payload to 64 processes with RLIMIT_NPROC and nothing \
            else, and the fork bomb gets past 64. Find out why with a run, then make the rlimit \
            hold without cgroup-limits.",
        start: &[(
            PROFILE,
            include_str!("../../../labs/rlimits-root/start/profile.toml"),
        )],
        kind: Kind::RlimitsHold {
            probe: "fork-bomb",
            concept: "the kernel does not count RLIMIT_NPROC against uid 0 (and CAP_SYS_RESOURCE \
                raises any limit): an rlimit binds only a payload that is not root (concepts: \
                rlimits, uid; a cgroup's pids.max binds everyone)",
        },
    },
    Lab {
        id: "fd-hygiene",
        title: "The descriptor nobody closed",
        concepts: &["fd hygiene", "namespaces"],
        task: "profile.toml switches on every namespace, yet leaked-fds reads a secret through a \
            descriptor the sandbox inherited. Switch on the one layer that closes it, and nothing \
            else.",
        start: &[(
            PROFILE,
            include_str!("../../../labs/fd-hygiene/start/profile.toml"),
        )],
        kind: Kind::OneLayer {
            probe: "leaked-fds",
            start_profile: include_str!("../../../labs/fd-hygiene/start/profile.toml"),
            concept: "an open descriptor is a capability to its file: namespaces change what a \
                path names, not what an inherited fd points at (concept: fd hygiene, close every \
                descriptor but 0-2 before exec)",
        },
    },
    Lab {
        id: "predict-ablation",
        title: "Predict an ablation cell, then check",
        concepts: &["attribution"],
        task: "Predict what ablation finds for the probe hostname under the profile namespaces: \
            the verdict, the necessary layers (without which it escapes) and the sufficient ones \
            (which block it alone). Write them into prediction.toml; the run checks them.",
        start: &[(
            "prediction.toml",
            include_str!("../../../labs/predict-ablation/start/prediction.toml"),
        )],
        kind: Kind::Predict {
            probe: "hostname",
            profile: "namespaces",
        },
    },
];

/// The lab with this id.
pub fn lab(id: &str) -> Result<&'static Lab, LabError> {
    LABS.iter()
        .find(|l| l.id == id)
        .ok_or_else(|| LabError::Unknown(id.to_string()))
}

/// One check of a grade.
#[derive(Debug, Clone)]
pub struct Check {
    pub passed: bool,
    pub what: String,
    /// From the run's evidence: the oracle's reason, the attribution.
    pub why: String,
}

/// The grade of one answer.
#[derive(Debug, Clone)]
pub struct Grade {
    pub lab: &'static str,
    pub answer: PathBuf,
    pub checks: Vec<Check>,
}

impl Grade {
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.passed)
    }

    pub fn render(&self) -> String {
        let mut out = format!("lab {} ({}):\n", self.lab, self.answer.display());
        for c in &self.checks {
            out.push_str(&format!(
                "  [{}] {}\n        {}\n",
                if c.passed { "pass" } else { "FAIL" },
                c.what,
                c.why
            ));
        }
        out.push_str(if self.passed() {
            "  passed\n"
        } else {
            "  not yet\n"
        });
        out
    }
}

/// One (probe, configuration) the lab needs run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Cell {
    probe: String,
    /// The configuration's name, as results name it (a profile file's `name` field).
    profile: String,
    /// A built-in profile name or the path of a profile file, for the plan.
    source: String,
}

impl Cell {
    fn new(probe: &str, source: &str) -> Result<Cell, LabError> {
        let profile = crate::suite::plan::Configuration::named(source)
            .map_err(|e| LabError::Plan(e.to_string()))?
            .name;
        Ok(Cell {
            probe: probe.to_string(),
            profile,
            source: source.to_string(),
        })
    }
}

/// An answer checked before the run: its cells and what grading needs.
struct Prepared {
    lab: &'static Lab,
    answer: PathBuf,
    cells: Vec<Cell>,
    /// Checks decided before the run (a profile that switches on two layers...).
    early: Vec<Check>,
    /// Kept alive until grading: lab-provided profile files.
    _tmp: Option<tempfile::TempDir>,
    file_probe: Option<String>,
}

fn answer_err(path: &Path, message: impl Into<String>) -> LabError {
    LabError::Answer {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn load_profile(path: &Path) -> Result<Configuration, LabError> {
    if !path.is_file() {
        return Err(answer_err(
            path,
            "missing (`breakout lab start ID` writes it)",
        ));
    }
    Configuration::profile(&path.display().to_string()).map_err(|e| answer_err(path, e.to_string()))
}

fn layers_of(c: &Configuration) -> BTreeSet<Layer> {
    match &c.kind {
        ConfigurationKind::Breakout { config } => config.enabled_layers(),
        ConfigurationKind::Adapter { layers, .. } => layers.iter().copied().collect(),
    }
}

fn layers_of_text(text: &str) -> BTreeSet<Layer> {
    SandboxConfig::from_toml(text, Path::new("<the lab's starting profile>"), None)
        .map(|c| c.enabled_layers())
        .unwrap_or_default()
}

fn names(layers: impl IntoIterator<Item = Layer>) -> String {
    let v: Vec<&str> = layers.into_iter().map(|l| l.name()).collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Prediction {
    verdict: String,
    #[serde(default)]
    necessary: Vec<String>,
    #[serde(default)]
    sufficient: Vec<String>,
}

fn prepare(lab: &'static Lab, answer: &Path) -> Result<Prepared, LabError> {
    let mut p = Prepared {
        lab,
        answer: answer.to_path_buf(),
        cells: Vec::new(),
        early: Vec::new(),
        _tmp: None,
        file_probe: None,
    };
    let cell = |probe: &str, profile: &Path| Cell::new(probe, &profile.display().to_string());
    match &lab.kind {
        Kind::OneLayer {
            probe,
            start_profile,
            ..
        }
        | Kind::Depth {
            probe,
            start_profile,
            ..
        } => {
            let path = std::path::absolute(answer.join(PROFILE))
                .map_err(|e| answer_err(answer, e.to_string()))?;
            let config = load_profile(&path)?;
            let start = layers_of_text(start_profile);
            let now = layers_of(&config);
            let added: Vec<Layer> = now.difference(&start).copied().collect();
            let removed: Vec<Layer> = start.difference(&now).copied().collect();
            let one_layer = matches!(lab.kind, Kind::OneLayer { .. });
            p.early.push(Check {
                passed: removed.is_empty() && (!one_layer || added.len() == 1),
                what: if one_layer {
                    "exactly one layer switched on, none switched off".into()
                } else {
                    "every layer of the start kept".into()
                },
                why: format!(
                    "switched on: {}; switched off: {}",
                    names(added.iter().copied()),
                    names(removed.iter().copied())
                ),
            });
            p.cells.push(cell(probe, &path)?);
        }
        Kind::RlimitsHold { probe, .. } => {
            let path = std::path::absolute(answer.join(PROFILE))
                .map_err(|e| answer_err(answer, e.to_string()))?;
            let config = load_profile(&path)?;
            let now = layers_of(&config);
            p.early.push(Check {
                passed: now.contains(&Layer::Rlimits) && !now.contains(&Layer::CgroupLimits),
                what: "rlimits on, cgroup-limits off (the rlimit must do the work)".into(),
                why: format!("layers on: {}", names(now.iter().copied())),
            });
            p.cells.push(cell(probe, &path)?);
        }
        Kind::SeccompProbe => {
            let dir = answer.join("probe");
            let args = FileProbeArgs {
                dirs: vec![dir.clone()],
            };
            let ids = args
                .probes_to_run(&[])
                .map_err(|e| answer_err(&dir, e.to_string()))?;
            let id = ids
                .first()
                .cloned()
                .ok_or_else(|| answer_err(&dir, "no probe in it"))?;
            let tmp = tempfile::tempdir().map_err(|e| LabError::Plan(e.to_string()))?;
            let seccomp_only = tmp.path().join("seccomp-only.toml");
            std::fs::write(&seccomp_only, SECCOMP_ONLY)
                .map_err(|e| LabError::Plan(format!("{}: {e}", seccomp_only.display())))?;
            p.cells.push(Cell::new(&id, "none")?);
            p.cells.push(cell(&id, &seccomp_only)?);
            p.file_probe = Some(id);
            p._tmp = Some(tmp);
        }
        Kind::Predict { probe, profile } => {
            let path = answer.join("prediction.toml");
            let text = std::fs::read_to_string(&path)
                .map_err(|e| answer_err(&path, format!("cannot read it: {e}")))?;
            let prediction: Prediction =
                toml::from_str(&text).map_err(|e| answer_err(&path, e.message().to_string()))?;
            for (field, list) in [
                ("necessary", &prediction.necessary),
                ("sufficient", &prediction.sufficient),
            ] {
                for name in list {
                    name.parse::<Layer>().map_err(|_| {
                        answer_err(&path, format!("field `{field}`: unknown layer `{name}`"))
                    })?;
                }
            }
            if !["escaped", "blocked", "inconclusive", "skipped"]
                .contains(&prediction.verdict.as_str())
            {
                return Err(answer_err(
                    &path,
                    format!(
                        "field `verdict`: `{}` is not a verdict (escaped, blocked)",
                        prediction.verdict
                    ),
                ));
            }
            p.cells.push(Cell::new(probe, profile)?);
        }
    }
    Ok(p)
}

fn needs_ablation(lab: &Lab) -> bool {
    matches!(lab.kind, Kind::Depth { .. } | Kind::Predict { .. })
}

fn result<'a>(report: &'a RunReport, cell: &Cell) -> Option<&'a ProbeResult> {
    report
        .results
        .iter()
        .find(|r| r.probe == cell.probe && r.profile == cell.profile)
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Escaped => "escaped",
        Verdict::Blocked => "blocked",
        Verdict::Inconclusive => "inconclusive",
        Verdict::Skipped => "skipped",
    }
}

fn grade(p: &Prepared, report: &RunReport) -> Grade {
    let mut checks = p.early.clone();
    let missing = |cell: &Cell| Check {
        passed: false,
        what: format!("{} under {} ran", cell.probe, cell.profile),
        why: "no result came back from the run".into(),
    };
    match &p.lab.kind {
        Kind::OneLayer { probe, concept, .. } | Kind::RlimitsHold { probe, concept } => {
            let cell = &p.cells[0];
            match result(report, cell) {
                Some(r) => checks.push(Check {
                    passed: r.verdict == Verdict::Blocked,
                    what: format!("{probe} is blocked under your profile"),
                    why: if r.verdict == Verdict::Blocked {
                        format!("blocked: {}", r.reason)
                    } else {
                        format!("{}: {}. Hint: {concept}", verdict_name(r.verdict), r.reason)
                    },
                }),
                None => checks.push(missing(cell)),
            }
        }
        Kind::Depth { probe, concept, .. } => {
            let cell = &p.cells[0];
            match result(report, cell) {
                Some(r) if r.verdict == Verdict::Blocked => {
                    let a = r.attribution.clone().unwrap_or_default();
                    checks.push(Check {
                        passed: true,
                        what: format!("{probe} is blocked under your profile"),
                        why: r.reason.clone(),
                    });
                    checks.push(Check {
                        passed: a.necessary.is_empty() && a.sufficient.len() >= 2,
                        what: "no layer is necessary, at least two are sufficient (depth >= 2)"
                            .into(),
                        why: format!(
                            "ablation: necessary {}; sufficient {}{}",
                            names(a.necessary.iter().copied()),
                            names(a.sufficient.iter().copied()),
                            if a.necessary.is_empty() && a.sufficient.len() >= 2 {
                                String::new()
                            } else {
                                format!(". Hint: {concept}")
                            }
                        ),
                    });
                }
                Some(r) => checks.push(Check {
                    passed: false,
                    what: format!("{probe} is blocked under your profile"),
                    why: format!("{}: {}", verdict_name(r.verdict), r.reason),
                }),
                None => checks.push(missing(cell)),
            }
        }
        Kind::SeccompProbe => {
            let id = p.file_probe.clone().unwrap_or_default();
            match result(report, &p.cells[0]) {
                Some(r) => checks.push(Check {
                    passed: r.verdict == Verdict::Escaped,
                    what: format!("{id} escapes `none` (the positive control)"),
                    why: format!(
                        "{}: {}{}",
                        verdict_name(r.verdict),
                        r.reason,
                        if r.verdict == Verdict::Escaped {
                            ""
                        } else {
                            ". A probe that does not escape a sandbox without layers proves nothing: make the inside half do what the oracle looks for (docs/writing-probes.md)"
                        }
                    ),
                }),
                None => checks.push(missing(&p.cells[0])),
            }
            match result(report, &p.cells[1]) {
                Some(r) => checks.push(Check {
                    passed: r.verdict == Verdict::Blocked,
                    what: format!("{id} is blocked by seccomp alone"),
                    why: format!(
                        "{}: {}{}",
                        verdict_name(r.verdict),
                        r.reason,
                        if r.verdict == Verdict::Blocked {
                            ""
                        } else {
                            ". A filter stops only the syscalls it denies, and open/read/write are on every allowlist: pick an attempt whose syscall the allowlist leaves out (`breakout explain seccomp`; concept: seccomp)"
                        }
                    ),
                }),
                None => checks.push(missing(&p.cells[1])),
            }
        }
        Kind::Predict { probe, profile } => {
            let text =
                std::fs::read_to_string(p.answer.join("prediction.toml")).unwrap_or_default();
            let Ok(pred) = toml::from_str::<Prediction>(&text) else {
                checks.push(Check {
                    passed: false,
                    what: "prediction.toml reads".into(),
                    why: "it changed during the run".into(),
                });
                return Grade {
                    lab: p.lab.id,
                    answer: p.answer.clone(),
                    checks,
                };
            };
            match result(report, &p.cells[0]) {
                Some(r) => {
                    checks.push(Check {
                        passed: verdict_name(r.verdict) == pred.verdict,
                        what: format!("verdict of {probe} under {profile}"),
                        why: format!(
                            "you said {}, the run says {}: {}",
                            pred.verdict,
                            verdict_name(r.verdict),
                            r.reason
                        ),
                    });
                    let a = r.attribution.clone().unwrap_or_default();
                    let set = |v: &[String]| -> BTreeSet<Layer> {
                        v.iter().filter_map(|n| n.parse().ok()).collect()
                    };
                    for (what, said, found, meaning) in [
                        (
                            "necessary",
                            set(&pred.necessary),
                            a.necessary.iter().copied().collect::<BTreeSet<_>>(),
                            "necessary = it escapes when that layer alone is switched off",
                        ),
                        (
                            "sufficient",
                            set(&pred.sufficient),
                            a.sufficient.iter().copied().collect::<BTreeSet<_>>(),
                            "sufficient = it is still blocked with that layer alone switched on",
                        ),
                    ] {
                        let runs: Vec<String> = a
                            .ablation_runs
                            .iter()
                            .map(|x| format!("{}: {}", x.description, verdict_name(x.verdict)))
                            .collect();
                        checks.push(Check {
                            passed: said == found,
                            what: format!("{what} layers"),
                            why: if said == found {
                                format!("{} (as predicted)", names(found))
                            } else {
                                format!(
                                    "you said {}, ablation found {} ({meaning}; the runs: {}). Concept: attribution",
                                    names(said),
                                    names(found),
                                    runs.join("; ")
                                )
                            },
                        });
                    }
                }
                None => checks.push(missing(&p.cells[0])),
            }
        }
    }
    Grade {
        lab: p.lab.id,
        answer: p.answer.clone(),
        checks,
    }
}

/// Grades several answers with as few VM boots as possible: one run for the labs that need no
/// ablation, one for those that do. The answers' file probes must have distinct ids.
pub fn grade_all(
    answers: &[(&'static Lab, PathBuf)],
    vm: &VmArgs,
    binaries: &Binaries,
    observer: &mut dyn Observer,
) -> Result<Vec<Grade>, LabError> {
    let prepared: Vec<Prepared> = answers
        .iter()
        .map(|(lab, dir)| prepare(lab, dir))
        .collect::<Result<_, _>>()?;
    let mut grades: Vec<Option<Grade>> = vec![None; prepared.len()];
    for ablate in [false, true] {
        let group: Vec<usize> = (0..prepared.len())
            .filter(|&i| needs_ablation(prepared[i].lab) == ablate)
            .collect();
        if group.is_empty() {
            continue;
        }
        let cells: BTreeSet<Cell> = group
            .iter()
            .flat_map(|&i| prepared[i].cells.iter().cloned())
            .collect();
        let mut profiles: Vec<String> = Vec::new();
        let mut probes: Vec<String> = Vec::new();
        // One source per configuration name: answers batched in one run that share a profile
        // (seccomp-only) bring the same file twice.
        let mut names: Vec<&str> = Vec::new();
        for c in &cells {
            if !names.contains(&c.profile.as_str()) {
                names.push(&c.profile);
                profiles.push(c.source.clone());
            }
            if !probes.contains(&c.probe) {
                probes.push(c.probe.clone());
            }
        }
        let mut plan =
            RunPlan::from_names(&profiles, &probes).map_err(|e| LabError::Plan(e.to_string()))?;
        plan.retain(|j| {
            cells
                .iter()
                .any(|c| c.probe == j.probe && c.profile == j.profile)
        });
        let mut vm = vm.clone();
        vm.no_ablation = !ablate;
        let report = crate::suite::host::execute(&plan, &vm, binaries, observer)
            .map_err(|e| LabError::Run(e.to_string()))?;
        for &i in &group {
            grades[i] = Some(grade(&prepared[i], &report));
        }
    }
    Ok(grades.into_iter().flatten().collect())
}
