//! Past one guest: a run on several kernels (`--kernel A --kernel B`), split over several guests
//! at once (`--vms N`), or one shard of a CI job matrix (`--shard K/N`), and `breakout merge`,
//! which puts shards' results back together.
//!
//! Every part is an ordinary run of [`crate::suite::host::execute_part`] on a smaller plan; the parts'
//! reports are merged into one that reads like an unsplit run: results in the plan's order
//! (kernel by kernel), the whole selection, and every kernel's environment. Splitting changes
//! which guest a launch runs in, never what is launched or how it is judged.

use crate::model::{Environment, GuestEvent, ProbeResult, RunReport, Selection, Timings};
use crate::suite::host::{Binaries, Observer, RunError, VmArgs};
use crate::suite::plan::{Job, RunPlan};
use crate::suite::shard::Shard;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

/// The kernels a run boots, in order: each `--kernel`, or the default when none was given.
fn kernels(vm: &VmArgs) -> Vec<Option<PathBuf>> {
    if vm.kernels.is_empty() {
        vec![None]
    } else {
        vm.kernels.iter().cloned().map(Some).collect()
    }
}

/// Every kernel is found (and fetched into the cache) before the first guest boots, so a
/// misspelt second kernel does not cost the first one's run.
pub fn check_kernels(vm: &VmArgs) -> Result<(), RunError> {
    let mut seen = BTreeSet::new();
    for k in &vm.kernels {
        if !seen.insert(k.clone()) {
            return Err(RunError::Kernel(format!(
                "--kernel {} is given twice",
                k.display()
            )));
        }
    }
    for kernel in kernels(vm) {
        let config = breakout_vm::VmConfig {
            kernel: kernel.clone(),
            ..breakout_vm::VmConfig::default()
        };
        breakout_vm::resolve_kernel(&config).map_err(|e| RunError::Kernel(e.to_string()))?;
    }
    Ok(())
}

/// The plan with only the probes of `shard` (None: all of it).
pub fn shard_of(plan: &RunPlan, shard: Option<Shard>) -> RunPlan {
    let Some(shard) = shard else {
        return plan.clone();
    };
    let keep: BTreeSet<String> = shard.probes_of(&probe_order(plan)).into_iter().collect();
    let mut part = plan.clone();
    part.jobs.retain(|j| keep.contains(&j.probe));
    // Workloads are not split: they run once, with the first shard.
    if shard.index != 1 {
        part.workloads.clear();
    }
    part
}

/// The plan's probes in order of first appearance.
pub fn probe_order(plan: &RunPlan) -> Vec<String> {
    let mut probes: Vec<String> = Vec::new();
    for job in &plan.jobs {
        if !probes.contains(&job.probe) {
            probes.push(job.probe.clone());
        }
    }
    probes
}

/// The plan split into at most `n` parts by probe (the rule of [`Shard`]); parts without jobs
/// are left out. Configurations stay whole: a guest loads only the ones its jobs use.
pub fn split(plan: &RunPlan, n: usize) -> Vec<RunPlan> {
    let n = n.max(1);
    let probes = probe_order(plan);
    Shard::all(n)
        .map(|s| shard_of_probes(plan, &s.probes_of(&probes), s.index == 1))
        .filter(|p| !p.jobs.is_empty() || !p.workloads.is_empty())
        .collect()
}

/// The jobs of `probes`; the workloads only in the part that takes them (they are not split).
fn shard_of_probes(plan: &RunPlan, probes: &[String], with_workloads: bool) -> RunPlan {
    let mut part = plan.clone();
    part.jobs.retain(|j| probes.contains(&j.probe));
    if !with_workloads {
        part.workloads.clear();
    }
    part
}

/// How many results a run of `plan` with these arguments brings back.
pub fn result_count(plan: &RunPlan, vm: &VmArgs) -> usize {
    let part = shard_of(plan, vm.shard);
    (part.jobs.len() + part.workloads.len()) * kernels(vm).len()
}

/// What a thread running one guest tells the observer on the main thread.
enum Message {
    Event(GuestEvent),
    Booting(String, usize),
    Console(breakout_vm::Stream, Vec<u8>),
}

struct Forward(std::sync::mpsc::Sender<Message>);

