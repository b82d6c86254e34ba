//! What `run`, `compare` and `gate` share: a plan run with the binaries beside this one and a
//! progress display on stderr. Everything it shows from the guest goes through
//! [`terminal`]: a probe's text must not drive the terminal or a CI log.

use crate::model::{GuestEvent, RunReport};
use crate::report;
use crate::report::escape::terminal;
use crate::suite::host::{self, Binaries, Observer, VmArgs};
use crate::suite::plan::RunPlan;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Instant;

/// Run a plan with the binaries beside this one and a progress display on stderr.
pub fn execute(plan: &RunPlan, vm: &VmArgs) -> anyhow::Result<RunReport> {
    let binaries = Binaries::beside_current_exe()?;
    let mut progress = Progress::new(crate::suite::guests::result_count(plan, vm));
    let report = host::execute(plan, vm, &binaries, &mut progress);
    progress.finish();
    let report = report?;
    // After the run, beside its timings (an error before the VM boots stays one line).
    if binaries.probe_is_dynamic() == Some(true) {
        eprintln!(
            "note: {} is dynamically linked: every launch paid the dynamic loader (about 17 ms \
             under TCG); `scripts/build release` links it statically",
            binaries.probe.display()
        );
    }
    Ok(report)
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
        eprintln!(
            "[{:>6.1} s] {}",
            self.started.elapsed().as_secs_f64(),
            terminal(text)
        );
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
                    bar.set_message(terminal(&format!("{probe} under {profile}")).into_owned());
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
                        bar.set_message(terminal(&line).into_owned());
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
                        bar.set_message(terminal(&line).into_owned());
                    }
                    None => self.line(&format!("{}/{} {line}", self.done, self.total)),
                }
            }
            GuestEvent::Done { .. } => {
                self.phase("shutting the VM down");
            }
            GuestEvent::Error { message } => {
                let message = terminal(message);
                match &self.bar {
                    Some(bar) => bar.println(format!("guest error: {message}")),
                    None => eprintln!("guest error: {message}"),
                }
            }
            _ => {}
        }
    }

    fn console(&mut self, _stream: breakout_vm::Stream, bytes: &[u8]) {
        // The guest's own stderr: worth seeing when something goes wrong, never mixed into stdout.
        let text = String::from_utf8_lossy(bytes);
        let text = terminal(&text);
        match &self.bar {
            Some(bar) => bar.suspend(|| eprint!("{text}")),
            None => eprint!("{text}"),
        }
    }
}
