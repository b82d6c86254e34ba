//! What one (probe, profile) cell says, shared by every renderer so the table, the HTML heatmap,
//! the Markdown matrix and JUnit agree word for word.

use crate::model::{Attribution, ProbeResult};
use breakout_attacks::{Layer, Verdict};

/// How strong the block was, which is what the heatmap colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shade {
    Escaped,
    /// Blocked with this depth (>= 1): 1 = one layer switched off lets it escape, 2 = no
    /// single layer off does ([`crate::model::depth`]).
    Depth(usize),
    /// Blocked, but the depth is not established: the candidates do not explain the block, or
    /// no attribution was made.
    Unattributed,
    Inconclusive,
    Skipped,
}

impl Shade {
    pub fn of(result: &ProbeResult) -> Shade {
        match result.verdict {
            Verdict::Escaped => Shade::Escaped,
            Verdict::Inconclusive => Shade::Inconclusive,
            Verdict::Skipped => Shade::Skipped,
            Verdict::Blocked => match &result.attribution {
                Some(a) if a.depth > 0 => Shade::Depth(a.depth),
                _ => Shade::Unattributed,
            },
        }
    }

    /// A CSS class / legend key.
    pub fn key(self) -> &'static str {
        match self {
            Shade::Escaped => "escaped",
            Shade::Depth(1) => "depth1",
            Shade::Depth(_) => "depth2",
            Shade::Unattributed => "unattributed",
            Shade::Inconclusive => "inconclusive",
            Shade::Skipped => "skipped",
        }
    }
}

/// One layer as a cell shows it: the list layers carry their drill-down, e.g.
/// `caps(CAP_SYS_PTRACE)` or `seccomp(keyctl)`.
pub fn layer_label(layer: Layer, attribution: &Attribution) -> String {
    let detail = match layer {
        Layer::Caps => &attribution.caps_detail,
        Layer::Seccomp => &attribution.seccomp_denied,
        _ => return layer.name().to_string(),
    };
    if detail.is_empty() {
        layer.name().to_string()
    } else {
        format!("{}({})", layer.name(), detail.join(","))
    }
}

/// The layers part of a blocked cell, e.g. "user-ns, pid-ns!, caps(CAP_KILL)": the sufficient
/// layers (each alone blocks), `!` on those without which the probe escapes; or, when no single
/// layer suffices, the whole combination: "combined(mount-ns+caps(CAP_SYS_ADMIN)+fs-hardening)",
/// "combined(new-session + some of user-ns|uid|caps|seccomp)" (new-session is needed, and it
/// holds only with some of the others: with all of them it blocks, with none it escapes).
pub fn layers_text(attribution: &Attribution) -> String {
    if let Some(items) = &attribution.items {
        return items_text(attribution, items);
    }
    let label = |l: &Layer| layer_label(*l, attribution);
    if attribution.sufficient.is_empty() {
        if attribution.inferred {
            return "no evidence names a layer".to_string();
        }
        if !attribution.candidates_complete {
            return "unexplained".to_string();
        }
        let combination = attribution.combination();
        let required: Vec<String> = combination.required.iter().map(label).collect();
        let partners: Vec<&str> = combination.partners.iter().map(|l| l.name()).collect();
        return match (required.is_empty(), partners.is_empty()) {
            (false, true) => format!("combined({})", required.join("+")),
            (false, false) => format!(
                "combined({} + some of {})",
                required.join("+"),
                partners.join("|")
            ),
            (true, false) => format!("combined(two or more of {})", partners.join("|")),
            (true, true) => "combined".to_string(),
        };
    }
    let needs: Vec<String> = attribution
        .necessary
        .iter()
        .filter(|l| !attribution.sufficient.contains(l))
        .map(|l| format!("{}!", label(l)))
        .collect();
    // A lone layer needs no mark: the colour (depth 1) already says it is the only one.
    let marked = attribution.sufficient.len() + needs.len() > 1;
    let mut parts: Vec<String> = attribution
        .sufficient
        .iter()
        .map(|l| {
            let mut text = label(l);
            if marked && attribution.necessary.contains(l) {
                text.push('!');
            }
            text
        })
        .collect();
    if !needs.is_empty() {
        parts.push(format!("needs {}", needs.join(", ")));
    }
    let mut text = parts.join(", ");
    if !attribution.candidates_complete && !attribution.inferred {
        text.push_str(" +unexplained");
    }
    text
}

/// An external configuration ablated item by item names the items as the user wrote them:
/// "linux.namespaces[pid], process.capabilities(CAP_SYS_PTRACE)", "--unshare-pid".
fn items_text(attribution: &Attribution, items: &crate::model::ItemAttribution) -> String {
    if items.sufficient.is_empty() {
        if !attribution.candidates_complete {
            return "unexplained".to_string();
        }
        if items.necessary.is_empty() {
            return "combined".to_string();
        }
        return format!("combined({})", items.necessary.join("+"));
    }
    let mut text = items.sufficient.join(", ");
    if !attribution.candidates_complete {
        text.push_str(" +unexplained");
    }
    text
}

/// The whole cell: "ESCAPED", "blocked: pid-ns, caps(CAP_SYS_PTRACE)", "blocked~: net-ns"
/// (`~` marks attribution inferred from evidence), "inconclusive", "skipped".
pub fn cell_text(result: &ProbeResult) -> String {
    match result.verdict {
        Verdict::Escaped => "ESCAPED".to_string(),
        Verdict::Inconclusive => "inconclusive".to_string(),
        Verdict::Skipped => "skipped".to_string(),
        Verdict::Blocked => match &result.attribution {
            None => "blocked".to_string(),
            Some(a) => {
                let mark = if a.inferred { "~" } else { "" };
                format!("blocked{mark}: {}", layers_text(a))
            }
        },
    }
}

/// Counts of each verdict, for summaries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub escaped: usize,
    pub blocked: usize,
    pub inconclusive: usize,
    pub skipped: usize,
}

impl Tally {
    pub fn of<'a>(results: impl IntoIterator<Item = &'a ProbeResult>) -> Tally {
        let mut tally = Tally::default();
        for r in results {
            match r.verdict {
                Verdict::Escaped => tally.escaped += 1,
                Verdict::Blocked => tally.blocked += 1,
                Verdict::Inconclusive => tally.inconclusive += 1,
                Verdict::Skipped => tally.skipped += 1,
            }
        }
        tally
    }

    pub fn total(self) -> usize {
        self.escaped + self.blocked + self.inconclusive + self.skipped
    }
}
