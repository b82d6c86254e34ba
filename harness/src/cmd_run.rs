//! `breakout run`: the suite in a fresh VM, a progress bar while it runs, the report at the end,
//! and the regression gate with `--baseline`.
//!
//! Exit codes: `exit_codes::RUN` (printed by `--help`).

use crate::gate;
use crate::model::{GuestEvent, RunReport};
use crate::plan::RunPlan;
use crate::report::{self, Format};
use crate::run::{self, Binaries, Observer, VmArgs};
use breakout_attacks::Verdict;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct RunArgs {
    /// A profile to test (built-in name or TOML file); repeat. Default: none, namespaces,
    /// docker-default, strict.
    #[arg(long = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,
    /// A probe to run; repeat. Default: every probe (`breakout list probes`), unless only
    /// workloads are named.
    #[arg(long = "probe", value_name = "ID")]
    pub probes: Vec<String>,
    /// A workload to run; repeat (`breakout list workloads`). Default: every workload when no
    /// probe is named, none when probes are.
    #[arg(long = "workload", value_name = "ID")]
    pub workloads: Vec<String>,
    /// Run no workload (the VM then boots without their image).
    #[arg(long, conflicts_with = "workloads")]
    pub no_workloads: bool,
    /// What to print on stdout at the end.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Also write results.json, report.html, junit.xml and report.md into DIR.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Exit 1 when the results are worse than this baseline (see `breakout gate`).
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Write the results as a baseline to FILE.
    #[arg(long, value_name = "FILE")]
    pub write_baseline: Option<PathBuf>,
    /// With --baseline: a kernel release other than the baseline's is a regression (without it,
    /// one line names both).
    #[arg(long)]
    pub strict_kernel: bool,
    #[command(flatten)]
    pub file_probes: crate::file_probes::FileProbeArgs,
    #[command(flatten)]
    pub vm: VmArgs,
}

pub fn run(args: RunArgs) -> u8 {
    // Everything the user named is checked before the VM boots.
    let probes = match args.file_probes.probes_to_run(&args.probes) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("breakout run: {e}");
            return 2;
        }
    };
    let mut plan = match RunPlan::from_names(&args.profiles, &probes) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("breakout run: {e}");
            return 2;
        }
    };
    // Workloads only: no probe runs. Probes only: no workload runs.
    if probes.is_empty() && !args.workloads.is_empty() {
        plan.jobs.clear();
    }
    let with_workloads =
        !args.no_workloads && (!args.workloads.is_empty() || args.probes.is_empty());
    if with_workloads {
        if let Err(e) = plan.set_workloads(&args.workloads) {
            eprintln!("breakout run: {e}");
            return 2;
        }
    }
    match plan.add_positive_control() {
        Ok(Some(name)) => eprintln!(
            "breakout run: no selected profile is without layers, so there is no positive control: every probe also runs under `{name}` (unsandboxed), so a broken probe cannot read as a block"
        ),
        Ok(None) => {}
        Err(e) => {
            eprintln!("breakout run: {e}");
            return 2;
        }
    }
    let baseline = match &args.baseline {
        // The gate judges the run against the part of the baseline the run selected (recorded in
        // the results), so nothing is trimmed here.
        Some(path) => match gate::load(path, "baseline") {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!("breakout run: {e}");
                return 2;
            }
        },
        None => None,
    };
    if let Some(dir) = &args.out {
        if let Err(e) = report::check_writable_dir(dir) {
            eprintln!("breakout run: --out: {e}");
            return 2;
        }
    }
    if let Some(path) = &args.write_baseline {
        if let Err(e) = report::check_writable_file(path) {
            eprintln!("breakout run: --write-baseline: {e}");
            return 2;
        }
    }
    let report = match execute(&plan, &args.vm) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("breakout run: {e:#}");
            return 2;
        }
    };
    let options = gate::GateOptions {
        strict_kernel: args.strict_kernel,
    };
    let verdict = baseline
        .as_ref()
        .map(|b| gate::compare_with(b, &report, options));
    let baseline_name = args
        .baseline
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let gated = verdict.as_ref().map(|v| (v, baseline_name.as_str()));

    let shown = match args.format {
        Format::Table => report::table::render(&report, report::table::colour_for_stdout()),
        other => report::render_gated(&report, other, gated),
    };
    print!("{shown}");
    eprintln!(
        "breakout run: {} results and {} workload results in {:.1} s (boot {:.1} s, probe runs {:.1} s, ablation {:.1} s, workloads {:.1} s)",
        report.results.len(),
        report.workloads.len(),
        report.timings.total_ms as f64 / 1000.0,
        report.timings.boot_ms as f64 / 1000.0,
        report.timings.probes_ms as f64 / 1000.0,
        report.timings.ablation_ms as f64 / 1000.0,
        report.timings.workloads_ms as f64 / 1000.0
    );
    let mut code = 0;
    if let Some(dir) = &args.out {
        match report::write_all_gated(&report, dir, gated) {
            Ok(paths) => {
                for p in paths {
                    eprintln!("wrote {}", p.display());
                }
            }
            Err(e) => {
                eprintln!("breakout run: {e}");
                code = 2;
            }
        }
    }
    if let Some(path) = &args.write_baseline {
        match gate::write_baseline(&report, path) {
            Ok(()) => eprintln!("wrote baseline {}", path.display()),
            Err(e) => {
                eprintln!("breakout run: {e}");
                code = 2;
            }
        }
    }
    for r in report.results.iter().filter(|r| {
        gate::configuration_without_layers(&report, &r.profile) && r.verdict == Verdict::Skipped
    }) {
        eprintln!(
            "breakout run: warning: {} did not run under {} (no positive control): {}",
            r.probe, r.profile, r.reason
        );
    }
    let failed_controls = positive_control_failures(&report);
    if !failed_controls.is_empty() {
        eprintln!("breakout run: positive control FAILED: these probes did not escape a configuration without layers, so they prove nothing:");
        for line in &failed_controls {
            eprintln!("  - {line}");
        }
        if code == 0 {
            code = 3;
        }
    }
    let broken_workloads = workload_control_failures(&report);
    if !broken_workloads.is_empty() {
        eprintln!("breakout run: positive control FAILED: these workloads do not work under a configuration without layers, so they are broken workloads and prove nothing about a sandbox:");
        for line in &broken_workloads {
            eprintln!("  - {line}");
        }
        if code == 0 {
            code = 3;
        }
    }
    if let (Some(verdict), Some(path)) = (&verdict, &args.baseline) {
        eprint!("{}", gate::render(verdict, path));
        if !verdict.passed() {
            code = 1;
        }
    }
    code
}

