//! Attribution by ablation (design.md, "Attribution"): which enabled layers blocked a probe.
//!
//! The algorithm only sees layer sets. Running a probe under a layer set is the caller's job
//! (a [`TrialRunner`]): in the guest it materialises the set from the profile's
//! `SandboxConfig` and launches the probe; in unit tests it is a model with known answers.
//!
//! For a probe blocked under enabled layers E with candidate layers K (the probe's metadata):
//! - candidates C = K ∩ E;
//! - `necessary`: L in C such that the probe escapes under E without L (and without every
//!   enabled layer that requires L, since the runtime cannot start those without it). Always run,
//!   never inferred from the sufficient layers: layers interact (the `uid` layer makes the payload
//!   the same uid as a uid-1000 victim, so `strict` without pid-ns lets a signal through although
//!   user-ns alone stops it);
//! - `sufficient`: L in C such that the probe is blocked under "L alone": L plus the layers the
//!   runtime requires for L to start. When that minimum is not empty it is run on its own as well:
//!   if the minimum already blocks, L is not credited (the report says why);
//! - completeness: one run of E without all of C (and their dependents) must escape, otherwise the
//!   block is "unexplained" by the candidates and nothing is credited silently;
//! - caps drill-down: which single capabilities, kept, let the probe through (group testing with
//!   bisection, so a probe stopped by one capability costs about 2·log2(n) runs, not n);
//! - seccomp drill-down: the syscalls on the probe's path that the filter denies, from the steps'
//!   evidence cross-checked with the filter itself.

use crate::model::{AblationRun, Attribution, Evidence};
use breakout_attacks::Step;
use breakout_attacks::{Layer, Verdict};
use std::collections::BTreeSet;

/// One configuration to try: the layers switched on and the capabilities kept on top of the
/// profile's own list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Variant {
    pub layers: BTreeSet<Layer>,
    /// Extra capabilities kept (names such as "CAP_SYS_PTRACE"); empty outside the caps
    /// drill-down.
    pub extra_caps: BTreeSet<String>,
}

impl Variant {
    pub fn of_layers(layers: BTreeSet<Layer>) -> Self {
        Variant {
            layers,
            extra_caps: BTreeSet::new(),
        }
    }
}

/// What one trial gave.
#[derive(Debug, Clone)]
pub struct TrialOutcome {
    pub verdict: Verdict,
    pub evidence: Evidence,
    /// The outside's reason for the verdict (names the failing step of a block).
    pub reason: String,
}

/// Runs the probe under a variant of the profile.
pub trait TrialRunner {
    fn run(&mut self, variant: &Variant, description: &str) -> TrialOutcome;
}

/// What attribution needs to know about the runtime and the profile, apart from running trials.
pub struct AblationInput<'a> {
    /// The profile's name, for the run descriptions ("strict without pid-ns").
    pub profile: &'a str,
    /// The layers the profile enables (E).
    pub enabled: &'a BTreeSet<Layer>,
    /// The probe's candidate layers (its metadata).
    pub candidates: &'a [Layer],
    /// The layers the runtime needs on for a layer to work (`breakout_runtime::requires`).
    pub requires: &'a dyn Fn(Layer) -> Vec<Layer>,
    /// Capabilities the profile drops (the ones the caps drill-down may add back), by name.
    pub dropped_caps: &'a [String],
    /// Capabilities that let this probe through under another configuration: the caps
    /// drill-down tries each alone first. Only the number of trials depends on them.
    pub caps_hints: &'a [String],
    /// Does the profile's seccomp filter deny this syscall name unconditionally
    /// (`SandboxConfig::seccomp_denies`)? `None`: seccomp off, unknown name or argument-dependent.
    pub seccomp_denies: &'a dyn Fn(&str) -> Option<bool>,
    /// The errno the filter returns for what it denies by default (None: it kills, or no
    /// seccomp). A failed step is only blamed on the filter when its errno is this one.
    pub seccomp_errno: Option<i32>,
    /// The evidence of the probe's run under the full profile.
    pub base_evidence: &'a Evidence,
}

