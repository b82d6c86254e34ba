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
pub mod svg;
pub mod table;

use crate::model::gate::GateReport;
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
    render_gated(report, format, None)
}

/// The report in one format, led by the gate's findings when the run was judged against a
/// baseline (`gate`: the findings and the baseline's name): JUnit then fails exactly the
/// regressions, report.md starts with them. The other formats show the run alone.
pub fn render_gated(
    report: &RunReport,
    format: Format,
    gate: Option<(&GateReport, &str)>,
) -> String {
    match (format, gate) {
        (Format::Junit, Some((g, _))) => junit::render_gated(report, Some(g)),
        (Format::Markdown, Some(g)) => markdown::render_gated(report, Some(g)),
        _ => render_alone(report, format),
    }
}

/// The report of a comparison (`breakout compare`): report.md and report.html lead with where
/// the configurations differ; the other formats are those of a run.
pub fn render_compared(report: &RunReport, format: Format) -> String {
    match format {
        Format::Markdown => markdown::render_compared(report),
        Format::Html => html::render_compared(report),
        other => render_alone(report, other),
    }
}

/// [`write_all`] for a comparison ([`render_compared`]).
pub fn write_all_compared(report: &RunReport, out_dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    write_files(out_dir, |format| render_compared(report, format))
}

fn render_alone(report: &RunReport, format: Format) -> String {
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
    write_all_gated(report, out_dir, None)
}

/// [`write_all`], with junit.xml and report.md judged by the gate when given.
pub fn write_all_gated(
    report: &RunReport,
    out_dir: &Path,
    gate: Option<(&GateReport, &str)>,
) -> Result<Vec<PathBuf>, ReportError> {
    write_files(out_dir, |format| render_gated(report, format, gate))
}

fn write_files(
    out_dir: &Path,
    render: impl Fn(Format) -> String,
) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(out_dir).map_err(|source| ReportError::CreateDir {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for (format, name) in FILES {
        let path = out_dir.join(name);
        std::fs::write(&path, render(format)).map_err(|source| ReportError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// Check before anything runs that `dir` can be created and written: a run that takes minutes
/// must not end in "cannot write". Leaves the directory (created if missing) and nothing else.
pub fn check_writable_dir(dir: &Path) -> Result<(), ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let probe = dir.join(format!(".breakout-write-check-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|source| ReportError::Write {
        path: probe.clone(),
        source,
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Check before anything runs that `file` can be written (created, or replaced), without
/// touching an existing file.
pub fn check_writable_file(file: &Path) -> Result<(), ReportError> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if file.is_dir() {
        return Err(ReportError::Write {
            path: file.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::IsADirectory, "is a directory"),
        });
    }
    if file.exists() {
        return std::fs::OpenOptions::new()
            .append(true)
            .open(file)
            .map(drop)
            .map_err(|source| ReportError::Write {
                path: file.to_path_buf(),
                source,
            });
    }
    if !dir.is_dir() {
        return Err(ReportError::Write {
            path: file.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("the directory {} does not exist", dir.display()),
            ),
        });
    }
    let probe = dir.join(format!(".breakout-write-check-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|source| ReportError::Write {
        path: file.to_path_buf(),
        source,
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
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
