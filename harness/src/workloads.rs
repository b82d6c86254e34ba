//! The workloads' side of a run on the host: the second guest image they need, and the numbers
//! reports print. The guest runs them in `guest_workloads.rs` (the binary); the workloads
//! themselves, their commands and outside checks are in `breakout_attacks::workloads`.

use crate::model::WorkloadResult;
use breakout_attacks::workloads::{self, WorkloadVerdict};

/// The workload flags `run` and `compare` share.
#[derive(clap::Args, Debug, Default)]
pub struct WorkloadArgs {
    /// A workload to run; repeat (`breakout list workloads`). Default: every workload when no
    /// probe is named, none when probes are.
    #[arg(long = "workload", value_name = "ID")]
    pub workloads: Vec<String>,
    /// Run no workload (the VM then boots without their image).
    #[arg(long, conflicts_with = "workloads")]
    pub no_workloads: bool,
}

impl WorkloadArgs {
    /// Put the chosen workloads into `plan`: workloads named and no probe to run: no probe runs;
    /// probes named (`named_probes`, the --probe flags) and no workload: no workload runs;
    /// neither: every workload. `probes` is what runs of the probes (file probes included).
    pub fn apply(
        &self,
        plan: &mut crate::suite::plan::RunPlan,
        named_probes: &[String],
        probes: &[String],
    ) -> Result<(), crate::suite::plan::PlanError> {
        if probes.is_empty() && !self.workloads.is_empty() {
            plan.jobs.clear();
        }
        if !self.no_workloads && (!self.workloads.is_empty() || named_probes.is_empty()) {
            plan.set_workloads(&self.workloads)?;
        }
        Ok(())
    }
}

/// What the VM's second image holds for the workloads.
pub fn bundle_spec() -> breakout_vm::bundle::BundleSpec {
    let b = &workloads::bundle::PACKAGES;
    breakout_vm::bundle::BundleSpec {
        packages: b.iter().map(|s| s.to_string()).collect(),
        keep: workloads::bundle::KEEP
            .iter()
            .map(|s| s.to_string())
            .collect(),
        drop: workloads::bundle::DROP
            .iter()
            .map(|s| s.to_string())
            .collect(),
        programs: workloads::bundle::PROGRAMS
            .iter()
            .map(|(guest, flags)| breakout_vm::bundle::CProgram {
                guest: guest.into(),
                source: workloads::C_SOURCE.to_string(),
                flags: flags.iter().map(|f| f.to_string()).collect(),
            })
            .collect(),
    }
}

/// Workloads that eat a resource up to the profile's limit run alone, like resource probes.
pub fn runs_alone(id: &str) -> bool {
    matches!(id, "memory" | "processes")
}

/// The line a run prints per profile: "12 of 12 workloads work".
pub fn summary(results: &[WorkloadResult], profile: &str) -> Option<String> {
    let mine: Vec<&WorkloadResult> = results.iter().filter(|r| r.profile == profile).collect();
    if mine.is_empty() {
        return None;
    }
    let works = mine
        .iter()
        .filter(|r| r.verdict == WorkloadVerdict::Works)
        .count();
    let skipped = mine
        .iter()
        .filter(|r| r.verdict == WorkloadVerdict::Skipped)
        .count();
    let mut line = format!("{works} of {} workloads work", mine.len());
    if skipped > 0 {
        line.push_str(&format!(" ({skipped} skipped)"));
    }
    Some(line)
}

/// A workload cell: `works`, `BROKEN: step`, `skipped`.
pub fn cell_text(r: &WorkloadResult) -> String {
    match (r.verdict, &r.step) {
        (WorkloadVerdict::Works, _) => "works".into(),
        (WorkloadVerdict::Broken, Some(step)) => format!("BROKEN: {step}"),
        (WorkloadVerdict::Broken, None) => "BROKEN".into(),
        (WorkloadVerdict::Skipped, _) => "skipped".into(),
    }
}

/// The workloads x profiles grid of a report: workloads in the order they came, profiles in
/// the report's order. Empty when the run had no workloads.
pub struct WorkloadGrid<'a> {
    pub workloads: Vec<&'a str>,
    pub profiles: Vec<&'a str>,
    results: &'a [WorkloadResult],
}

