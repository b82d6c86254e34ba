//! `breakout explain PROBE|LAYER`, for coursework: what a probe does, why it works on a bare
//! Linux process, how the outside oracle proves an escape, which layers stop it and how; for a
//! layer, what it does and which probes it stops. With `--results FILE` it adds what a real run
//! measured (verdicts and sufficient layers per profile). The text itself is in
//! [`crate::describe`].

use crate::describe::{explain_layer, explain_probe, near_matches, probe_meta, probe_metas};
use crate::report::escape::terminal;
use breakout_attacks::{Layer, ProbeMeta};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ExplainArgs {
    /// A probe id (`breakout list probes`) or a layer name (`breakout list layers`).
    pub id: String,
    /// A results.json (from `breakout run --out`, or a baseline) whose verdicts to show.
    #[arg(long, value_name = "FILE")]
    pub results: Option<PathBuf>,
    /// Also write the probe's layer stack as an SVG picture to FILE (one column per profile of
    /// --results; sufficient and necessary layers marked).
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    #[command(flatten)]
    pub file_probes: crate::suite::file_probes::FileProbeArgs,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExplainError {
    #[error("unknown probe or layer `{id}`{}; `breakout list probes` and `breakout list layers` show them all",
        if near.is_empty() { String::new() } else { format!(" (did you mean: {}?)", near.join(", ")) })]
    Unknown { id: String, near: Vec<String> },
}

/// What `explain` describes.
pub enum Subject {
    Probe(&'static ProbeMeta),
    Layer(Layer),
}

pub fn resolve(id: &str) -> Result<Subject, ExplainError> {
    if let Some(meta) = probe_meta(id) {
        return Ok(Subject::Probe(meta));
    }
    if let Ok(layer) = id.parse::<Layer>() {
        return Ok(Subject::Layer(layer));
    }
    let metas = probe_metas();
    let known = metas
        .iter()
        .map(|m| m.id)
        .chain(Layer::ALL.iter().map(|l| l.name()));
    Err(ExplainError::Unknown {
        id: id.to_string(),
        near: near_matches(id, known),
    })
}

/// `breakout explain`: 0, or 2 for an unknown id or an unreadable results file.
pub fn run(args: ExplainArgs) -> u8 {
    let results = match &args.results {
        None => None,
        Some(path) => match crate::report::json::load(path) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("breakout explain: {e}");
                return 2;
            }
        },
    };
    if let Err(e) = args.file_probes.probes_to_run(&[]) {
        eprintln!("breakout explain: {e}");
        return 2;
    }
    match resolve(&args.id) {
        Ok(Subject::Probe(meta)) => {
            // With results it quotes their reasons: shown, not sent to the terminal.
            print!("{}", terminal(&explain_probe(meta, results.as_ref())));
            if let Some(path) = &args.svg {
                if let Err(e) = std::fs::write(
                    path,
                    crate::report::svg::layer_stack(meta, results.as_ref()),
                ) {
                    eprintln!("breakout explain: writing {}: {e}", path.display());
                    return 2;
                }
                eprintln!("wrote {}", path.display());
            }
        }
        Ok(Subject::Layer(layer)) => {
            print!("{}", terminal(&explain_layer(layer, results.as_ref())))
        }
        Err(e) => {
            eprintln!("breakout explain: {e}");
            return 2;
        }
    }
    0
}
