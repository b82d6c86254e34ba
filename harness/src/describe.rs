//! The text that describes probes and layers: the probes' metadata and the explanation
//! `breakout explain` prints (what a probe does, why it works on a bare Linux process, how the
//! outside oracle proves an escape, which layers stop it and how; for a layer, what it does and
//! which probes it stops; with results, what a real run measured). Each layer's summary and
//! description are the runtime's table (`Layer::facts`).

use crate::model::RunReport;
use crate::report::cell::cell_text;
use breakout_attacks::{Layer, ProbeMeta};
use std::fmt::Write;

/// Every probe's metadata, in registry order.
pub fn probe_metas() -> Vec<&'static ProbeMeta> {
    breakout_attacks::all_probes()
        .into_iter()
        .map(|p| p.meta())
        .collect()
}

/// One probe's metadata.
pub fn probe_meta(id: &str) -> Option<&'static ProbeMeta> {
    breakout_attacks::probe(id).map(|p| p.meta())
}

/// The names closest to `id` among `known`: small edit distance, or one contains the other.
pub fn near_matches<'a>(id: &str, known: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let id = id.to_ascii_lowercase();
    let mut scored: Vec<(usize, &str)> = known
        .into_iter()
        .filter_map(|name| {
            let distance = strsim::levenshtein(&id, name);
            let related = id.len() >= 3 && (name.contains(&id) || id.contains(name));
            let close = distance <= 2.max(name.len() / 4);
            (related || close).then_some((distance, name))
        })
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(5)
        .map(|(_, n)| n.to_string())
        .collect()
}

