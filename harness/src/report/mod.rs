//! Rendering a finished run: the terminal matrix, results.json, a self-contained HTML report,
//! JUnit XML and a Markdown matrix for pull-request comments. Every format states the
//! environment the verdicts depend on. One renderer per module; `cell` keeps their wording equal.

pub mod cell;
pub mod environment;
pub mod escape;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod matrix;
pub mod table;

use crate::model::RunReport;
use breakout_attacks::Step;
use breakout_runtime::ExitKind;
use std::path::{Path, PathBuf};

/// The output formats of `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Junit,
    Html,
    Markdown,
}

/// The report in one format. The table comes without colour; use [`table::render`] with
/// [`table::colour_for_stdout`] for a terminal.
pub fn render(report: &RunReport, format: Format) -> String {
    match format {
        Format::Table => table::render(report, false),
        Format::Json => json::render(report),
        Format::Junit => junit::render(report),
        Format::Html => html::render(report),
        Format::Markdown => markdown::render(report),
    }
}

/// The files `write_all` writes, by format.
pub const FILES: [(Format, &str); 4] = [
    (Format::Json, "results.json"),
    (Format::Html, "report.html"),
    (Format::Junit, "junit.xml"),
    (Format::Markdown, "report.md"),
];

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot create the report directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the report file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Writes results.json, report.html, junit.xml and report.md into `out_dir` (created if
/// missing) and returns the paths written.
pub fn write_all(report: &RunReport, out_dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(out_dir).map_err(|source| ReportError::CreateDir {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for (format, name) in FILES {
        let path = out_dir.join(name);
        std::fs::write(&path, render(report, format)).map_err(|source| ReportError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// One step of the inside half as a line: `attach to victim: ptrace(PTRACE_ATTACH, 812) = -1 EPERM`.
pub fn step_line(step: &Step) -> String {
    let result = match (step.result, step.errno) {
        (_, Some(errno)) => format!(
            "-1 {}",
            step.errno_name
                .clone()
                .unwrap_or_else(|| format!("errno {errno}"))
        ),
        (Some(value), None) => value.to_string(),
        (None, None) => "no result".to_string(),
    };
    let mut line = format!("{}: {} = {}", step.action, step.syscall, result);
    if let Some(data) = &step.data {
        line.push_str(&format!(" [data: {data}]"));
    }
    line
}

/// How the payload ended: "exit 0", "signal 31 (SIGSYS)".
pub fn exit_text(exit: ExitKind) -> String {
    match exit {
        ExitKind::Exited { code } => format!("exit {code}"),
        ExitKind::Signaled {
            signal,
            core_dumped,
        } => {
            let name = nix::sys::signal::Signal::try_from(signal)
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|_| "unknown".to_string());
            format!(
                "signal {signal} ({name}){}",
                if core_dumped { ", core dumped" } else { "" }
            )
        }
    }
}
