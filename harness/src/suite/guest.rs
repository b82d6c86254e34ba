//! The orchestrator that runs inside the VM (`breakout guest-exec --plan FILE`, hidden).
//!
//! It builds the outside world, runs every (probe, configuration) job through the runtime with a
//! per-launch timeout, attributes every block by ablation, and streams one [`GuestEvent`] JSON
//! line per event on the VM's result channel.
//!
//! Scheduling: the guest has two CPUs, so independent launches run two at a time; resource probes
//! (fork bombs, memory hogs) run alone so that they neither starve nor are starved by a
//! neighbour. Phase one runs every job under its profile; phase two ablates the blocked ones; the
//! wall time of each phase is reported (probes_ms, ablation_ms). Ablations start longest first
//! (base duration times expected launches), so the run does not end on one long ablation with
//! the other worker idle. Identical launches (same probe, same effective configuration, e.g.
//! "pid-ns alone" asked by two profiles) run once, even when two workers ask at the same time:
//! the second waits for the first one's record. The guest's stderr names the probes whose
//! launches cost the most wall time, where the next speed-up is to be found.
//!
//! Refuses to run outside the VM (BREAKOUT_IN_VM=1): some probes are destructive by design.

use crate::model::{
    Attribution, Evidence, GuestEvent, LaunchMedians, LaunchTimings, ProbeResult, TrialRecord,
};
use crate::suite::attribution::{self, AblationInput, TrialOutcome, TrialRunner, Variant};
use crate::suite::environment;
use crate::suite::launcher;
use crate::suite::plan::{Configuration, ConfigurationKind, GuestPlan, Job};
use breakout_attacks::world::World;
use breakout_attacks::{Launcher, Layer, Limits, Probe, ProbeClass, Verdict};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How much of a payload's stderr a streamed result keeps (the serial line is slow).
const STDERR_TAIL_STREAMED: usize = 1024;

/// Where the orchestrator finds its inputs (`breakout guest-exec`'s arguments).
pub struct GuestInputs {
    /// The plan file written by the host.
    pub plan: PathBuf,
    /// Where the outside world is built.
    pub world: PathBuf,
    /// The inside half's binary.
    pub probe_bin: PathBuf,
    /// The accelerator the host booted the guest with (for the environment block).
    pub accel: String,
}

/// Starts an external runtime spec.
pub type AdapterLauncher = fn(&crate::adapters::ExternalSpec) -> Result<Box<dyn Launcher>, String>;

/// Exit codes: 0 the plan ran (whatever the verdicts), 1 the guest could not run it.
pub fn run(args: &GuestInputs, adapters: AdapterLauncher) -> u8 {
    let mut channel: Box<dyn Write + Send> = match breakout_vm::guest::results() {
        Ok(w) => Box::new(w),
        Err(e) => {
            eprintln!("breakout guest-exec: cannot open the result channel: {e}");
            return 1;
        }
    };
    if std::env::var_os("BREAKOUT_IN_VM").is_none_or(|v| v != "1") {
        let message = "breakout guest-exec runs destructive probes and only runs inside the breakout VM (BREAKOUT_IN_VM=1 is not set)".to_string();
        eprintln!("breakout guest-exec: {message}");
        let _ = emit_to(&mut channel, &GuestEvent::Error { message });
        return 1;
    }
    let sink = EventSink {
        out: Mutex::new(channel),
    };
    match orchestrate(args, adapters, &sink) {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("breakout guest-exec: {message}");
            sink.emit(&GuestEvent::Error { message });
            1
        }
    }
}

struct EventSink {
    out: Mutex<Box<dyn Write + Send>>,
}

impl EventSink {
    fn emit(&self, event: &GuestEvent) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = emit_to(&mut *out, event) {
            // The host will see the missing results; stderr reaches its console stream.
            eprintln!("breakout guest-exec: writing to the result channel failed: {e}");
        }
    }
}

fn emit_to(out: &mut dyn Write, event: &GuestEvent) -> std::io::Result<()> {
    let mut line = serde_json::to_string(event).expect("guest events serialize");
    line.push('\n');
    out.write_all(line.as_bytes())?;
    out.flush()
}

