//! Attribution for an external configuration by ablating its items, in the user's terms: the
//! same questions as for our profiles (design.md, "Attribution"), asked of the items of the
//! user's config.json or command line instead of our layers.
//!
//! For a probe blocked under spec S with candidate items C (the ablatable items whose layer the
//! probe lists, and every item whose layer is unknown):
//! - `sufficient`: c such that S without C \ {c} still blocks ("only c of the candidates");
//! - `necessary`: c such that S without c lets the probe through;
//! - completeness: S without all of C lets it through, else the block is unexplained;
//! - capabilities: when the item that withholds capabilities is credited, which single
//!   capabilities given back let the probe through (bisection, as for our caps layer);
//! - seccomp: the syscalls on the probe's path that the config's filter denies.
//!
//! Items that cannot be taken out (options breakout does not know, what a runtime always does)
//! stay in every run and are listed as not ablated. What a runtime always does and no option
//! turns off (gVisor's Sentry, firejail's pid namespace, bwrap's no_new_privs) is such an item
//! too, but one that may block on its own: when the run without every other candidate still
//! blocks, the block is its, named as one item (`blocked: gVisor Sentry`), and no further run can
//! tell what the other items add (each would keep it).

use super::{ExternalSpec, Item};
use crate::model::{AblationRun, Attribution, Evidence, ItemAttribution};
use crate::suite::attribution::TrialOutcome;
use breakout_attacks::{Layer, Verdict};
use std::collections::BTreeSet;

/// Runs the probe under a variant of the spec.
pub trait SpecRunner {
    fn run(&mut self, spec: &ExternalSpec, description: &str) -> TrialOutcome;
}

/// The items ablation takes out for a probe with these candidate layers.
pub fn candidates<'a>(items: &'a [Item], layers: &[Layer]) -> Vec<&'a Item> {
    items
        .iter()
        .filter(|i| i.ablatable && i.layer.is_none_or(|l| layers.contains(&l)))
        .collect()
}