impl Observer for Forward {
    fn event(&mut self, event: &GuestEvent) {
        let _ = self.0.send(Message::Event(event.clone()));
    }
    fn booting(&mut self, group: &str, attempt: usize) {
        let _ = self.0.send(Message::Booting(group.to_string(), attempt));
    }
    fn console(&mut self, stream: breakout_vm::Stream, bytes: &[u8]) {
        let _ = self.0.send(Message::Console(stream, bytes.to_vec()));
    }
}

/// See the module's documentation.
pub fn execute(
    plan: &RunPlan,
    vm: &VmArgs,
    binaries: &Binaries,
    observer: &mut dyn Observer,
) -> Result<RunReport, RunError> {
    check_kernels(vm)?;
    let started = Instant::now();
    let part_plan = shard_of(plan, vm.shard);
    let parts = split(&part_plan, vm.vms as usize);
    let mut per_kernel: Vec<RunReport> = Vec::new();
    for kernel in kernels(vm) {
        let one = VmArgs {
            kernels: kernel.into_iter().collect(),
            vms: 1,
            shard: None,
            ..vm.clone()
        };
        let reports = if parts.len() <= 1 {
            // One guest (or none, for an empty shard): no thread.
            match parts.first() {
                Some(p) => vec![crate::suite::host::execute_part(
                    p, &one, binaries, observer,
                )?],
                None => Vec::new(),
            }
        } else {
            run_parallel(&parts, &one, binaries, observer)?
        };
        per_kernel.push(join_parts(reports, Parallel::Yes));
    }
    let mut report = join_kernels(per_kernel);
    // The whole plan's order and selection: the report reads like one unsplit run.
    order_like(&mut report.results, plan);
    report.profiles = plan.profiles();
    report.selection = Some(crate::suite::host::selection(plan, vm));
    report.timings.total_ms = started.elapsed().as_millis() as u64;
    report.environment.external_probes = crate::suite::file_probes::external_ids(&plan.jobs);
    Ok(report)
}

/// The parts on guests of their own at once, events forwarded to `observer` as they come.
fn run_parallel(
    parts: &[RunPlan],
    vm: &VmArgs,
    binaries: &Binaries,
    observer: &mut dyn Observer,
) -> Result<Vec<RunReport>, RunError> {
    let (tx, rx) = std::sync::mpsc::channel::<Message>();
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .iter()
            .map(|part| {
                let mut forward = Forward(tx.clone());
                scope.spawn(move || {
                    crate::suite::host::execute_part(part, vm, binaries, &mut forward)
                })
            })
            .collect();
        // The last sender goes with the last thread: the loop ends when every guest is done.
        drop(tx);
        for message in rx {
            match message {
                Message::Event(e) => observer.event(&e),
                Message::Booting(group, attempt) => observer.booting(&group, attempt),
                Message::Console(stream, bytes) => observer.console(stream, &bytes),
            }
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(RunError::Kernel("a guest's thread panicked".into())))
            })
            .collect()
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Parallel {
    /// The parts ran at once: a phase took as long as its longest part.
    Yes,
    /// The parts ran one after the other (kernels of one run, shards of a job matrix): phases
    /// add up.
    No,
}

/// Reports of parts of one plan on one kernel, as one.
fn join_parts(reports: Vec<RunReport>, parallel: Parallel) -> RunReport {
    let mut iter = reports.into_iter();
    let Some(mut first) = iter.next() else {
        return RunReport {
            schema_version: crate::model::SCHEMA_VERSION,
            breakout_version: env!("CARGO_PKG_VERSION").to_string(),
            environment: Environment::default(),
            kernels: Vec::new(),
            profiles: Vec::new(),
            selection: None,
            results: Vec::new(),
            workloads: Vec::new(),
            timings: Timings::default(),
            channel_problems: Vec::new(),
        };
    };
    let mut measured = usize::from(first.timings.launches.is_some());
    let mut launches = first.timings.launches.clone();
    for other in iter {
        measured += usize::from(other.timings.launches.is_some());
        launches = launches.or_else(|| other.timings.launches.clone());
        first.results.extend(other.results);
        first.workloads.extend(other.workloads);
        first.channel_problems.extend(other.channel_problems);
        first.timings = add_timings(&first.timings, &other.timings, parallel);
    }
    // Launch medians survive a join only when a single part measured them: medians of several
    // guests do not combine into the median of the whole (each part's own results keep theirs).
    first.timings.launches = if measured == 1 { launches } else { None };
    first
}