fn orchestrate(
    args: &GuestInputs,
    adapters: AdapterLauncher,
    sink: &EventSink,
) -> Result<(), String> {
    let setup = Instant::now();
    let mut plan = GuestPlan::load(&args.plan).map_err(|e| e.to_string())?;
    for c in &mut plan.configurations {
        if let ConfigurationKind::Breakout { config } = &mut c.kind {
            *config = launcher::prepare(config.clone())
                .map_err(|e| format!("configuration {}: {e}", c.name))?;
        }
    }
    let plan = plan;
    sink.emit(&GuestEvent::Plan {
        total: plan.jobs.len(),
        profiles: plan
            .configurations
            .iter()
            .map(Configuration::info)
            .collect(),
    });
    if let Err(e) = environment::mount_securityfs() {
        eprintln!("breakout guest-exec: mounting securityfs for the LSM list failed: {e}");
    }
    sink.emit(&GuestEvent::Environment(environment::read(
        std::path::Path::new("/proc"),
        std::path::Path::new("/sys"),
        &args.accel,
    )));
    // Every attempt in a cgroup of its own, killed once judged: what a payload daemonizes must
    // not act on the attempts after it.
    let world = World::build(&args.world, &args.probe_bin)
        .and_then(|w| {
            w.with_attempt_cgroups(std::path::Path::new(breakout_attacks::world::CGROUP2_ROOT))
        })
        .map_err(|e| format!("building the world: {e}"))?;
    let setup_ms = setup.elapsed().as_millis();

    let orchestrator = Orchestrator {
        plan: &plan,
        world: &world,
        sink,
        adapters,
        memo: Mutex::new(
            plan.known_trials
                .iter()
                .map(|k| (k.key.clone(), Arc::new(OnceLock::from(k.record.clone()))))
                .collect(),
        ),
        timeout: Duration::from_millis(plan.options.probe_timeout_ms),
        launches: AtomicUsize::new(0),
        reused: AtomicUsize::new(0),
        phases: Mutex::new(Vec::new()),
        by_probe: Mutex::new(BTreeMap::new()),
        caps_found: Mutex::new(HashMap::new()),
    };
    let workers = if plan.options.announce_trials {
        1
    } else {
        plan.options.workers.max(1)
    };

    let jobs: Vec<(&Job, &'static dyn Probe)> = plan
        .jobs
        .iter()
        .map(|j| {
            breakout_attacks::probe(&j.probe)
                .map(|p| (j, p))
                .ok_or_else(|| format!("plan names unknown probe {}", j.probe))
        })
        .collect::<Result<_, _>>()?;
    let is_resource = |(_, p): &(&Job, &'static dyn Probe)| p.meta().class == ProbeClass::Resource;

    let started = Instant::now();
    let base: Vec<TrialRecord> = schedule(&jobs, is_resource, workers, |(job, probe)| {
        sink.emit(&GuestEvent::Started {
            probe: job.probe.clone(),
            profile: job.profile.clone(),
        });
        orchestrator.base_run(job, *probe)
    });
    let probes_ms = started.elapsed().as_millis() as u64;
    let base_phases = std::mem::take(
        &mut *orchestrator
            .phases
            .lock()
            .unwrap_or_else(|p| p.into_inner()),
    );

    // Results that need no ablation go out at once; the others after their ablation.
    let mut pending = Vec::new();
    for ((job, probe), record) in jobs.iter().zip(base) {
        if orchestrator.needs_ablation(job, record.verdict) {
            pending.push((*job, *probe, record));
        } else {
            sink.emit(&GuestEvent::Result(
                orchestrator.result(job, *probe, record, None),
            ));
        }
    }
    // Longest first, so that no long ablation starts last while the other workers idle: its
    // cost is about its base run's duration times the launches its candidate layers ask for.
    pending.sort_by_key(|(job, probe, record)| {
        std::cmp::Reverse(record.duration_ms * orchestrator.expected_trials(job, *probe))
    });
    let started = Instant::now();
    schedule(
        &pending,
        |(_, p, _)| p.meta().class == ProbeClass::Resource,
        workers,
        |(job, probe, record)| {
            let attribution = orchestrator.ablate(job, *probe, record);
            sink.emit(&GuestEvent::Result(orchestrator.result(
                job,
                *probe,
                record.clone(),
                attribution,
            )));
        },
    );
    let ablation_ms = started.elapsed().as_millis() as u64;
    let launch_timings = LaunchTimings {
        probes: LaunchMedians::of(&base_phases),
        ablation: LaunchMedians::of(
            &orchestrator
                .phases
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        ),
    };

    // The usability half: every workload under every configuration asked for.
    let workload_timeout = Duration::from_millis(plan.options.workload_timeout_ms);
    if !plan.workloads.is_empty() {
        sink.emit(&GuestEvent::WorkloadsStarted {
            total: plan.workloads.len(),
        });
    }
    schedule(
        &plan.workloads,
        |j| crate::workloads::runs_alone(&j.workload),
        workers,
        |job| {
            let result =
                crate::suite::guest_workloads::run_job(&plan, job, adapters, workload_timeout);
            sink.emit(&GuestEvent::Workload(result));
        },
    );
    let (launches, reused) = (
        orchestrator.launches.load(Ordering::Relaxed),
        orchestrator.reused.load(Ordering::Relaxed),
    );
    eprintln!(
        "breakout guest-exec: {} jobs, {launches} launches ({reused} answered from earlier launches); setup {setup_ms} ms, probe runs {probes_ms} ms, ablation {ablation_ms} ms",
        plan.jobs.len()
    );
    eprintln!(
        "breakout guest-exec: probe runs {}; ablation {}",
        launch_timings.probes.summary(),
        launch_timings.ablation.summary()
    );
    eprintln!(
        "breakout guest-exec: launch time by probe: {}",
        orchestrator.costliest(12)
    );
    sink.emit(&GuestEvent::Done {
        probes_ms,
        ablation_ms,
        launches: Some(launch_timings),
    });
    Ok(())
}

/// Run `f` over `items`: the ordinary ones `workers` at a time, then the `alone` ones one by one.
/// Results keep the items' order.
fn schedule<T: Sync, R: Send>(
    items: &[T],
    alone: impl Fn(&T) -> bool,
    workers: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let shared: Vec<usize> = (0..items.len()).filter(|&i| !alone(&items[i])).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..workers.min(shared.len()).max(1) {
            scope.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Some(&i) = shared.get(n) else { break };
                let r = f(&items[i]);
                *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            });
        }
    });
    for i in (0..items.len()).filter(|&i| alone(&items[i])) {
        let r = f(&items[i]);
        *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
    }
    slots
        .into_iter()
        .map(|s| {
            s.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .expect("every item was run")
        })
        .collect()
}