/// Attribute a block by ablation. The caller has already seen the probe blocked under the
/// full profile.
pub fn attribute(input: &AblationInput<'_>, runner: &mut dyn TrialRunner) -> Attribution {
    let mut ablation = Ablation {
        input,
        runner,
        runs: Vec::new(),
    };
    ablation.run()
}

struct Ablation<'a, 'b> {
    input: &'a AblationInput<'b>,
    runner: &'a mut dyn TrialRunner,
    runs: Vec<AblationRun>,
}

impl Ablation<'_, '_> {
    fn run(&mut self) -> Attribution {
        let enabled = self.input.enabled;
        let candidates: Vec<Layer> = self
            .input
            .candidates
            .iter()
            .copied()
            .filter(|l| enabled.contains(l))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();

        let mut sufficient = Vec::new();
        let mut sufficient_evidence = Vec::new();
        for &layer in &candidates {
            let minimum = self.closure(layer);
            let mut description = format!("{layer} alone");
            let extra: Vec<Layer> = minimum.iter().copied().filter(|&l| l != layer).collect();
            if !extra.is_empty() {
                description.push_str(&format!(
                    " (with {}, which it requires)",
                    join_layers(&extra)
                ));
                let base = Variant::of_layers(extra.iter().copied().collect());
                let base_description = format!(
                    "{} alone (the minimum {layer} requires)",
                    join_layers(&extra)
                );
                if self.trial(&base, base_description).verdict != Verdict::Escaped {
                    // The minimum blocks (or cannot decide) on its own: `layer` cannot be shown
                    // to be sufficient, so it is not credited.
                    continue;
                }
            }
            let outcome = self.trial(&Variant::of_layers(minimum), description);
            if outcome.verdict == Verdict::Blocked {
                sufficient.push(layer);
                sufficient_evidence.push((layer, outcome.evidence));
            }
        }

        let mut necessary = Vec::new();
        for &layer in &candidates {
            let (variant, dropped_too) = self.without(&[layer]);
            let mut description = format!("{} without {}", self.input.profile, layer);
            if !dropped_too.is_empty() {
                description.push_str(&format!(
                    " (and {}, which require it)",
                    join_layers(&dropped_too)
                ));
            }
            if self.trial(&variant, description).verdict == Verdict::Escaped {
                necessary.push(layer);
            }
        }

        let (all_off, _) = self.without(&candidates);
        let candidates_complete = if candidates.is_empty() {
            false
        } else {
            let description = format!(
                "{} without every candidate ({})",
                self.input.profile,
                join_layers(&candidates)
            );
            self.trial(&all_off, description).verdict == Verdict::Escaped
        };

        let caps_detail = if sufficient.contains(&Layer::Caps) {
            self.caps_drill_down(Variant::of_layers(self.closure(Layer::Caps)), "caps alone")
        } else if necessary.contains(&Layer::Caps) {
            let profile = self.input.profile.to_string();
            self.caps_drill_down(Variant::of_layers(enabled.clone()), &profile)
        } else {
            Vec::new()
        };

        let seccomp_denied =
            if sufficient.contains(&Layer::Seccomp) || necessary.contains(&Layer::Seccomp) {
                let evidence = sufficient_evidence
                    .iter()
                    .find(|(l, _)| *l == Layer::Seccomp)
                    .map(|(_, e)| e)
                    .unwrap_or(self.input.base_evidence);
                seccomp_denied(
                    evidence,
                    self.input.seccomp_denies,
                    self.input.seccomp_errno,
                )
            } else {
                Vec::new()
            };

        Attribution {
            depth: crate::model::depth(&sufficient, &necessary, candidates_complete, false),
            candidates,
            necessary,
            sufficient,
            candidates_complete,
            caps_detail,
            seccomp_denied,
            inferred: false,
            ablation_runs: std::mem::take(&mut self.runs),
            items: None,
        }
    }

    fn trial(&mut self, variant: &Variant, description: String) -> TrialOutcome {
        let outcome = self.runner.run(variant, &description);
        self.runs.push(AblationRun {
            description,
            layers: variant.layers.iter().copied().collect(),
            verdict: outcome.verdict,
            reason: outcome.reason.clone(),
        });
        outcome
    }