/// Attribute a block under `spec` (the configuration `name`) by ablating its items.
pub fn attribute(
    name: &str,
    spec: &ExternalSpec,
    candidate_layers: &[Layer],
    base_evidence: &Evidence,
    runner: &mut dyn SpecRunner,
) -> Attribution {
    let items = spec.items();
    let cands = candidates(&items, candidate_layers);
    let all: BTreeSet<String> = cands.iter().map(|i| i.name.clone()).collect();
    let mut ablation = Ablation {
        name,
        runner,
        runs: Vec::new(),
    };
    let not_ablated: Vec<String> = items
        .iter()
        .filter(|i| !i.ablatable && i.layer.is_none_or(|l| candidate_layers.contains(&l)))
        .map(|i| i.name.clone())
        .collect();
    let candidates_recorded: Vec<Layer> = Layer::ALL
        .into_iter()
        .filter(|l| candidate_layers.contains(l))
        .collect();

    if let Some(kernel) = items
        .iter()
        .find(|i| i.whole && i.layer.is_none_or(|l| candidate_layers.contains(&l)))
    {
        // With only the runtime's own kernel left, does it still block? (No candidates: the
        // spec's own run was that run.)
        let kernel_blocks = cands.is_empty()
            || ablation
                .trial(
                    &spec.without(&all),
                    format!(
                        "{name} without every candidate ({}): {} alone",
                        cands
                            .iter()
                            .map(|i| i.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        kernel.name
                    ),
                )
                .verdict
                == Verdict::Blocked;
        if kernel_blocks {
            return Attribution {
                necessary: Vec::new(),
                sufficient: Vec::new(),
                // Not established: the kernel cannot be taken out, so no run measured what
                // letting it through takes.
                depth: 0,
                candidates: candidates_recorded,
                // The candidates, the kernel among them, account for the block: with every
                // other one out it still held.
                candidates_complete: true,
                caps_detail: Vec::new(),
                seccomp_denied: Vec::new(),
                inferred: false,
                ablation_runs: std::mem::take(&mut ablation.runs),
                items: Some(ItemAttribution {
                    sufficient: vec![kernel.name.clone()],
                    necessary: Vec::new(),
                    not_ablated: not_ablated
                        .into_iter()
                        .filter(|n| *n != kernel.name)
                        .collect(),
                }),
            };
        }
    }

    let mut sufficient: Vec<(&Item, Evidence, ExternalSpec)> = Vec::new();
    for item in &cands {
        let mut others = all.clone();
        others.remove(&item.name);
        if others.is_empty() {
            // The spec itself, which blocked.
            sufficient.push((item, base_evidence.clone(), spec.clone()));
            continue;
        }
        let variant = spec.without(&others);
        let outcome = ablation.trial(
            &variant,
            format!("{name} with only {} of the candidates", item.name),
        );
        if outcome.verdict == Verdict::Blocked {
            sufficient.push((item, outcome.evidence, variant));
        }
    }
    let mut necessary: Vec<&Item> = Vec::new();
    let mut single_escaped = None;
    for item in &cands {
        let variant = spec.without(&BTreeSet::from([item.name.clone()]));
        let escaped = ablation
            .trial(&variant, format!("{name} without {}", item.name))
            .verdict
            == Verdict::Escaped;
        if escaped {
            necessary.push(item);
        }
        single_escaped = Some(escaped);
    }
    let candidates_complete = match cands.len() {
        0 => false,
        // The one run without the only candidate was the run without every candidate.
        1 => single_escaped == Some(true),
        _ => {
            ablation
                .trial(
                    &spec.without(&all),
                    format!(
                        "{name} without every candidate ({})",
                        cands
                            .iter()
                            .map(|i| i.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .verdict
                == Verdict::Escaped
        }
    };

    // Capabilities: which ones, given back, let the probe through.
    let mut caps_detail = Vec::new();
    if let Some((caps_item, withheld)) = spec.withheld_caps() {
        let base = sufficient
            .iter()
            .find(|(i, _, _)| i.name == caps_item)
            .map(|(_, _, v)| v.clone())
            .or_else(|| {
                necessary
                    .iter()
                    .any(|i| i.name == caps_item)
                    .then(|| spec.clone())
            });
        if let Some(base) = base {
            caps_detail = ablation.caps_drill_down(&base, &caps_item, withheld);
        }
    }
    // Seccomp: the denied syscalls on the probe's path.
    let mut seccomp_denied = Vec::new();
    let seccomp_item = "linux.seccomp";
    let credited = |n: &str| {
        sufficient.iter().any(|(i, _, _)| i.name == n) || necessary.iter().any(|i| i.name == n)
    };
    if let (Some(filter), true) = (spec.oci_seccomp(), credited(seccomp_item)) {
        let evidence = sufficient
            .iter()
            .find(|(i, _, _)| i.name == seccomp_item)
            .map(|(_, e, _)| e)
            .unwrap_or(base_evidence);
        let errno = filter_errno(filter);
        seccomp_denied = crate::suite::attribution::seccomp_denied(
            evidence,
            &|call| super::crun::oci_denies(filter, call),
            errno,
        );
    }

    let label = |item: &Item| -> String {
        let detail = if Some(item.name.as_str()) == spec.withheld_caps().map(|c| c.0).as_deref() {
            &caps_detail
        } else if item.name == seccomp_item {
            &seccomp_denied
        } else {
            return item.name.clone();
        };
        if detail.is_empty() {
            item.name.clone()
        } else {
            format!("{}({})", item.name, detail.join(","))
        }
    };
    let layers_of = |list: &mut dyn Iterator<Item = &Item>| -> Vec<Layer> {
        let set: BTreeSet<Layer> = list.filter_map(|i| i.layer).collect();
        Layer::ALL.into_iter().filter(|l| set.contains(l)).collect()
    };
    let necessary_layers = layers_of(&mut necessary.iter().copied());
    let sufficient_layers = layers_of(&mut sufficient.iter().map(|(i, _, _)| *i));
    // Depth by the items: one item taken out lets it escape -> 1 (the same rule as our layers).
    let depth = if necessary.is_empty() {
        crate::model::depth(
            &sufficient_layers,
            &necessary_layers,
            candidates_complete,
            false,
        )
    } else {
        1
    };
    Attribution {
        necessary: necessary_layers,
        sufficient: sufficient_layers,
        depth,
        candidates: candidates_recorded,
        candidates_complete,
        caps_detail: caps_detail.clone(),
        seccomp_denied: seccomp_denied.clone(),
        inferred: false,
        ablation_runs: std::mem::take(&mut ablation.runs),
        items: Some(ItemAttribution {
            sufficient: sufficient.iter().map(|(i, _, _)| label(i)).collect(),
            necessary: necessary.iter().map(|i| label(i)).collect(),
            not_ablated,
        }),
    }
}

/// The errno an OCI filter returns for what it denies by default (None: it kills or allows).
fn filter_errno(filter: &serde_json::Value) -> Option<i32> {
    let action = filter.get("defaultAction")?.as_str()?;
    (action == "SCMP_ACT_ERRNO").then(|| {
        filter
            .get("defaultErrnoRet")
            .and_then(|e| e.as_i64())
            .map(|e| e as i32)
            .unwrap_or(libc::EPERM)
    })
}

struct Ablation<'a> {
    name: &'a str,
    runner: &'a mut dyn SpecRunner,
    runs: Vec<AblationRun>,
}

impl Ablation<'_> {
    fn trial(&mut self, spec: &ExternalSpec, description: String) -> TrialOutcome {
        let outcome = self.runner.run(spec, &description);
        self.runs.push(AblationRun {
            description,
            layers: spec.layers(),
            verdict: outcome.verdict,
            reason: outcome.reason.clone(),
        });
        outcome
    }

    /// Which withheld capabilities, given back, let the probe through under `base`. Singles by
    /// name; a group that does so only as a whole as "CAP_A+CAP_B".
    fn caps_drill_down(
        &mut self,
        base: &ExternalSpec,
        item: &str,
        withheld: Vec<String>,
    ) -> Vec<String> {
        crate::suite::attribution::caps_letting_through(withheld, &[], &mut |caps| {
            self.escapes_keeping(base, item, caps)
        })
    }

    fn escapes_keeping(&mut self, base: &ExternalSpec, item: &str, caps: &[String]) -> bool {
        let description = match caps {
            [one] => format!("{} with {item} giving back {one}", self.name),
            _ => format!(
                "{} with {item} giving back {} capabilities ({}..{})",
                self.name,
                caps.len(),
                caps[0],
                caps[caps.len() - 1]
            ),
        };
        self.trial(&base.with_caps(caps), description).verdict == Verdict::Escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model of signal-outside / ptrace-outside: blocked by a pid namespace, or (for ptrace)
    /// by the missing CAP_SYS_PTRACE.
    struct Model {
        needs_ptrace: bool,
        runs: usize,
    }

    impl SpecRunner for Model {
        fn run(&mut self, spec: &ExternalSpec, _description: &str) -> TrialOutcome {
            self.runs += 1;
            let ExternalSpec::Oci { config, .. } = spec else {
                panic!("an OCI spec")
            };
            let pid_ns = config["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["type"] == "pid");
            let ptrace = config["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == "CAP_SYS_PTRACE");
            let blocked = pid_ns || (self.needs_ptrace && !ptrace);
            TrialOutcome {
                verdict: if blocked {
                    Verdict::Blocked
                } else {
                    Verdict::Escaped
                },
                evidence: Evidence::default(),
                reason: String::new(),
            }
        }
    }

    fn docker() -> ExternalSpec {
        ExternalSpec::Oci {
            runtime: "crun".to_string(),
            source: "test".to_string(),
            config: super::super::crun::config(&[], None),
        }
    }

    const CANDIDATES: [Layer; 5] = [
        Layer::PidNs,
        Layer::Uid,
        Layer::Caps,
        Layer::UserNs,
        Layer::Seccomp,
    ];

    #[test]
    fn a_pid_namespace_alone_is_named_in_the_users_terms() {
        let mut model = Model {
            needs_ptrace: false,
            runs: 0,
        };
        let a = attribute(
            "cfg",
            &docker(),
            &CANDIDATES,
            &Evidence::default(),
            &mut model,
        );
        let items = a.items.as_ref().unwrap();
        assert_eq!(items.sufficient, ["linux.namespaces[pid]"]);
        assert_eq!(items.necessary, ["linux.namespaces[pid]"]);
        assert_eq!(a.sufficient, [Layer::PidNs]);
        assert!(a.candidates_complete && !a.inferred);
        // pid, capabilities, seccomp: 3 "only", 3 "without", 1 "without every candidate".
        assert_eq!(model.runs, 7);
    }

    #[test]
    fn capabilities_are_bisected_to_the_one_that_matters() {
        let mut model = Model {
            needs_ptrace: true,
            runs: 0,
        };
        let a = attribute(
            "cfg",
            &docker(),
            &CANDIDATES,
            &Evidence::default(),
            &mut model,
        );
        let items = a.items.unwrap();
        assert_eq!(
            items.sufficient,
            [
                "linux.namespaces[pid]",
                "process.capabilities(CAP_SYS_PTRACE)"
            ]
        );
        assert!(items.necessary.is_empty());
        assert_eq!(a.caps_detail, ["CAP_SYS_PTRACE"]);
        assert!(model.runs < 30, "{} runs", model.runs);
    }

    #[test]
    fn gvisors_sentry_is_one_item() {
        // Under runsc the victim is out of sight whatever the config says.
        struct Sentry(usize);
        impl SpecRunner for Sentry {
            fn run(&mut self, _: &ExternalSpec, _: &str) -> TrialOutcome {
                self.0 += 1;
                TrialOutcome {
                    verdict: Verdict::Blocked,
                    evidence: Evidence::default(),
                    reason: String::new(),
                }
            }
        }
        let runsc = ExternalSpec::Oci {
            runtime: "runsc".to_string(),
            source: "test".to_string(),
            config: super::super::crun::config(&[], None),
        };
        let mut runner = Sentry(0);
        let a = attribute(
            "runsc",
            &runsc,
            &CANDIDATES,
            &Evidence::default(),
            &mut runner,
        );
        let items = a.items.as_ref().unwrap();
        assert_eq!(items.sufficient, ["gVisor Sentry"]);
        assert!(items.necessary.is_empty() && !items.not_ablated.contains(&items.sufficient[0]));
        assert!(a.candidates_complete && a.depth == 0);
        assert_eq!(
            crate::report::cell::layers_text(&a),
            "gVisor Sentry",
            "no +unexplained"
        );
        // One run: every candidate item out, the Sentry alone.
        assert_eq!(runner.0, 1);
        // When the Sentry alone lets it through, the items are ablated as under crun.
        let mut model = Model {
            needs_ptrace: false,
            runs: 0,
        };
        let a = attribute(
            "runsc",
            &runsc,
            &CANDIDATES,
            &Evidence::default(),
            &mut model,
        );
        assert_eq!(a.items.unwrap().sufficient, ["linux.namespaces[pid]"]);
    }

    #[test]
    fn seccomp_names_the_denied_syscall() {
        struct Seccomp;
        impl SpecRunner for Seccomp {
            fn run(&mut self, spec: &ExternalSpec, _: &str) -> TrialOutcome {
                TrialOutcome {
                    verdict: if spec.oci_seccomp().is_some() {
                        Verdict::Blocked
                    } else {
                        Verdict::Escaped
                    },
                    evidence: Evidence {
                        steps: vec![breakout_attacks::Step {
                            action: "read key".to_string(),
                            syscall: "keyctl(KEYCTL_READ, 5)".to_string(),
                            result: None,
                            errno: Some(1),
                            errno_name: Some("EPERM".to_string()),
                            signal: None,
                            data: None,
                        }],
                        ..Evidence::default()
                    },
                    reason: String::new(),
                }
            }
        }
        let a = attribute(
            "cfg",
            &docker(),
            &[Layer::Seccomp, Layer::Caps],
            &Evidence::default(),
            &mut Seccomp,
        );
        assert_eq!(a.items.unwrap().sufficient, ["linux.seccomp(keyctl)"]);
    }
}