fn add_timings(a: &Timings, b: &Timings, parallel: Parallel) -> Timings {
    let f = |x: u64, y: u64| match parallel {
        Parallel::Yes => x.max(y),
        Parallel::No => x + y,
    };
    Timings {
        boot_ms: f(a.boot_ms, b.boot_ms),
        probes_ms: f(a.probes_ms, b.probes_ms),
        ablation_ms: f(a.ablation_ms, b.ablation_ms),
        workloads_ms: f(a.workloads_ms, b.workloads_ms),
        total_ms: f(a.total_ms, b.total_ms),
        // Medians of separate guests do not combine into the median of the whole; join_parts
        // decides what the joined run keeps.
        launches: None,
    }
}

/// Reports of one plan on several kernels, as one: `environment` is the first kernel's,
/// `kernels` every kernel's when there is more than one.
fn join_kernels(reports: Vec<RunReport>) -> RunReport {
    let environments: Vec<Environment> = reports.iter().map(|r| r.environment.clone()).collect();
    let mut joined = join_parts(reports, Parallel::No);
    let mut distinct: Vec<Environment> = Vec::new();
    for env in environments {
        if !distinct
            .iter()
            .any(|e| e.kernel_release == env.kernel_release)
        {
            distinct.push(env);
        }
    }
    if distinct.len() > 1 {
        joined.kernels = distinct;
    }
    joined
}

/// Results in the plan's order, kernel by kernel in the order the kernels ran.
fn order_like(results: &mut [ProbeResult], plan: &RunPlan) {
    let position: BTreeMap<Job, usize> = plan
        .jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.clone(), i))
        .collect();
    let mut kernels: Vec<String> = Vec::new();
    for r in results.iter() {
        if !kernels.contains(&r.kernel) {
            kernels.push(r.kernel.clone());
        }
    }
    results.sort_by_key(|r| {
        let job = Job {
            probe: r.probe.clone(),
            profile: r.profile.clone(),
        };
        (
            kernels.iter().position(|k| *k == r.kernel),
            position.get(&job).copied().unwrap_or(usize::MAX),
        )
    });
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge: name at least one results.json")]
    Nothing,
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{first} and {other} are results of different selections ({what}): only shards of one run merge")]
    DifferentSelection {
        first: PathBuf,
        other: PathBuf,
        what: String,
    },
    #[error("{first} and {other} are both shard {shard}: a shard is merged once")]
    Overlap {
        first: PathBuf,
        other: PathBuf,
        shard: Shard,
    },
    #[error("{path} is a whole run (no --shard): merge takes the shards of one run")]
    NotAShard { path: PathBuf },
    #[error("shards of {count}: {missing} missing (merge every shard of the run)")]
    Incomplete { count: usize, missing: String },
    #[error("{first} and {other} are shards of different counts ({a} and {b})")]
    Counts {
        first: PathBuf,
        other: PathBuf,
        a: usize,
        b: usize,
    },
}

/// The selection without its shard, to tell whether two files are parts of one run.
fn whole(selection: &Selection) -> Selection {
    Selection {
        shard: None,
        ..selection.clone()
    }
}

/// What differs between two selections, in words.
fn difference(a: &Selection, b: &Selection) -> String {
    let mut what = Vec::new();
    if a.profiles != b.profiles {
        what.push(format!(
            "profiles {} against {}",
            a.profiles.join(","),
            b.profiles.join(",")
        ));
    }
    if a.probes != b.probes {
        what.push(format!(
            "{} against {} probes",
            a.probes.len(),
            b.probes.len()
        ));
    }
    if a.ablation != b.ablation {
        what.push("one with ablation, one without".to_string());
    }
    if a.kernel != b.kernel || a.kernels != b.kernels {
        what.push("other kernels".to_string());
    }
    if a.added_positive_control != b.added_positive_control {
        what.push("positive control".to_string());
    }
    what.join("; ")
}