    /// `layer` and everything it needs, transitively.
    fn closure(&self, layer: Layer) -> BTreeSet<Layer> {
        let mut set = BTreeSet::from([layer]);
        let mut queue = vec![layer];
        while let Some(l) = queue.pop() {
            for dep in (self.input.requires)(l) {
                if set.insert(dep) {
                    queue.push(dep);
                }
            }
        }
        set
    }

    /// The profile's layers without `removed` and without every enabled layer that needs one of
    /// them; returns the variant and the dependents that had to go too.
    fn without(&self, removed: &[Layer]) -> (Variant, Vec<Layer>) {
        let removed: BTreeSet<Layer> = removed.iter().copied().collect();
        let mut dependents = Vec::new();
        let layers: BTreeSet<Layer> = self
            .input
            .enabled
            .iter()
            .copied()
            .filter(|l| {
                if removed.contains(l) {
                    return false;
                }
                let needs_removed = self.closure(*l).iter().any(|d| removed.contains(d));
                if needs_removed {
                    dependents.push(*l);
                }
                !needs_removed
            })
            .collect();
        (Variant::of_layers(layers), dependents)
    }

    /// Which dropped capabilities, kept, let the probe through under `base` (where caps blocks).
    /// Singles are reported by name; a group that lets it through only as a whole is reported as
    /// "CAP_A+CAP_B".
    fn caps_drill_down(&mut self, base: Variant, context: &str) -> Vec<String> {
        let dropped = self.input.dropped_caps.to_vec();
        caps_letting_through(dropped, self.input.caps_hints, &mut |caps| {
            self.escapes_keeping(&base, context, caps)
        })
    }

    fn escapes_keeping(&mut self, base: &Variant, context: &str, caps: &[String]) -> bool {
        let mut variant = base.clone();
        variant.extra_caps = caps.iter().cloned().collect();
        let description = match caps {
            [one] => format!("{context} keeping {one}"),
            _ => format!(
                "{context} keeping {} capabilities ({}..{})",
                caps.len(),
                caps[0],
                caps[caps.len() - 1]
            ),
        };
        self.trial(&variant, description).verdict == Verdict::Escaped
    }
}

/// The syscalls on the probe's path that failed and that the filter denies unconditionally. A
/// SIGSYS end is reported too, since a killed process leaves no failing step behind.
pub fn seccomp_denied(
    evidence: &Evidence,
    denies: &dyn Fn(&str) -> Option<bool>,
    filter_errno: Option<i32>,
) -> Vec<String> {
    let failed_by_filter = evidence
        .steps
        .iter()
        .filter(|step| step.errno.is_some() && step.errno == filter_errno);
    let mut denied = denied_calls(failed_by_filter, denies);
    if let Some(breakout_runtime::ExitKind::Signaled { signal, .. }) = evidence.exit {
        if signal == libc::SIGSYS {
            denied.push("killed by SIGSYS".to_string());
        }
    }
    denied
}

/// The calls the `steps` name that the filter denies unconditionally, each once, in the order
/// met. A step may name several calls ("open+read(path)"): each is checked on its own.
pub fn denied_calls<'s>(
    steps: impl IntoIterator<Item = &'s Step>,
    denies: &dyn Fn(&str) -> Option<bool>,
) -> Vec<String> {
    let mut denied: Vec<String> = Vec::new();
    for step in steps {
        for name in syscall_names(&step.syscall) {
            if name.is_empty() || denied.iter().any(|d| d == name) {
                continue;
            }
            if denies(name) == Some(true) {
                denied.push(name.to_string());
            }
        }
    }
    denied
}

/// The calls a step's text names: "ptrace(PTRACE_ATTACH, 812)" -> ptrace; "open+read(/x)" ->
/// open, read. Each is the leading identifier of its part.
pub fn syscall_names(call: &str) -> impl Iterator<Item = &str> {
    let head = call.split('(').next().unwrap_or("");
    head.split('+').map(identifier)
}

/// The first call a step's text names: "ptrace(PTRACE_ATTACH, 812)" -> "ptrace".
pub fn syscall_name(call: &str) -> &str {
    syscall_names(call).next().unwrap_or("")
}

