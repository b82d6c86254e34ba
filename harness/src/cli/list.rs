//! `breakout list probes|layers|profiles`: what the suite knows, as text, Markdown (the README's
//! probe list is this command's Markdown output, checked by a test) or JSON.

use crate::adapters;
use crate::describe::probe_metas;
use breakout_attacks::{Layer, ProbeClass};
use std::fmt::Write;

/// One configuration `list profiles` shows: our profiles and the external runtimes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConfigurationEntry {
    pub name: String,
    pub runtime: String,
    pub layers: Vec<Layer>,
    pub inferred: bool,
    pub description: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("built-in profile `{name}` does not load: {message}")]
    Profile { name: String, message: String },
}

/// Our built-in profiles, then the adapters for external runtimes.
pub fn configurations() -> Result<Vec<ConfigurationEntry>, ListError> {
    let mut entries = Vec::new();
    for name in breakout_runtime::config::builtin_names() {
        let config = breakout_runtime::config::SandboxConfig::builtin(name).map_err(|e| {
            ListError::Profile {
                name: name.to_string(),
                message: e.to_string(),
            }
        })?;
        entries.push(ConfigurationEntry {
            name: name.to_string(),
            runtime: "breakout".to_string(),
            layers: config.enabled_layers().into_iter().collect(),
            inferred: false,
            description: config.description.clone(),
        });
    }
    for adapter in adapters::all() {
        let info = adapter.profile_info();
        entries.push(ConfigurationEntry {
            name: info.name,
            runtime: info.runtime,
            layers: info.layers,
            inferred: info.inferred,
            description: adapter.description().to_string(),
        });
    }
    Ok(entries)
}

/// Output format of `list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Text,
    Markdown,
    Json,
}

/// What to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListWhat {
    Probes,
    Layers,
    Profiles,
    Workloads,
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// probes, layers, profiles or workloads
    #[arg(value_enum)]
    pub what: ListWhat,
    #[arg(long, value_enum, default_value = "text")]
    pub format: ListFormat,
}

fn layer_names(layers: &[Layer]) -> String {
    layers
        .iter()
        .map(|l| l.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn class_name(class: ProbeClass) -> &'static str {
    match class {
        ProbeClass::Plain => "plain",
        ProbeClass::Resource => "resource",
        ProbeClass::EndsGuest => "ends-guest",
    }
}

pub fn render_probes(format: ListFormat) -> String {
    let metas = probe_metas();
    let mut out = String::new();
    match format {
        ListFormat::Text => {
            let width = metas.iter().map(|m| m.id.len()).max().unwrap_or(0);
            for m in &metas {
                let _ = writeln!(
                    out,
                    "{:width$}  {}  [candidates: {}]",
                    m.id,
                    m.title,
                    layer_names(m.layers)
                );
            }
        }
        ListFormat::Markdown => {
            out.push_str("| probe | what it tries | layers that can stop it |\n|---|---|---|\n");
            for m in &metas {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} |",
                    m.id,
                    crate::report::escape::markdown_cell(m.title),
                    layer_names(m.layers)
                );
            }
        }
        ListFormat::Json => {
            let list: Vec<serde_json::Value> = metas
                .iter()
                .map(|m| {
                    serde_json::json!({
                        "id": m.id,
                        "title": m.title,
                        "technique": m.technique,
                        "oracle": m.oracle,
                        "layers": m.layers,
                        "references": m.references,
                        "class": class_name(m.class),
                    })
                })
                .collect();
            out = pretty(&list);
        }
    }
    out
}

pub fn render_workloads(format: ListFormat) -> String {
    let all = breakout_attacks::workloads::workloads();
    let mut out = String::new();
    match format {
        ListFormat::Text => {
            let width = all.iter().map(|w| w.meta.id.len()).max().unwrap_or(0);
            for w in &all {
                let _ = writeln!(out, "{:width$}  {}", w.meta.id, w.meta.title);
            }
        }
        ListFormat::Markdown => {
            out.push_str("| workload | what it does | outside check |\n|---|---|---|\n");
            for w in &all {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} |",
                    w.meta.id,
                    crate::report::escape::markdown_cell(w.meta.what),
                    crate::report::escape::markdown_cell(w.meta.check)
                );
            }
        }
        ListFormat::Json => {
            let list: Vec<serde_json::Value> = all
                .iter()
                .map(|w| {
                    serde_json::json!({
                        "id": w.meta.id,
                        "title": w.meta.title,
                        "what": w.meta.what,
                        "check": w.meta.check,
                        "needs": w.meta.needs,
                    })
                })
                .collect();
            out = pretty(&list);
        }
    }
    out
}

pub fn render_layers(format: ListFormat) -> String {
    let mut out = String::new();
    match format {
        ListFormat::Text => {
            for layer in Layer::ALL {
                let _ = writeln!(out, "{:13}  {}", layer.name(), layer.summary());
            }
        }
        ListFormat::Markdown => {
            out.push_str("| layer | what it does |\n|---|---|\n");
            for layer in Layer::ALL {
                let _ = writeln!(
                    out,
                    "| `{}` | {} |",
                    layer.name(),
                    crate::report::escape::markdown_cell(layer.summary())
                );
            }
        }
        ListFormat::Json => {
            let list: Vec<serde_json::Value> = Layer::ALL
                .iter()
                .map(|l| {
                    serde_json::json!({
                        "name": l.name(),
                        "summary": l.summary(),
                        "description": l.description(),
                    })
                })
                .collect();
            out = pretty(&list);
        }
    }
    out
}

pub fn render_profiles(format: ListFormat) -> Result<String, ListError> {
    let entries = configurations()?;
    let mut out = String::new();
    match format {
        ListFormat::Text => {
            let width = entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
            for e in &entries {
                let _ = writeln!(
                    out,
                    "{:width$}  {:8}  {}{}",
                    e.name,
                    e.runtime,
                    if e.layers.is_empty() {
                        "no layers".to_string()
                    } else {
                        layer_names(&e.layers)
                    },
                    if e.inferred {
                        " (as its flags turn them on; attribution inferred)"
                    } else {
                        ""
                    }
                );
            }
        }
        ListFormat::Markdown => {
            out.push_str("| configuration | runtime | layers switched on |\n|---|---|---|\n");
            for e in &entries {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {}{} |",
                    e.name,
                    e.runtime,
                    layer_names(&e.layers),
                    if e.inferred { " (inferred)" } else { "" }
                );
            }
        }
        ListFormat::Json => out = pretty(&entries),
    }
    Ok(out)
}

fn pretty<T: serde::Serialize>(value: &T) -> String {
    let mut text =
        serde_json::to_string_pretty(value).expect("plain data with string keys serializes");
    text.push('\n');
    text
}

/// `breakout list`: prints the list; exit code 0, or 1 when a built-in profile fails to load.
pub fn run(args: ListArgs) -> u8 {
    let text = match args.what {
        ListWhat::Probes => Ok(render_probes(args.format)),
        ListWhat::Layers => Ok(render_layers(args.format)),
        ListWhat::Profiles => render_profiles(args.format),
        ListWhat::Workloads => Ok(render_workloads(args.format)),
    };
    match text {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(e) => {
            eprintln!("breakout list: {e}");
            1
        }
    }
}