/// Wraps a paragraph at 96 columns with an indent.
fn wrap(text: &str, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::from(indent);
    for word in text.split_whitespace() {
        if line.len() > indent.len() && line.len() + 1 + word.len() > 96 {
            out.push_str(&line);
            out.push('\n');
            line = String::from(indent);
        }
        if line.len() > indent.len() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if line.len() > indent.len() {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

pub fn explain_probe(meta: &ProbeMeta, results: Option<&RunReport>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: {}\n", meta.id, meta.title);
    out.push_str("What it does, and why it works on a bare Linux process:\n");
    out.push_str(&wrap(meta.technique, "  "));
    out.push_str("\nHow the outside proves an escape (the probe's own word is never proof):\n");
    out.push_str(&wrap(meta.oracle, "  "));
    out.push_str("\nLayers that can stop it, and how:\n");
    let width = meta
        .layers
        .iter()
        .map(|l| l.name().len())
        .max()
        .unwrap_or(0);
    for layer in meta.layers {
        let _ = writeln!(out, "  {:width$}  {}", layer.name(), layer.summary());
    }
    if !meta.references.is_empty() {
        out.push_str("\nReferences:\n");
        for r in meta.references {
            let _ = writeln!(out, "  {r}");
        }
    }
    if let Some(report) = results {
        let rows: Vec<_> = report
            .results
            .iter()
            .filter(|r| r.probe == meta.id)
            .collect();
        out.push_str("\nMeasured (--results):\n");
        if rows.is_empty() {
            out.push_str("  this probe is not in the results file\n");
        }
        // On several kernels one configuration has a row per kernel: each says which.
        let several = report.multi_kernel();
        for r in rows {
            let who = if several {
                format!("{} on {}", r.profile, report.kernel_of(r))
            } else {
                r.profile.clone()
            };
            let _ = writeln!(out, "  {who:14}  {}", cell_text(r));
            let _ = writeln!(out, "  {:14}  oracle: {}", "", r.reason);
            if let Some(a) = &r.attribution {
                out.push_str(&ablation_story(&r.profile, a));
            }
        }
    }
    let _ = writeln!(
        out,
        "\n`breakout explain LAYER` describes a layer; `breakout run --probe {}` measures it{}.",
        meta.id,
        if results.is_none() {
            "; `--results FILE` (a results.json or baseline) shows what a run measured"
        } else {
            ""
        }
    );
    out
}

/// The ablation runs behind a cell and, per candidate layer, why it is credited or not.
fn ablation_story(profile: &str, a: &crate::model::Attribution) -> String {
    let mut out = String::new();
    let pad = format!("  {:14}  ", "");
    let _ = writeln!(
        out,
        "{pad}depth {}: {}",
        a.depth,
        match a.depth {
            1 => "one layer switched off lets it escape",
            2 => "no single layer switched off lets it escape",
            _ if a.inferred => "inferred from evidence, nothing was switched off",
            _ if a.candidates_complete => {
                "not established (what blocks it cannot be taken out: a runtime's own kernel)"
            }
            _ => "not established (the candidates do not explain the block)",
        }
    );
    if a.ablation_runs.is_empty() {
        return out;
    }
    let _ = writeln!(out, "{pad}ablation runs:");
    for run in &a.ablation_runs {
        let _ = writeln!(
            out,
            "{pad}  {:12} {}",
            crate::model::verdict_name(run.verdict),
            run.description
        );
        // What the outside saw: for a block, the step that failed.
        if !run.reason.is_empty() {
            let _ = writeln!(out, "{pad}  {:12}   {}", "", one_line(&run.reason, 160));
        }
    }
    if let Some(items) = &a.items {
        // An external configuration: its items, in the user's terms, stand in for the layers.
        let list = |names: &[String]| {
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        let _ = writeln!(out, "{pad}items:");
        let _ = writeln!(
            out,
            "{pad}  sufficient (blocks with every other candidate item out): {}",
            list(&items.sufficient)
        );
        let _ = writeln!(
            out,
            "{pad}  necessary (taken out, it escapes): {}",
            list(&items.necessary)
        );
        let _ = writeln!(
            out,
            "{pad}  not ablated (kept in every run): {}",
            list(&items.not_ablated)
        );
        return out;
    }
    let verdict_of = |prefix: &str| {
        a.ablation_runs
            .iter()
            .find(|run| {
                run.description == prefix || run.description.starts_with(&format!("{prefix} ("))
            })
            .map(|run| crate::model::verdict_name(run.verdict))
    };
    let _ = writeln!(out, "{pad}why:");
    for layer in a.candidate_layers() {
        let name = layer.name();
        let alone = format!("{name} alone");
        let without = format!("{profile} without {name}");
        let sufficient = if a.sufficient.contains(&layer) {
            format!("sufficient ({alone}: blocked)")
        } else {
            match verdict_of(&alone) {
                Some(v) => format!("not sufficient ({alone}: {v})"),
                None => "not sufficient (its minimum blocks on its own, so it is not credited)"
                    .to_string(),
            }
        };
        let necessary = match (a.necessary.contains(&layer), verdict_of(&without)) {
            (true, _) => format!("necessary ({without}: escaped)"),
            (false, Some(v)) => format!("not necessary ({without}: {v})"),
            (false, None) => "not necessary".to_string(),
        };
        let _ = writeln!(out, "{pad}  {name}: {sufficient}; {necessary}");
    }
    out
}

pub fn explain_layer(layer: Layer, results: Option<&RunReport>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: {}\n", layer.name(), layer.summary());
    out.push_str(&wrap(layer.description(), "  "));
    let metas = probe_metas();
    let stops: Vec<&ProbeMeta> = metas
        .iter()
        .copied()
        .filter(|m| m.layers.contains(&layer))
        .collect();
    out.push_str("\nProbes it can stop (it is among their candidate layers):\n");
    if stops.is_empty() {
        out.push_str("  none in this suite\n");
    }
    let width = stops.iter().map(|m| m.id.len()).max().unwrap_or(0);
    for m in &stops {
        let _ = writeln!(out, "  {:width$}  {}", m.id, m.title);
    }
    if let Some(report) = results {
        out.push_str("\nMeasured (--results): where it alone still blocks the probe:\n");
        let mut any = false;
        for r in &report.results {
            if let Some(a) = &r.attribution {
                if a.sufficient.contains(&layer) {
                    any = true;
                    let _ = writeln!(
                        out,
                        "  {} under {}{}{}{}",
                        r.probe,
                        r.profile,
                        if report.multi_kernel() {
                            format!(" on {}", report.kernel_of(r))
                        } else {
                            String::new()
                        },
                        if a.necessary.contains(&layer) {
                            " (and without it, it escapes: depth 1)"
                        } else {
                            ""
                        },
                        if a.inferred { " (inferred)" } else { "" }
                    );
                }
            }
        }
        if !any {
            out.push_str("  nowhere in this results file\n");
        }
    }
    out
}

/// The first line of `text`, cut at `max` characters (on a char boundary).
fn one_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line.to_string(),
    }
}