/// The leading identifier of `text` (letters, digits, `_`) after leading blanks.
fn identifier(text: &str) -> &str {
    let text = text.trim_start();
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

fn join_layers(layers: &[Layer]) -> String {
    layers
        .iter()
        .map(|l| l.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which of `withheld` capabilities, given back, let the probe through, with `escapes_keeping`
/// as the trial. Find one capability that does, take it out, look again: every single capability
/// is found at about log2(n) + 2 trials each. When only a combination lets it through, its
/// minimal group is reported as "CAP_A+CAP_B". Shared by our profiles' ablation and the item
/// ablation of external configurations.
///
/// `hints` (capabilities that let the probe through elsewhere) are tried alone first: a right
/// hint costs one trial instead of a bisection, and the search below still runs on what is
/// left, so a wrong or missing hint changes only the number of trials, never the answer. The
/// answer lists single capabilities in `withheld`'s order and a group last, as the bisection
/// alone finds them.
pub(crate) fn caps_letting_through(
    withheld: Vec<String>,
    hints: &[String],
    escapes_keeping: &mut dyn FnMut(&[String]) -> bool,
) -> Vec<String> {
    let mut remaining = withheld.clone();
    let mut found = Vec::new();
    for hint in hints {
        if remaining.contains(hint) && escapes_keeping(std::slice::from_ref(hint)) {
            remaining.retain(|c| c != hint);
            found.push(hint.clone());
        }
    }
    while !remaining.is_empty() && escapes_keeping(&remaining) {
        match find_one_cap(&remaining, escapes_keeping) {
            Some(cap) => {
                remaining.retain(|c| *c != cap);
                found.push(cap);
            }
            None => {
                // Only a combination lets it through.
                found.push(minimal_group(remaining, escapes_keeping).join("+"));
                break;
            }
        }
    }
    found.sort_by_key(|c| withheld.iter().position(|w| w == c).unwrap_or(usize::MAX));
    found
}

/// One capability of `set` (which lets the probe through as a whole) that does so alone.
/// Halving assumes a single capability: when the left half does not let it through, the right
/// one is taken untested, and the one capability left at the end is checked alone.
fn find_one_cap(
    set: &[String],
    escapes_keeping: &mut dyn FnMut(&[String]) -> bool,
) -> Option<String> {
    let mut set = set.to_vec();
    let mut tested_alone = false;
    while set.len() > 1 {
        let (left, right) = set.split_at(set.len() / 2);
        let (left, right) = (left.to_vec(), right.to_vec());
        if escapes_keeping(&left) {
            tested_alone = left.len() == 1;
            set = left;
        } else {
            tested_alone = false;
            set = right;
        }
    }
    if tested_alone || escapes_keeping(&set) {
        set.pop()
    } else {
        None
    }
}

/// Shrink a group that lets the probe through to a minimal one. More capabilities never stop a
/// probe that fewer let through, so whether `kept ∪ group[k..]` lets it through falls from yes to
/// no as k grows: bisection finds the last k at which it still does, group[k] is needed (without
/// it that suffix no longer suffices), is kept, and the search goes on in what follows it. Each
/// capability of the group costs about log2(n) + 1 trials instead of one trial for every
/// capability of the set, and the group found is the one dropping the earliest capabilities
/// first would find (the first one whose removal stops the probe is kept, and so on).
fn minimal_group(
    group: Vec<String>,
    escapes_keeping: &mut dyn FnMut(&[String]) -> bool,
) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    let mut rest = group;
    loop {
        let with_suffix = |kept: &[String], rest: &[String], k: usize| -> Vec<String> {
            kept.iter().chain(&rest[k..]).cloned().collect()
        };
        // kept ∪ rest[0..] lets the probe through (the whole group does, and each step keeps
        // that true); rest.len() + 1 stands for "past the end", never tried.
        let (mut lo, mut hi) = (0, rest.len() + 1);
        // What has been kept may already be enough: one trial ends the search.
        if !kept.is_empty() {
            if escapes_keeping(&with_suffix(&kept, &rest, rest.len())) {
                return kept;
            }
            hi = rest.len();
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if escapes_keeping(&with_suffix(&kept, &rest, mid)) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        if lo == rest.len() {
            // Only when nothing was kept yet: the empty set lets the probe through.
            return kept;
        }
        kept.push(rest[lo].clone());
        rest.drain(..=lo);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use breakout_attacks::Step;
    use rstest::rstest;

    /// A probe model: blocked when any of `stoppers` is on, or when caps is on and none of the
    /// `through_caps` is kept. Counts the runs.
    struct Model {
        stoppers: Vec<Layer>,
        caps_stop: bool,
        through_caps: Vec<Vec<&'static str>>,
        runs: usize,
    }

    impl TrialRunner for Model {
        fn run(&mut self, variant: &Variant, _description: &str) -> TrialOutcome {
            self.runs += 1;
            let mut blocked = self.stoppers.iter().any(|l| variant.layers.contains(l));
            if self.caps_stop && variant.layers.contains(&Layer::Caps) {
                let let_through = self
                    .through_caps
                    .iter()
                    .any(|group| group.iter().all(|c| variant.extra_caps.contains(*c)));
                blocked |= !let_through;
            }
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

    fn no_requires(_: Layer) -> Vec<Layer> {
        Vec::new()
    }

    fn all_caps() -> Vec<String> {
        (0..40)
            .map(|i| format!("CAP_{i}"))
            .chain(["CAP_SYS_PTRACE".to_string()])
            .collect()
    }

    fn layers(list: &[Layer]) -> BTreeSet<Layer> {
        list.iter().copied().collect()
    }

    fn attribute_model(
        model: &mut Model,
        enabled: &[Layer],
        candidates: &[Layer],
        requires: &dyn Fn(Layer) -> Vec<Layer>,
    ) -> Attribution {
        let enabled = layers(enabled);
        let caps = all_caps();
        let evidence = Evidence::default();
        let input = AblationInput {
            profile: "test",
            enabled: &enabled,
            candidates,
            requires,
            dropped_caps: &caps,
            caps_hints: &[],
            seccomp_denies: &|_| None,
            seccomp_errno: None,
            base_evidence: &evidence,
        };
        attribute(&input, model)
    }

    use Layer::*;

    #[rstest]
    // One stopper: necessary and sufficient, depth 1.
    #[case(&[PidNs], &[PidNs, UserNs, Caps], &[PidNs, Uid], &[PidNs], &[PidNs], true)]
    // Two stoppers both on: neither necessary, both sufficient, depth 2 (no single layer off
    // lets it escape).
    #[case(&[PidNs, UserNs], &[PidNs, UserNs, Caps], &[PidNs, UserNs], &[], &[UserNs, PidNs], true)]
    // A layer switched off leaves one stopper: depth 1.
    #[case(&[PidNs, UserNs], &[UserNs, Caps], &[PidNs, UserNs], &[UserNs], &[UserNs], true)]
    // The real stopper is not a candidate: unexplained, nothing credited.
    #[case(&[NetNs], &[PidNs, NetNs], &[PidNs], &[], &[], false)]
    fn known_answers(
        #[case] stoppers: &[Layer],
        #[case] enabled: &[Layer],
        #[case] candidates: &[Layer],
        #[case] necessary: &[Layer],
        #[case] sufficient: &[Layer],
        #[case] complete: bool,
    ) {
        let mut model = Model {
            stoppers: stoppers.to_vec(),
            caps_stop: false,
            through_caps: vec![],
            runs: 0,
        };
        let a = attribute_model(&mut model, enabled, candidates, &no_requires);
        assert_eq!(a.necessary, necessary);
        assert_eq!(a.sufficient, sufficient);
        let depth = match (necessary.is_empty(), complete) {
            (false, _) => 1,
            (true, true) => 2,
            (true, false) => 0,
        };
        assert_eq!(a.depth, depth);
        assert_eq!(a.candidates_complete, complete);
        assert_eq!(a.ablation_runs.len(), model.runs);
    }

    #[test]
    fn caps_drill_down_finds_the_single_capability_cheaply() {
        let mut model = Model {
            stoppers: vec![],
            caps_stop: true,
            through_caps: vec![vec!["CAP_SYS_PTRACE"]],
            runs: 0,
        };
        let a = attribute_model(&mut model, &[Caps, Seccomp], &[Caps, Seccomp], &no_requires);
        assert_eq!(a.sufficient, vec![Caps]);
        assert_eq!(a.necessary, vec![Caps]);
        assert_eq!(a.caps_detail, vec!["CAP_SYS_PTRACE".to_string()]);
        // 2 necessary + 2 sufficient + 1 completeness + about log2(41) + 3 for the search.
        assert!(model.runs <= 5 + 10, "too many runs: {}", model.runs);
    }

    /// signal-same-uid under strict: pid-ns hides the victim; user-ns alone blocks (root inside
    /// is uid 0 outside, a different uid, no CAP_KILL there); but uid on top of user-ns makes the
    /// payload the victim's uid, and equal uids may signal across user namespaces.
    struct SameUidSignal;
    impl TrialRunner for SameUidSignal {
        fn run(&mut self, v: &Variant, _: &str) -> TrialOutcome {
            let on = |l| v.layers.contains(&l);
            let same_uid = on(Uid);
            let blocked = on(PidNs) || (!same_uid && (on(UserNs) || on(Caps)));
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

    #[test]
    fn necessary_is_measured_not_inferred_when_layers_interact() {
        let enabled = layers(&[UserNs, PidNs, Uid, Caps]);
        let caps: Vec<String> = Vec::new();
        let evidence = Evidence::default();
        let input = AblationInput {
            profile: "strict",
            enabled: &enabled,
            candidates: &[PidNs, UserNs, Uid, Caps],
            requires: &no_requires,
            dropped_caps: &caps,
            caps_hints: &[],
            seccomp_denies: &|_| None,
            seccomp_errno: None,
            base_evidence: &evidence,
        };
        let a = attribute(&input, &mut SameUidSignal);
        assert_eq!(a.sufficient, vec![UserNs, PidNs, Caps]);
        // Three layers block it alone, yet it is one mistake from an escape.
        assert_eq!(a.necessary, vec![PidNs]);
    }

    #[test]
    fn caps_drill_down_finds_every_single_capability() {
        let mut model = Model {
            stoppers: vec![],
            caps_stop: true,
            through_caps: vec![vec!["CAP_3"], vec!["CAP_SYS_PTRACE"], vec!["CAP_20"]],
            runs: 0,
        };
        let a = attribute_model(&mut model, &[Caps], &[Caps], &no_requires);
        let mut found = a.caps_detail.clone();
        found.sort();
        assert_eq!(found, vec!["CAP_20", "CAP_3", "CAP_SYS_PTRACE"]);
    }

    /// Hints change the number of trials, never the answer: right, wrong, partial or none.
    #[rstest]
    #[case::single(vec![vec!["CAP_21"]])]
    #[case::two_singles(vec![vec!["CAP_21"], vec!["CAP_34"]])]
    #[case::single_and_group(vec![vec!["CAP_5"], vec!["CAP_1", "CAP_30"]])]
    #[case::group(vec![vec!["CAP_2", "CAP_21"]])]
    fn caps_hints_change_the_cost_not_the_answer(#[case] through: Vec<Vec<&str>>) {
        let withheld: Vec<String> = (0..41).map(|i| format!("CAP_{i}")).collect();
        let answer = |hints: &[String]| {
            let mut runs = 0;
            let found = caps_letting_through(withheld.clone(), hints, &mut |kept| {
                runs += 1;
                through
                    .iter()
                    .any(|group| group.iter().all(|c| kept.iter().any(|k| k == c)))
            });
            (found, runs)
        };
        let (plain, plain_runs) = answer(&[]);
        let singles: Vec<String> = plain.iter().filter(|c| !c.contains('+')).cloned().collect();
        for hints in [
            singles.clone(),
            singles.iter().rev().cloned().collect(),
            vec!["CAP_7".to_string(), "CAP_NOT_WITHHELD".to_string()],
            singles.iter().take(1).cloned().collect::<Vec<_>>(),
        ] {
            assert_eq!(answer(&hints).0, plain, "hints {hints:?}");
        }
        if !singles.is_empty() {
            let (_, hinted_runs) = answer(&singles);
            assert!(
                hinted_runs < plain_runs,
                "right hints: {hinted_runs} trials, none: {plain_runs}"
            );
        }
    }

    #[test]
    fn caps_drill_down_reports_a_joint_group() {
        let mut model = Model {
            stoppers: vec![],
            caps_stop: true,
            through_caps: vec![vec!["CAP_0", "CAP_39"]],
            runs: 0,
        };
        let a = attribute_model(&mut model, &[Caps], &[Caps], &no_requires);
        assert_eq!(a.caps_detail, vec!["CAP_0+CAP_39".to_string()]);
    }

    /// The drill-down before bisection: drop each capability the group can do without, front to
    /// back, one trial each.
    fn minimal_group_linear(
        mut group: Vec<String>,
        escapes: &mut dyn FnMut(&[String]) -> bool,
    ) -> Vec<String> {
        let mut i = 0;
        while i < group.len() && group.len() > 1 {
            let mut smaller = group.clone();
            smaller.remove(i);
            if escapes(&smaller) {
                group = smaller;
            } else {
                i += 1;
            }
        }
        group
    }

    /// Bisection finds the group dropping capabilities front to back finds, also when several
    /// minimal groups let the probe through (mknod-device under strict: CAP_MKNOD with either
    /// of two others), in far fewer trials.
    #[rstest]
    #[case(vec![vec![1, 21]])]
    #[case(vec![vec![0, 40]])]
    #[case(vec![vec![27, 21], vec![27, 34]])]
    #[case(vec![vec![3, 4, 5]])]
    #[case(vec![vec![2, 30], vec![5, 6, 7], vec![30, 31]])]
    #[case(vec![vec![10, 11, 12, 13, 14, 15]])]
    fn minimal_group_bisects_to_the_group_the_linear_search_finds(#[case] groups: Vec<Vec<usize>>) {
        let caps = all_caps();
        let through = |kept: &[String]| {
            groups
                .iter()
                .any(|g| g.iter().all(|i| kept.contains(&caps[*i])))
        };
        let mut linear_runs = 0;
        let linear = minimal_group_linear(caps.clone(), &mut |k| {
            linear_runs += 1;
            through(k)
        });
        let mut runs = 0;
        let bisected = minimal_group(caps.clone(), &mut |k| {
            runs += 1;
            through(k)
        });
        assert_eq!(bisected, linear);
        let size = bisected.len();
        assert!(
            runs <= size * 7 + 1 && runs < linear_runs,
            "{runs} trials for a group of {size} (linear: {linear_runs})"
        );
    }

    #[test]
    fn a_layer_needing_another_is_tested_with_its_minimum_and_not_credited_when_the_minimum_blocks()
    {
        // pid-ns needs mount-ns here (a made-up dependency), and mount-ns alone blocks.
        let requires = |l: Layer| if l == PidNs { vec![MountNs] } else { vec![] };
        let mut model = Model {
            stoppers: vec![MountNs],
            caps_stop: false,
            through_caps: vec![],
            runs: 0,
        };
        let a = attribute_model(&mut model, &[PidNs, MountNs], &[PidNs, MountNs], &requires);
        assert_eq!(a.sufficient, vec![MountNs]);
        assert!(a
            .ablation_runs
            .iter()
            .any(|r| r.description.contains("minimum pid-ns requires")));
        // Removing mount-ns removes pid-ns too, and says so.
        assert!(a
            .ablation_runs
            .iter()
            .any(|r| r.description == "test without mount-ns (and pid-ns, which require it)"));
    }

    #[test]
    fn seccomp_denied_uses_failing_steps_cross_checked_with_the_filter() {
        let step = |syscall: &str, errno: Option<i32>| Step {
            syscall: syscall.to_string(),
            errno,
            ..Step::default()
        };
        let evidence = Evidence {
            steps: vec![
                step("getpid()", None),
                step("ptrace(PTRACE_ATTACH, 812)", Some(1)),
                step("open(/etc/x)", Some(2)),
                step("open+keyctl(x)", Some(1)),
                // Denied by the filter by name, but failed with another errno: not the filter.
                step("mount(x)", Some(13)),
                step("keyctl(KEYCTL_READ, 5)", None),
            ],
            ..Evidence::default()
        };
        let denies = |name: &str| match name {
            "ptrace" | "keyctl" | "mount" => Some(true),
            "open" => Some(false),
            _ => None,
        };
        assert_eq!(
            seccomp_denied(&evidence, &denies, Some(1)),
            vec!["ptrace".to_string(), "keyctl".to_string()]
        );
    }
}