struct Orchestrator<'a> {
    plan: &'a GuestPlan,
    world: &'a World,
    sink: &'a EventSink,
    adapters: AdapterLauncher,
    /// Launch records by key (probe + effective configuration). A slot is claimed before its
    /// launch starts, so a second worker asking for the same launch waits for the first one's
    /// record instead of running it again.
    memo: Mutex<HashMap<String, Arc<OnceLock<TrialRecord>>>>,
    timeout: Duration,
    /// Launches made, and launches answered from `memo`.
    launches: AtomicUsize,
    reused: AtomicUsize,
    /// Where the time of each launch went, in the order they ended.
    phases: Mutex<Vec<breakout_attacks::Phases>>,
    /// Launches and their summed wall time per probe (the guest's stderr names the costliest).
    by_probe: Mutex<BTreeMap<&'static str, (usize, Duration)>>,
    /// Single capabilities that let a probe through under a configuration ablated so far: the
    /// next drill-down of the same probe tries them first (see `caps_letting_through`).
    caps_found: Mutex<HashMap<&'static str, Vec<String>>>,
}

/// What one launch runs under.
enum Target<'c> {
    /// Our runtime under `config`, judged against `promise`: the limits of the profile whose
    /// cell is being answered. An ablation variant that switches a limit off is still judged
    /// against the limit the full profile promised, so "strict without rlimits" asks whether the
    /// payload got past strict's 256 descriptors, not past the ceiling used without any limit.
    Ours {
        config: breakout_runtime::config::SandboxConfig,
        promise: Limits,
    },
    /// An external runtime spec: the user's configuration or an ablation variant of it.
    External(&'c crate::adapters::ExternalSpec),
}