/// Run a plan with the binaries beside this one and a progress display on stderr.
pub fn execute(plan: &RunPlan, vm: &VmArgs) -> anyhow::Result<RunReport> {
    let binaries = Binaries::beside_current_exe()?;
    let mut progress = Progress::new(plan.jobs.len() + plan.workloads.len());
    let report = run::execute(plan, vm, &binaries, &mut progress);
    progress.finish();
    Ok(report?)
}

/// "workload under profile: verdict (step)" for every workload that does not work under a
/// configuration of ours that switches no layer on.
pub fn workload_control_failures(report: &RunReport) -> Vec<String> {
    let controls: Vec<String> = report
        .profiles
        .iter()
        .filter(|p| gate::configuration_without_layers(report, &p.name))
        .map(|p| p.name.clone())
        .collect();
    breakout_harness::workloads::broken_controls(&report.workloads, &controls)
        .into_iter()
        .map(|r| {
            format!(
                "{} under {}: {}{} ({})",
                r.workload,
                r.profile,
                r.verdict.as_str(),
                r.step
                    .as_ref()
                    .map(|s| format!(" at {s}"))
                    .unwrap_or_default(),
                r.reason
            )
        })
        .collect()
}

/// "probe under profile: verdict" for every probe blocked (or inconclusive) under a configuration
/// of ours that switches no layer on. A skipped probe is warned about, not counted.
pub fn positive_control_failures(report: &RunReport) -> Vec<String> {
    report
        .results
        .iter()
        .filter(|r| {
            gate::configuration_without_layers(report, &r.profile)
                && matches!(r.verdict, Verdict::Blocked | Verdict::Inconclusive)
        })
        .map(|r| {
            format!(
                "{} under {}: {} ({})",
                r.probe,
                r.profile,
                gate::verdict_name(r.verdict),
                r.reason
            )
        })
        .collect()
}