impl<'a> WorkloadGrid<'a> {
    pub fn of(report: &'a crate::model::RunReport) -> Self {
        let mut profiles: Vec<&str> = report.profiles.iter().map(|p| p.name.as_str()).collect();
        let mut workloads: Vec<&str> = Vec::new();
        for r in &report.workloads {
            if !workloads.contains(&r.workload.as_str()) {
                workloads.push(&r.workload);
            }
            if !profiles.contains(&r.profile.as_str()) {
                profiles.push(&r.profile);
            }
        }
        profiles.retain(|p| report.workloads.iter().any(|r| r.profile == *p));
        WorkloadGrid {
            workloads,
            profiles,
            results: &report.workloads,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.workloads.is_empty()
    }

    pub fn cell(&self, workload: &str, profile: &str) -> Option<&'a WorkloadResult> {
        self.results
            .iter()
            .find(|r| r.workload == workload && r.profile == profile)
    }
}

/// The summary of both halves for one profile: "2 escaped / 39 blocked; 12 of 12 workloads
/// work" (the second half only when workloads ran under it).
pub fn both_halves(report: &crate::model::RunReport, profile: &str) -> String {
    let column = report.results.iter().filter(|r| r.profile == profile);
    let (mut escaped, mut blocked, mut other) = (0, 0, 0);
    for r in column {
        match r.verdict {
            breakout_attacks::Verdict::Escaped => escaped += 1,
            breakout_attacks::Verdict::Blocked => blocked += 1,
            _ => other += 1,
        }
    }
    let mut line = String::new();
    if escaped + blocked + other > 0 {
        line = format!("{escaped} escaped / {blocked} blocked");
        if other > 0 {
            line.push_str(&format!(" ({other} inconclusive or skipped)"));
        }
    }
    if let Some(w) = summary(&report.workloads, profile) {
        if !line.is_empty() {
            line.push_str("; ");
        }
        line.push_str(&w);
    }
    line
}

/// Workloads broken under a configuration without layers: broken workloads, not findings about
/// a sandbox. A run with any fails like a probe that does not escape under `none`.
pub fn broken_controls<'a>(
    results: &'a [WorkloadResult],
    controls: &[String],
) -> Vec<&'a WorkloadResult> {
    results
        .iter()
        .filter(|r| controls.contains(&r.profile) && r.verdict != WorkloadVerdict::Works)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(workload: &str, profile: &str, verdict: WorkloadVerdict) -> WorkloadResult {
        WorkloadResult {
            workload: workload.into(),
            profile: profile.into(),
            verdict,
            reason: String::new(),
            step: None,
            stderr_tail: String::new(),
            duration_ms: 0,
            kernel: String::new(),
        }
    }

    #[test]
    fn the_summary_counts_what_works_per_profile() {
        let all = vec![
            r("a", "none", WorkloadVerdict::Works),
            r("b", "none", WorkloadVerdict::Works),
            r("a", "strict", WorkloadVerdict::Broken),
            r("b", "strict", WorkloadVerdict::Skipped),
        ];
        assert_eq!(summary(&all, "none").unwrap(), "2 of 2 workloads work");
        assert_eq!(
            summary(&all, "strict").unwrap(),
            "0 of 2 workloads work (1 skipped)"
        );
        assert_eq!(summary(&all, "other"), None);
        let broken = broken_controls(&all, &["strict".to_string()]);
        assert_eq!(broken.len(), 2);
        assert!(broken_controls(&all, &["none".to_string()]).is_empty());
    }

    #[test]
    fn the_bundle_names_every_program_the_workloads_need() {
        let spec = bundle_spec();
        for w in workloads::workloads() {
            for need in w.meta.needs {
                let provided = spec.keep.iter().any(|k| need.starts_with(k.as_str()))
                    || spec
                        .programs
                        .iter()
                        .any(|p| p.guest == std::path::Path::new(need))
                    || *need == workloads::SHELL;
                assert!(provided, "{}: {need} is in no image", w.meta.id);
            }
        }
    }
}