impl Orchestrator<'_> {
    fn configuration(&self, job: &Job) -> &Configuration {
        self.plan
            .configuration(&job.profile)
            .expect("GuestPlan::load checked every job's configuration")
    }

    /// The `n` probes whose launches took the most wall time, summed ("port-bind 15 x 4.1 s").
    fn costliest(&self, n: usize) -> String {
        let by_probe = self.by_probe.lock().unwrap_or_else(|p| p.into_inner());
        let mut costs: Vec<(&str, usize, Duration)> =
            by_probe.iter().map(|(p, (k, d))| (*p, *k, *d)).collect();
        costs.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(b.0)));
        costs
            .iter()
            .take(n)
            .map(|(p, k, d)| format!("{p} {k} launches {:.1} s", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn needs_ablation(&self, job: &Job, verdict: Verdict) -> bool {
        verdict == Verdict::Blocked
            && self.plan.options.ablate
            && matches!(
                self.configuration(job).kind,
                ConfigurationKind::Breakout { .. } | ConfigurationKind::Adapter { .. }
            )
    }

    /// Roughly how many launches ablating `job` takes: each enabled candidate alone and
    /// without, and all of them off (drill-downs add more; this only orders the work).
    fn expected_trials(&self, job: &Job, probe: &'static dyn Probe) -> u64 {
        let enabled = match &self.configuration(job).kind {
            ConfigurationKind::Breakout { config } => probe
                .meta()
                .layers
                .iter()
                .filter(|l| config.enabled(**l))
                .count(),
            ConfigurationKind::Adapter { .. } => probe.meta().layers.len(),
        };
        2 * enabled as u64 + 1
    }

    fn base_run(&self, job: &Job, probe: &'static dyn Probe) -> TrialRecord {
        let target = match &self.configuration(job).kind {
            ConfigurationKind::Breakout { config } => Target::Ours {
                config: config.clone(),
                promise: launcher::limits_of(config),
            },
            ConfigurationKind::Adapter { spec, .. } => Target::External(spec),
        };
        self.trial(
            probe,
            &target,
            &format!("{} under {}", job.probe, job.profile),
        )
    }

    /// One launch, or its record when the same launch already ran (or is running).
    fn trial(&self, probe: &'static dyn Probe, target: &Target, description: &str) -> TrialRecord {
        let key = self.key(probe, target);
        let slot = Arc::clone(
            self.memo
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(key.clone())
                .or_default(),
        );
        let mut launched = false;
        let record = slot.get_or_init(|| {
            launched = true;
            if self.plan.options.announce_trials {
                self.sink.emit(&GuestEvent::TrialStarted {
                    key: key.clone(),
                    probe: probe.meta().id.to_string(),
                    description: description.to_string(),
                });
            }
            let started = Instant::now();
            let record = self.launch(probe, target);
            let mut by_probe = self.by_probe.lock().unwrap_or_else(|p| p.into_inner());
            let entry = by_probe.entry(probe.meta().id).or_default();
            entry.0 += 1;
            entry.1 += started.elapsed();
            drop(by_probe);
            if self.plan.options.announce_trials {
                self.sink.emit(&GuestEvent::TrialFinished {
                    key: key.clone(),
                    record: record.clone(),
                });
            }
            record
        });
        if !launched {
            self.reused.fetch_add(1, Ordering::Relaxed);
        }
        record.clone()
    }

    /// Launch again, replacing the remembered record.
    fn retry(&self, probe: &'static dyn Probe, target: &Target, description: &str) -> TrialRecord {
        let key = self.key(probe, target);
        self.memo
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        self.trial(
            probe,
            target,
            &format!("{description} (again after an inconclusive run)"),
        )
    }

    fn key(&self, probe: &'static dyn Probe, target: &Target) -> String {
        match target {
            // Only resource probes read the limits: for the rest one launch answers every
            // profile that asks for the same configuration.
            Target::Ours { config, promise } if probe.meta().class == ProbeClass::Resource => {
                format!(
                    "{}|{}|{promise:?}",
                    probe.meta().id,
                    launcher::identity(config)
                )
            }
            Target::Ours { config, .. } => {
                format!("{}|{}", probe.meta().id, launcher::identity(config))
            }
            Target::External(spec) => format!("{}|external:{}", probe.meta().id, spec.identity()),
        }
    }

    fn launch(&self, probe: &'static dyn Probe, target: &Target) -> TrialRecord {
        self.launches.fetch_add(1, Ordering::Relaxed);
        let run = match target {
            // A kernel without Landlock cannot give the layer: the attempt is skipped with the
            // reason, never judged as if the layer were there.
            Target::Ours { config, .. }
                if config.enabled(breakout_attacks::Layer::Landlock)
                    && breakout_runtime::layers::landlock::kernel_abi().is_err() =>
            {
                let reason = breakout_runtime::layers::landlock::kernel_abi()
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                return TrialRecord {
                    verdict: Verdict::Skipped,
                    reason,
                    evidence: Evidence::default(),
                    duration_ms: 0,
                };
            }
            Target::Ours { config, promise } => {
                let launcher = launcher::RuntimeLauncher::new(config.clone());
                breakout_attacks::run_probe(probe, self.world, promise, &launcher, self.timeout)
            }
            Target::External(spec) if spec.missing().is_some() => {
                return TrialRecord {
                    verdict: Verdict::Skipped,
                    reason: spec.missing().unwrap_or_default(),
                    evidence: Evidence::default(),
                    duration_ms: 0,
                }
            }
            Target::External(spec) => match (self.adapters)(spec) {
                Ok(launcher) => breakout_attacks::run_probe(
                    probe,
                    self.world,
                    &Limits::default(),
                    launcher.as_ref(),
                    self.timeout,
                ),
                Err(message) => {
                    return TrialRecord {
                        verdict: Verdict::Inconclusive,
                        reason: format!(
                            "external runtime `{}` cannot be started: {message}",
                            spec.runtime_label()
                        ),
                        evidence: Evidence::default(),
                        duration_ms: 0,
                    }
                }
            },
        };
        if let Some(phases) = run.phases {
            self.phases
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(phases);
        }
        let stderr_tail = tail_chars(&run.stderr_tail, STDERR_TAIL_STREAMED);
        TrialRecord {
            verdict: run.judgement.verdict,
            reason: run.judgement.reason,
            evidence: Evidence {
                steps: run.inside.map(|r| r.steps).unwrap_or_default(),
                exit: run.outcome.as_ref().map(|o| o.status),
                cgroup: run.outcome.as_ref().and_then(|o| o.cgroup.clone()),
                setup_failure: run.outcome.as_ref().and_then(|o| o.setup_failure.clone()),
                timed_out: run.timed_out,
                stderr_tail,
                landlock: run.outcome.as_ref().and_then(|o| o.landlock.clone()),
            },
            duration_ms: run.duration.as_millis() as u64,
        }
    }

    fn ablate(
        &self,
        job: &Job,
        probe: &'static dyn Probe,
        base: &TrialRecord,
    ) -> Option<Attribution> {
        let config = match &self.configuration(job).kind {
            ConfigurationKind::Breakout { config } => config,
            ConfigurationKind::Adapter { spec, .. } => {
                let mut runner = SpecVariantRunner {
                    orchestrator: self,
                    probe,
                };
                return Some(crate::adapters::ablate::attribute(
                    &job.profile,
                    spec,
                    probe.meta().layers,
                    &base.evidence,
                    &mut runner,
                ));
            }
        };
        let enabled: BTreeSet<Layer> = config.enabled_layers().into_iter().collect();
        let dropped_caps = launcher::dropped_caps(config);
        let requires = |l: Layer| launcher::requires(l);
        let seccomp_denies = |name: &str| config.seccomp_denies(name);
        let seccomp_errno = match config.seccomp_profile().map(|p| p.default_action) {
            Some(breakout_runtime::seccomp::Action::Errno(n)) if config.enabled(Layer::Seccomp) => {
                Some(i32::from(n))
            }
            _ => None,
        };
        let caps_hints = self
            .caps_found
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(probe.meta().id)
            .cloned()
            .unwrap_or_default();
        let input = AblationInput {
            profile: &job.profile,
            enabled: &enabled,
            candidates: probe.meta().layers,
            requires: &requires,
            dropped_caps: &dropped_caps,
            caps_hints: &caps_hints,
            seccomp_denies: &seccomp_denies,
            seccomp_errno,
            base_evidence: &base.evidence,
        };
        let mut runner = VariantRunner {
            orchestrator: self,
            probe,
            base: config,
        };
        let attribution = attribution::attribute(&input, &mut runner);
        let mut caps_found = self.caps_found.lock().unwrap_or_else(|p| p.into_inner());
        let known = caps_found.entry(probe.meta().id).or_default();
        for cap in attribution.caps_detail.iter().filter(|c| !c.contains('+')) {
            if !known.contains(cap) {
                known.push(cap.clone());
            }
        }
        drop(caps_found);
        Some(attribution)
    }

    fn result(
        &self,
        job: &Job,
        probe: &'static dyn Probe,
        record: TrialRecord,
        attribution: Option<Attribution>,
    ) -> ProbeResult {
        let configuration = self.configuration(job);
        let attribution = match (&configuration.kind, record.verdict) {
            // Without ablation (--no-ablation) the attribution comes from the evidence.
            (ConfigurationKind::Adapter { spec, .. }, Verdict::Blocked)
                if attribution.is_none() =>
            {
                Some(crate::adapters::infer::for_spec(
                    spec,
                    probe.meta().layers,
                    &record.evidence,
                ))
            }
            _ => attribution,
        };
        ProbeResult {
            // The host fills the release in (it knows the guest's environment).
            kernel: String::new(),
            probe: job.probe.clone(),
            profile: job.profile.clone(),
            verdict: record.verdict,
            reason: record.reason,
            evidence: record.evidence,
            attribution,
            duration_ms: record.duration_ms,
        }
    }
}

/// Runs ablation variants of one job's profile.
struct VariantRunner<'a, 'b> {
    orchestrator: &'a Orchestrator<'b>,
    probe: &'static dyn Probe,
    base: &'a breakout_runtime::config::SandboxConfig,
}

impl TrialRunner for VariantRunner<'_, '_> {
    fn run(&mut self, variant: &Variant, description: &str) -> TrialOutcome {
        let record = match launcher::with_variant(self.base, &variant.layers, &variant.extra_caps) {
            Ok(config) => {
                let target = Target::Ours {
                    config,
                    promise: launcher::limits_of(self.base),
                };
                let first = self.orchestrator.trial(self.probe, &target, description);
                if first.verdict == Verdict::Inconclusive {
                    // A timeout on a loaded machine must not decide an ablation step: one more
                    // try, and the second answer stands (still inconclusive: not credited).
                    self.orchestrator.retry(self.probe, &target, description)
                } else {
                    first
                }
            }
            Err(message) => TrialRecord {
                verdict: Verdict::Inconclusive,
                reason: format!("{description}: the runtime rejects this configuration: {message}"),
                evidence: Evidence::default(),
                duration_ms: 0,
            },
        };
        TrialOutcome {
            verdict: record.verdict,
            evidence: record.evidence,
            reason: record.reason,
        }
    }
}

/// Runs ablation variants of an external spec.
struct SpecVariantRunner<'a, 'b> {
    orchestrator: &'a Orchestrator<'b>,
    probe: &'static dyn Probe,
}

impl crate::adapters::ablate::SpecRunner for SpecVariantRunner<'_, '_> {
    fn run(&mut self, spec: &crate::adapters::ExternalSpec, description: &str) -> TrialOutcome {
        let target = Target::External(spec);
        let first = self.orchestrator.trial(self.probe, &target, description);
        // As for our variants: a timeout on a loaded machine gets one more try.
        let record = if first.verdict == Verdict::Inconclusive {
            self.orchestrator.retry(self.probe, &target, description)
        } else {
            first
        };
        TrialOutcome {
            verdict: record.verdict,
            evidence: record.evidence,
            reason: record.reason,
        }
    }
}

fn tail_chars(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_keeps_order_and_runs_resource_items_alone() {
        let running = AtomicUsize::new(0);
        let overlap_with_alone = AtomicUsize::new(0);
        let items: Vec<(usize, bool)> = (0..12).map(|i| (i, i % 4 == 0)).collect();
        let out = schedule(
            &items,
            |(_, alone)| *alone,
            2,
            |(i, alone)| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                if *alone && now > 1 {
                    overlap_with_alone.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(5));
                running.fetch_sub(1, Ordering::SeqCst);
                i * 10
            },
        );
        assert_eq!(out, (0..12).map(|i| i * 10).collect::<Vec<_>>());
        assert_eq!(overlap_with_alone.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        assert_eq!(tail_chars("abcdef", 3), "def");
        assert_eq!(tail_chars("ab", 3), "ab");
        assert_eq!(tail_chars("aé", 1), "");
    }
}