/// The progress display: a bar on a terminal (probe, profile, done/total, elapsed); otherwise
/// one line per phase and per result, and a line every [`HEARTBEAT`] without news, so a CI log
/// shows progress from the first second (a TCG boot alone takes tens of seconds).
struct Progress {
    bar: Option<ProgressBar>,
    total: usize,
    done: usize,
    started: Instant,
    /// What the run is doing and when a line was last printed, shared with the heartbeat.
    state: std::sync::Arc<std::sync::Mutex<Heartbeat>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(10);

struct Heartbeat {
    phase: String,
    done: usize,
    last_line: Instant,
}

impl Progress {
    fn new(total: usize) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
                )
                .expect("the template is valid"),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar.set_message("booting the VM");
            bar
        });
        let started = Instant::now();
        let state = std::sync::Arc::new(std::sync::Mutex::new(Heartbeat {
            phase: "building the guest image and booting the VM".to_string(),
            done: 0,
            last_line: started,
        }));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        if bar.is_none() {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(std::time::Duration::from_millis(500));
                    let Ok(mut s) = state.lock() else { return };
                    if s.last_line.elapsed() >= HEARTBEAT
                        && !stop.load(std::sync::atomic::Ordering::Relaxed)
                    {
                        eprintln!(
                            "[{:>6.1} s] {}/{total} still {}",
                            started.elapsed().as_secs_f64(),
                            s.done,
                            s.phase
                        );
                        s.last_line = Instant::now();
                    }
                }
            });
        }
        Progress {
            bar,
            total,
            done: 0,
            started,
            state,
            stop,
        }
    }

    /// A line on stderr (non-terminal), stamped with the run's elapsed time.
    fn line(&self, text: &str) {
        eprintln!("[{:>6.1} s] {text}", self.started.elapsed().as_secs_f64());
        if let Ok(mut s) = self.state.lock() {
            s.last_line = Instant::now();
        }
    }

    fn phase(&self, phase: &str) {
        if let Ok(mut s) = self.state.lock() {
            s.phase = phase.to_string();
            s.done = self.done;
        }
    }

    fn finish(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn booting(&mut self, group: &str, attempt: usize) {
        let message = if attempt == 0 {
            format!("booting a VM for {group} ({} jobs)", self.total)
        } else {
            format!(
                "a launch took the guest down; booting VM #{} for {group}",
                attempt + 1
            )
        };
        self.phase("building the guest image and booting the VM");
        match &self.bar {
            Some(bar) => bar.set_message(message),
            None => self.line(&message),
        }
    }

    fn event(&mut self, event: &GuestEvent) {
        match event {
            GuestEvent::Plan { total, .. } => {
                let message = format!(
                    "guest up: {total} jobs, first every probe under its profile, then ablation of the blocked ones"
                );
                self.phase("running probes (results of blocked probes come after their ablation)");
                match &self.bar {
                    Some(bar) => bar.set_message(message),
                    None => self.line(&message),
                }
            }
            GuestEvent::Environment(env) => {
                if self.bar.is_none() {
                    self.line(&format!(
                        "guest kernel {}",
                        if env.kernel_release.is_empty() {
                            &env.kernel
                        } else {
                            &env.kernel_release
                        }
                    ));
                }
            }
            GuestEvent::Started { probe, profile } => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("{probe} under {profile}"));
                }
            }
            GuestEvent::Result(r) => {
                self.done += 1;
                self.phase("running probes and ablation");
                let line = format!(
                    "{} under {}: {}",
                    r.probe,
                    r.profile,
                    report::cell::cell_text(r)
                );
                match &self.bar {
                    Some(bar) => {
                        bar.inc(1);
                        bar.set_message(line);
                    }
                    None => self.line(&format!("{}/{} {line}", self.done, self.total)),
                }
            }
            GuestEvent::WorkloadsStarted { total } => {
                let message = format!("running {total} workloads (the usability half)");
                self.phase("running workloads");
                match &self.bar {
                    Some(bar) => bar.set_message(message),
                    None => self.line(&message),
                }
            }
            GuestEvent::Workload(w) => {
                self.done += 1;
                self.phase("running workloads");
                let line = format!(
                    "workload {} under {}: {}{}",
                    w.workload,
                    w.profile,
                    w.verdict.as_str(),
                    w.step
                        .as_ref()
                        .map(|s| format!(" ({s})"))
                        .unwrap_or_default()
                );
                match &self.bar {
                    Some(bar) => {
                        bar.inc(1);
                        bar.set_message(line);
                    }
                    None => self.line(&format!("{}/{} {line}", self.done, self.total)),
                }
            }
            GuestEvent::Done { .. } => {
                self.phase("shutting the VM down");
            }
            GuestEvent::Error { message } => match &self.bar {
                Some(bar) => bar.println(format!("guest error: {message}")),
                None => eprintln!("guest error: {message}"),
            },
            _ => {}
        }
    }

    fn console(&mut self, _stream: breakout_vm::Stream, bytes: &[u8]) {
        // The guest's own stderr: worth seeing when something goes wrong, never mixed into stdout.
        let text = String::from_utf8_lossy(bytes);
        match &self.bar {
            Some(bar) => bar.suspend(|| eprint!("{text}")),
            None => eprint!("{text}"),
        }
    }
}