/// Shards of one run (`run --shard K/N`, every K of one N) as the report of the unsharded run:
/// the same results in the same order, the whole selection. Refused: files of different
/// selections, a shard given twice, a shard missing, a whole run.
pub fn merge(files: &[(PathBuf, RunReport)]) -> Result<RunReport, MergeError> {
    let Some((first_path, first)) = files.first() else {
        return Err(MergeError::Nothing);
    };
    let selection_of = |path: &PathBuf, r: &RunReport| -> Result<(Selection, Shard), MergeError> {
        let selection = r.selection.clone().ok_or_else(|| MergeError::File {
            path: path.clone(),
            message: "records no selection (schema 1): it cannot say which shard it is".into(),
        })?;
        let shard = selection
            .shard
            .ok_or_else(|| MergeError::NotAShard { path: path.clone() })?;
        Ok((selection, shard))
    };
    let (base, base_shard) = selection_of(first_path, first)?;
    let mut seen: BTreeMap<Shard, &PathBuf> = BTreeMap::new();
    seen.insert(base_shard, first_path);
    for (path, r) in &files[1..] {
        let (selection, shard) = selection_of(path, r)?;
        if shard.count != base_shard.count {
            return Err(MergeError::Counts {
                first: first_path.clone(),
                other: path.clone(),
                a: base_shard.count,
                b: shard.count,
            });
        }
        if whole(&selection) != whole(&base) {
            return Err(MergeError::DifferentSelection {
                first: first_path.clone(),
                other: path.clone(),
                what: difference(&base, &selection),
            });
        }
        if let Some(earlier) = seen.insert(shard, path) {
            return Err(MergeError::Overlap {
                first: earlier.clone(),
                other: path.clone(),
                shard,
            });
        }
    }
    let missing: Vec<String> = Shard::all(base_shard.count)
        .filter(|s| !seen.contains_key(s))
        .map(|s| s.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Incomplete {
            count: base_shard.count,
            missing: missing.join(", "),
        });
    }
    // Kernel environments: every file's, each release once, in the first file's order.
    let mut environments: Vec<Environment> = Vec::new();
    for (_, r) in files {
        for env in r.environments() {
            if !env.kernel_release.is_empty()
                && !environments
                    .iter()
                    .any(|e| e.kernel_release == env.kernel_release)
            {
                environments.push(env.clone());
            }
        }
    }
    let mut merged = join_parts(files.iter().map(|(_, r)| r.clone()).collect(), Parallel::No);
    if let Some(first_env) = environments.first() {
        merged.environment = Environment {
            external_probes: merged.environment.external_probes.clone(),
            ..first_env.clone()
        };
    }
    merged.kernels = if environments.len() > 1 {
        environments
    } else {
        Vec::new()
    };
    let whole_selection = whole(&base);
    // The order of an unsharded run: kernels in the selection's order, jobs by probe then
    // configuration as the plan makes them.
    // (the plan adds an added positive control's jobs after all the others).
    let profiles = &whole_selection.profiles;
    let control = whole_selection
        .added_positive_control
        .then(|| profiles.first().cloned())
        .flatten();
    let kernel_order = merged.kernel_releases();
    merged.results.sort_by_key(|r| {
        (
            kernel_order.iter().position(|k| *k == r.kernel),
            control.as_deref() == Some(r.profile.as_str()),
            whole_selection.probes.iter().position(|p| *p == r.probe),
            profiles.iter().position(|p| *p == r.profile),
        )
    });
    merged.selection = Some(whole_selection);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::plan::RunPlan;

    #[test]
    fn a_plan_splits_by_probe_into_disjoint_parts_that_cover_it() {
        let plan = RunPlan::from_names(&[], &[]).unwrap();
        let parts = split(&plan, 3);
        assert_eq!(parts.len(), 3);
        let mut jobs: Vec<Job> = parts.iter().flat_map(|p| p.jobs.clone()).collect();
        assert_eq!(jobs.len(), plan.jobs.len());
        jobs.sort();
        let mut all = plan.jobs.clone();
        all.sort();
        assert_eq!(jobs, all);
        // Every probe's profiles stay together (its positive control with it).
        for part in &parts {
            for probe in probe_order(part) {
                assert_eq!(part.jobs.iter().filter(|j| j.probe == probe).count(), 4);
            }
        }
        // More guests than probes: no empty guest.
        let small = RunPlan::from_names(&[], &["ptrace-outside".to_string()]).unwrap();
        assert_eq!(split(&small, 4).len(), 1);
    }

    #[test]
    fn a_shard_of_the_plan_is_the_shard_rule_applied_to_its_probes() {
        let plan = RunPlan::from_names(&[], &[]).unwrap();
        let probes = probe_order(&plan);
        let shard = Shard { index: 2, count: 3 };
        assert_eq!(
            probe_order(&shard_of(&plan, Some(shard))),
            shard.probes_of(&probes)
        );
        assert_eq!(shard_of(&plan, None).jobs, plan.jobs);
    }

    fn whole_run() -> RunReport {
        use crate::model::{Evidence, SCHEMA_VERSION};
        let plan = RunPlan::from_names(
            &["none".to_string(), "strict".to_string()],
            &["ptrace-outside".into(), "mount".into(), "tiocsti".into()],
        )
        .unwrap();
        let results = plan
            .jobs
            .iter()
            .map(|j| ProbeResult {
                probe: j.probe.clone(),
                profile: j.profile.clone(),
                kernel: "6.1.0-57-cloud-amd64".into(),
                verdict: breakout_attacks::Verdict::Escaped,
                reason: "test".into(),
                evidence: Evidence::default(),
                attribution: None,
                duration_ms: 1,
            })
            .collect();
        RunReport {
            schema_version: SCHEMA_VERSION,
            breakout_version: "test".into(),
            environment: Environment {
                kernel_release: "6.1.0-57-cloud-amd64".into(),
                ..Environment::default()
            },
            kernels: Vec::new(),
            profiles: plan.profiles(),
            selection: Some(crate::suite::host::selection(&plan, &VmArgs::default())),
            results,
            workloads: Vec::new(),
            timings: Timings::default(),
            channel_problems: Vec::new(),
        }
    }

    /// The shard `shard` of a whole run, as `run --shard` writes it.
    fn shard_file(whole: &RunReport, shard: Shard) -> (PathBuf, RunReport) {
        let mut part = whole.clone();
        let selection = part.selection.as_mut().unwrap();
        selection.shard = Some(shard);
        let keep = shard.probes_of(&selection.probes);
        part.results.retain(|r| keep.contains(&r.probe));
        (PathBuf::from(format!("shard-{}.json", shard.index)), part)
    }

    #[test]
    fn merged_shards_are_the_whole_run_and_bad_sets_are_refused() {
        let whole = whole_run();
        let files: Vec<_> = Shard::all(2).map(|s| shard_file(&whole, s)).collect();
        // In any order.
        let reversed: Vec<_> = files.iter().rev().cloned().collect();
        let merged = merge(&reversed).unwrap();
        assert_eq!(
            serde_json::to_value(&merged).unwrap(),
            serde_json::to_value(&whole).unwrap()
        );
        let gate = crate::suite::gate::compare(&whole, &merged);
        assert!(gate.passed() && gate.changes.is_empty() && gate.new_results.is_empty());
        // A shard alone is judged on its own probes only.
        let gate = crate::suite::gate::compare(&whole, &files[0].1);
        assert!(gate.passed(), "{:?}", gate.regressions);
        assert_eq!(gate.compared, files[0].1.results.len());

        let err = |files: &[(PathBuf, RunReport)]| merge(files).unwrap_err().to_string();
        let twice = err(&[files[0].clone(), files[0].clone()]);
        assert!(twice.contains("both shard 1/2"), "{twice}");
        let missing = err(&files[..1]);
        assert!(missing.contains("2/2 missing"), "{missing}");
        let mut other = files[1].clone();
        other.1.selection.as_mut().unwrap().ablation = false;
        let different = err(&[files[0].clone(), other]);
        assert!(
            different.contains("different selections") && different.contains("without"),
            "{different}"
        );
        let counts = err(&[
            files[0].clone(),
            shard_file(&whole, Shard { index: 2, count: 3 }),
        ]);
        assert!(counts.contains("different counts"), "{counts}");
        let not_a_shard = err(&[(PathBuf::from("whole.json"), whole.clone())]);
        assert!(
            not_a_shard.contains("whole.json is a whole run"),
            "{not_a_shard}"
        );
        assert!(err(&[]).contains("nothing to merge"));
    }
}
