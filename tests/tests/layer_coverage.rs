//! Layer coverage, in the VM (issue 4): for every layer, a probe that escapes with no sandbox
//! and is blocked with that layer switched on by itself, so that no layer is there for show.
//!
//! "By itself" means the layer plus what the runtime requires for it (`requires`: fs-hardening
//! needs mount-ns), with the settings of the `strict` profile (its limits, its seccomp
//! allowlist). When the layer needs another, the test also shows that the requirement alone does
//! not block the probe, so the credit goes to the layer itself.
//!
//! Two layers stop nothing over a root payload with every capability: root with
//! CAP_SYS_RESOURCE raises any hard rlimit and RLIMIT_NPROC does not apply to root, and with
//! CAP_SYS_ADMIN TIOCSTI works on any terminal. For `rlimits` and `new-session` the base is
//! therefore the `uid` layer (an unprivileged payload), and the test shows that `uid` alone lets
//! the probe through while `uid` plus the layer blocks it. The trial names say so.
//!
//! One VM boots for the whole binary; ablation is off (the verdicts are all that is judged).

use breakout_attacks::{Layer, Verdict};
use breakout_harness::model::RunReport;
use breakout_harness::suite::plan::{Configuration, ConfigurationKind, RunPlan};
use breakout_runtime::config::SandboxConfig;
use breakout_runtime::requires;
use breakout_tests::{coverage_probe, listing_only, run_without_ablation, selected};
use libtest_mimic::{Arguments, Failed, Trial};
use std::collections::BTreeSet;
use std::sync::Arc;

/// (layer, probe it stops, base the layer is added to), for every layer.
fn coverage() -> Vec<(Layer, &'static str, &'static [Layer])> {
    Layer::ALL
        .into_iter()
        .map(|layer| {
            let (probe, base) = coverage_probe(layer);
            (layer, probe, base)
        })
        .collect()
}

fn main() {
    let args = Arguments::from_args();
    let coverage = coverage();
    let names: Vec<String> = coverage.iter().map(|c| trial_name(*c)).collect();
    let any = names.iter().any(|n| selected(&args, n));
    let run: Arc<Result<RunReport, String>> = Arc::new(if any && !listing_only(&args) {
        run_plan(&args)
    } else {
        Err("not run".to_string())
    });
    let trials = coverage
        .iter()
        .map(|&entry| {
            let run = Arc::clone(&run);
            Trial::test(trial_name(entry), move || {
                let report = run
                    .as_ref()
                    .as_ref()
                    .map_err(|e| Failed::from(format!("the run failed: {e}")))?;
                check(report, entry).map_err(Failed::from)
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

fn trial_name((layer, probe, base): (Layer, &str, &[Layer])) -> String {
    if base.is_empty() {
        format!("{layer}_alone_stops_{probe}")
    } else {
        let base: Vec<&str> = base.iter().map(|l| l.name()).collect();
        format!("{layer}_over_{}_stops_{probe}", base.join("+"))
    }
}

/// The configuration name for a set of layers.
fn config_name(layers: &BTreeSet<Layer>) -> String {
    if layers.is_empty() {
        return "none".to_string();
    }
    let names: Vec<&str> = layers.iter().map(|l| l.name()).collect();
    format!("only-{}", names.join("+"))
}

/// `layers` plus what the runtime requires for them.
fn with_requirements(layers: impl IntoIterator<Item = Layer>) -> BTreeSet<Layer> {
    let mut set: BTreeSet<Layer> = layers.into_iter().collect();
    loop {
        let more: Vec<Layer> = set
            .iter()
            .flat_map(|l| requires(*l).iter().copied())
            .filter(|l| !set.contains(l))
            .collect();
        if more.is_empty() {
            return set;
        }
        set.extend(more);
    }
}

/// The base configuration of an entry (its requirements, or its stated base) and the one with
/// the layer on top.
fn base_and_with((layer, _, base): (Layer, &str, &[Layer])) -> (BTreeSet<Layer>, BTreeSet<Layer>) {
    let with = with_requirements(base.iter().copied().chain([layer]));
    let mut without = with.clone();
    without.remove(&layer);
    (without, with)
}

fn configuration(layers: &BTreeSet<Layer>) -> Result<Configuration, String> {
    let mut config = SandboxConfig::builtin("strict").map_err(|e| e.to_string())?;
    for layer in Layer::ALL {
        config.set_enabled(layer, layers.contains(&layer));
    }
    config
        .validate()
        .map_err(|e| format!("{}: {e}", config_name(layers)))?;
    Ok(Configuration {
        name: config_name(layers),
        kind: ConfigurationKind::Breakout { config },
    })
}

fn run_plan(args: &Arguments) -> Result<RunReport, String> {
    let coverage = coverage();
    let chosen: Vec<_> = coverage
        .iter()
        .filter(|c| selected(args, &trial_name(**c)))
        .collect();
    let mut sets: BTreeSet<BTreeSet<Layer>> = BTreeSet::new();
    sets.insert(BTreeSet::new());
    for entry in &chosen {
        let (base, with) = base_and_with(**entry);
        sets.insert(base);
        sets.insert(with);
    }
    let configurations = sets
        .iter()
        .map(configuration)
        .collect::<Result<Vec<_>, _>>()?;
    let probes: BTreeSet<String> = chosen.iter().map(|c| c.1.to_string()).collect();
    let plan = RunPlan::new(configurations, &probes.into_iter().collect::<Vec<_>>())
        .map_err(|e| e.to_string())?;
    run_without_ablation(&plan)
}

fn verdict(report: &RunReport, probe: &str, layers: &BTreeSet<Layer>) -> Result<Verdict, String> {
    let profile = config_name(layers);
    report
        .results
        .iter()
        .find(|r| r.probe == probe && r.profile == profile)
        .map(|r| r.verdict)
        .ok_or_else(|| format!("no result for {probe} under {profile}"))
}

fn describe(report: &RunReport, probe: &str, layers: &BTreeSet<Layer>) -> String {
    let profile = config_name(layers);
    report
        .results
        .iter()
        .find(|r| r.probe == probe && r.profile == profile)
        .map(|r| format!("{probe} under {profile}: {:?} ({})", r.verdict, r.reason))
        .unwrap_or_else(|| format!("{probe} under {profile}: no result"))
}

fn check(report: &RunReport, entry: (Layer, &str, &[Layer])) -> Result<(), String> {
    let (layer, probe, _) = entry;
    let (base, with) = base_and_with(entry);
    let none = BTreeSet::new();
    let expect = |layers: &BTreeSet<Layer>, want: Verdict| -> Result<(), String> {
        let got = verdict(report, probe, layers)?;
        if got == want {
            Ok(())
        } else {
            Err(format!(
                "{} — expected {want:?} for the coverage of {layer}",
                describe(report, probe, layers)
            ))
        }
    };
    expect(&none, Verdict::Escaped)?;
    if base != none {
        expect(&base, Verdict::Escaped)?;
    }
    expect(&with, Verdict::Blocked)?;
    println!(
        "{layer}: {probe} escapes under {}{}, blocked under {}",
        config_name(&none),
        if base.is_empty() {
            String::new()
        } else {
            format!(" and {}", config_name(&base))
        },
        config_name(&with)
    );
    Ok(())
}
