//! The host side of a run: boot a fresh VM per group of the plan with our two binaries and the
//! plan file added, run `breakout guest-exec` in it, collect the streamed events into a
//! [`RunReport`].
//!
//! Probes whose escape ends the guest (reboot, kexec) run in VMs of their own, one launch at a
//! time with every launch announced: when the guest goes down, the launch in flight is what took
//! it down (an escape the harness itself observed), and a fresh VM continues with the launches
//! already done given to it, so attribution goes on where it stopped.

use crate::model::{
    Environment, Evidence, GuestEvent, LaunchTimings, ProbeResult, ProfileInfo, RunReport,
    Selection, Timings, TrialRecord, WorkloadResult, SCHEMA_VERSION,
};
use crate::suite::plan::{
    GuestOptions, GuestPlan, Job, KnownTrial, RunPlan, VmGroup, WorkloadJob, GUEST_PLAN_PATH,
};
use breakout_attacks::Verdict;
use breakout_vm::{Accel, GuestFile, Stream, VmConfig, VmSink};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where our binaries go in the guest (common brief: /usr/bin): `breakout` (the runtime and the
/// front, breakout_harness::front), the whole tool it executes for every other subcommand, and
/// the probes.
pub const GUEST_BREAKOUT: &str = "/usr/bin/breakout";
pub const GUEST_HARNESS: &str = "/usr/bin/breakout-harness";
pub const GUEST_PROBE: &str = "/usr/bin/breakout-probe";

/// How often a group's VM may be restarted after a launch took the guest down.
const MAX_RESTARTS: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the `{name}` binary is not at {path} (build every binary first: cargo build --workspace --bins)")]
    MissingBinary { name: &'static str, path: PathBuf },
    #[error("cannot find the running executable: {0}")]
    CurrentExe(std::io::Error),
    #[error("cannot write the guest plan: {0}")]
    Plan(String),
    /// A kernel that is unknown or cannot be fetched, found before any guest boots.
    #[error("{0}")]
    Kernel(String),
    #[error("the VM for {group} failed: {source}")]
    Vm {
        group: String,
        #[source]
        source: breakout_vm::VmError,
    },
    #[error("the guest orchestrator for {group} failed before running the plan (exit {exit_code}): {message}")]
    Guest {
        group: String,
        exit_code: i32,
        message: String,
    },
    #[error("the guest for {group} went down {restarts} times; giving up")]
    TooManyRestarts { group: String, restarts: usize },
}

/// The binaries the guest needs: `breakout`, `breakout-harness` and `breakout-probe`, built
/// together.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub breakout: PathBuf,
    pub harness: PathBuf,
    pub probe: PathBuf,
}

impl Binaries {
    /// The three in `dir`, with a clear error naming the missing one.
    pub fn in_dir(dir: &Path) -> Result<Binaries, RunError> {
        let b = Binaries {
            breakout: dir.join("breakout"),
            harness: dir.join(crate::front::HARNESS_BIN),
            probe: dir.join("breakout-probe"),
        };
        for (name, path) in [
            ("breakout", &b.breakout),
            (crate::front::HARNESS_BIN, &b.harness),
            ("breakout-probe", &b.probe),
        ] {
            if !path.is_file() {
                return Err(RunError::MissingBinary {
                    name,
                    path: path.clone(),
                });
            }
        }
        Ok(b)
    }

    /// The binaries beside the running tool (`breakout-harness`, or a test binary in the same
    /// directory as the build's binaries).
    pub fn beside_current_exe() -> Result<Binaries, RunError> {
        let exe = std::env::current_exe().map_err(RunError::CurrentExe)?;
        Binaries::in_dir(exe.parent().unwrap_or(Path::new("/")))
    }

    /// Does `breakout-probe` need the dynamic loader (an ELF with a PT_INTERP header)? Every
    /// launch of a run starts it, and under emulation the loader is about a third of its start
    /// (`scripts/build release` links it statically). None when the file cannot be read as ELF.
    pub fn probe_is_dynamic(&self) -> Option<bool> {
        elf_has_interpreter(&std::fs::read(&self.probe).ok()?)
    }
}

/// Whether a 64-bit little-endian ELF image has a PT_INTERP program header; None when `elf` is
/// not one or its program headers lie outside it.
fn elf_has_interpreter(elf: &[u8]) -> Option<bool> {
    const PT_INTERP: u32 = 3;
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(elf.get(o..o + 2)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(elf.get(o..o + 8)?.try_into().ok()?));
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let (phentsize, phnum) = (usize::from(u16_at(0x36)?), usize::from(u16_at(0x38)?));
    let mut interp = false;
    for i in 0..phnum {
        let at = phoff.checked_add(i.checked_mul(phentsize)?)?;
        let p_type = u32::from_le_bytes(elf.get(at..at.checked_add(4)?)?.try_into().ok()?);
        interp |= p_type == PT_INTERP;
    }
    Some(interp)
}

/// How to boot the VMs.
#[derive(Debug, Clone, clap::Args)]
pub struct VmArgs {
    /// Accelerator: auto tries KVM with a real boot once per machine, else TCG.
    #[arg(long, value_enum, default_value = "auto")]
    pub accel: AccelArg,
    /// The kernel: debian-12 (the default, Linux 6.1), debian-13 (Linux 6.12), both Debian cloud
    /// kernels fetched once into the cache, or the path of a bzImage. Repeat to run the plan on
    /// each kernel (one guest per kernel; every report gets a kernel dimension).
    #[arg(long = "kernel", value_name = "PATH")]
    pub kernels: Vec<PathBuf>,
    /// Split the plan over this many guests run at once (each with --cpus CPUs); the results
    /// are merged, the verdicts the same.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub vms: u32,
    /// CPUs of each guest (launches run at once in a guest: as many as it has CPUs).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub cpus: u32,
    /// Run only part K of N of the plan (by probe; one part per CI job): `breakout merge` puts
    /// the parts' results.json back together.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::suite::shard::Shard>,
    /// Guest memory in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    pub memory: u32,
    /// Kill one probe launch after this many seconds (its result is inconclusive).
    #[arg(long, value_name = "SECONDS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub probe_timeout: u64,
    /// Kill one workload after this many seconds (it is then broken, at the step "timeout"); a
    /// workload starts an interpreter or a compiler, far slower than a probe under emulation.
    #[arg(long, value_name = "SECONDS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub workload_timeout: u64,
    /// Give up on a VM after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    pub vm_timeout: u64,
    /// Skip attribution (faster; blocked results carry no layers).
    #[arg(long)]
    pub no_ablation: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccelArg {
    Auto,
    Kvm,
    Tcg,
}

impl Default for VmArgs {
    fn default() -> Self {
        VmArgs {
            accel: AccelArg::Auto,
            kernels: Vec::new(),
            vms: 1,
            cpus: 2,
            shard: None,
            memory: 1024,
            probe_timeout: 20,
            workload_timeout: 120,
            vm_timeout: 1800,
            no_ablation: false,
        }
    }
}

/// What a run tells its user while it goes.
pub trait Observer {
    /// A guest event as it arrives.
    fn event(&mut self, event: &GuestEvent);
    /// A VM is booting for `group` (`attempt` counts restarts after a launch took it down).
    fn booting(&mut self, _group: &str, _attempt: usize) {}
    /// Console output of the guest (its stderr, kernel messages).
    fn console(&mut self, _stream: Stream, _bytes: &[u8]) {}
}

/// An observer that shows nothing.
pub struct Quiet;
impl Observer for Quiet {
    fn event(&mut self, _event: &GuestEvent) {}
}

/// Run the plan on every kernel of `vm`, split over `vm.vms` guests, the part `vm.shard` of it
/// (see [`crate::guests`]).
pub fn execute(
    plan: &RunPlan,
    vm: &VmArgs,
    binaries: &Binaries,
    observer: &mut dyn Observer,
) -> Result<RunReport, RunError> {
    crate::suite::guests::execute(plan, vm, binaries, observer)
}

/// Run the plan on one kernel (the first of `vm.kernels`, or the default): one fresh VM per
/// group, one after the other. Every result carries the guest's kernel release.
pub fn execute_part(
    plan: &RunPlan,
    vm: &VmArgs,
    binaries: &Binaries,
    observer: &mut dyn Observer,
) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let mut results: BTreeMap<Job, ProbeResult> = BTreeMap::new();
    let mut workloads: BTreeMap<WorkloadJob, WorkloadResult> = BTreeMap::new();
    let mut environment: Option<Environment> = None;
    let mut timings = Timings::default();
    let mut channel_problems = Vec::new();
    for group in plan.vm_groups() {
        let outcome = run_group(plan, &group, vm, binaries, observer)?;
        channel_problems.extend(outcome.channel_problems);
        for r in outcome.results {
            results.insert(
                Job {
                    probe: r.probe.clone(),
                    profile: r.profile.clone(),
                },
                r,
            );
        }
        for w in outcome.workloads {
            workloads.insert(
                WorkloadJob {
                    workload: w.workload.clone(),
                    profile: w.profile.clone(),
                },
                w,
            );
        }
        timings.workloads_ms += outcome.workloads_ms;
        if environment.is_none() {
            environment = outcome.environment;
        }
        timings.probes_ms += outcome.probes_ms;
        timings.ablation_ms += outcome.ablation_ms;
        // Medians do not add up: the group with the most launches speaks for the run (today
        // the one group; guests of their own for probes that end the guest run few).
        let count = |l: &Option<LaunchTimings>| {
            l.as_ref()
                .map_or(0, |l| l.probes.launches + l.ablation.launches)
        };
        if count(&outcome.launches) > count(&timings.launches) {
            timings.launches = outcome.launches;
        }
    }
    // Host wall time: probe runs and ablation as the host saw the phases go by (the guest's clock
    // lags under TCG on a loaded host); boot is everything else (image, QEMU, kernel, init, the
    // world, shutdown).
    timings.total_ms = started.elapsed().as_millis() as u64;
    timings.boot_ms = timings
        .total_ms
        .saturating_sub(timings.probes_ms + timings.ablation_ms + timings.workloads_ms);
    let mut environment = environment.unwrap_or_default();
    if environment.kernel_release.is_empty() {
        environment.kernel_release = crate::model::release_of(&environment.kernel);
    }
    let ordered = plan
        .jobs
        .iter()
        .filter_map(|j| results.remove(j))
        .map(|mut r| {
            r.kernel = environment.kernel_release.clone();
            r
        })
        .collect();
    let workloads = plan
        .workloads
        .iter()
        .filter_map(|j| workloads.remove(j))
        .map(|mut w: WorkloadResult| {
            w.kernel = environment.kernel_release.clone();
            w
        })
        .collect();
    environment.external_probes = crate::suite::file_probes::external_ids(&plan.jobs);
    Ok(RunReport {
        schema_version: SCHEMA_VERSION,
        breakout_version: env!("CARGO_PKG_VERSION").to_string(),
        environment,
        kernels: Vec::new(),
        profiles: plan.profiles(),
        selection: Some(selection(plan, vm)),
        results: ordered,
        workloads,
        timings,
        channel_problems,
    })
}

/// What a plan run with these VM arguments covers.
pub fn selection(plan: &RunPlan, vm: &VmArgs) -> Selection {
    let mut probes: Vec<String> = Vec::new();
    for job in &plan.jobs {
        if !probes.contains(&job.probe) {
            probes.push(job.probe.clone());
        }
    }
    Selection {
        profiles: plan.configurations.iter().map(|c| c.name.clone()).collect(),
        probes,
        ablation: !vm.no_ablation,
        kernel: vm.kernels.first().map(|k| k.display().to_string()),
        added_positive_control: plan.added_positive_control.is_some(),
        kernels: if vm.kernels.len() > 1 {
            vm.kernels.iter().map(|k| k.display().to_string()).collect()
        } else {
            Vec::new()
        },
        shard: vm.shard,
        workloads: {
            let mut ids: Vec<String> = Vec::new();
            for job in &plan.workloads {
                if !ids.contains(&job.workload) {
                    ids.push(job.workload.clone());
                }
            }
            ids
        },
    }
}

/// Rerun what a baseline covers: its configurations (our profiles by name) and probes.
pub fn plan_like(baseline: &RunReport) -> Result<RunPlan, crate::suite::plan::PlanError> {
    let profiles: Vec<String> = baseline
        .profiles
        .iter()
        .filter(|p| p.runtime == "breakout")
        .map(|p| p.name.clone())
        .collect();
    let mut probes: Vec<String> = Vec::new();
    for r in &baseline.results {
        if !probes.contains(&r.probe) {
            probes.push(r.probe.clone());
        }
    }
    let mut plan = RunPlan::from_names(&profiles, &probes)?;
    let wanted: BTreeSet<(String, String)> = baseline
        .results
        .iter()
        .map(|r| (r.probe.clone(), r.profile.clone()))
        .collect();
    plan.retain(|j| wanted.contains(&(j.probe.clone(), j.profile.clone())));
    Ok(plan)
}

struct GroupOutcome {
    results: Vec<ProbeResult>,
    workloads: Vec<WorkloadResult>,
    workloads_ms: u64,
    environment: Option<Environment>,
    probes_ms: u64,
    ablation_ms: u64,
    launches: Option<LaunchTimings>,
    channel_problems: Vec<String>,
}

fn run_group(
    plan: &RunPlan,
    group: &VmGroup,
    vm: &VmArgs,
    binaries: &Binaries,
    observer: &mut dyn Observer,
) -> Result<GroupOutcome, RunError> {
    let mut remaining: Vec<Job> = group.jobs.clone();
    let mut remaining_workloads: Vec<WorkloadJob> = group.workloads.clone();
    let mut known: Vec<KnownTrial> = Vec::new();
    let mut outcome = GroupOutcome {
        results: Vec::new(),
        workloads: Vec::new(),
        workloads_ms: 0,
        environment: None,
        probes_ms: 0,
        ablation_ms: 0,
        launches: None,
        channel_problems: Vec::new(),
    };
    let dir = tempfile::tempdir().map_err(|e| RunError::Plan(e.to_string()))?;
    let plan_path = dir.path().join("plan.json");
    for attempt in 0.. {
        if attempt > MAX_RESTARTS {
            return Err(RunError::TooManyRestarts {
                group: group.label.clone(),
                restarts: attempt - 1,
            });
        }
        let used: BTreeSet<&str> = remaining
            .iter()
            .map(|j| j.profile.as_str())
            .chain(remaining_workloads.iter().map(|w| w.profile.as_str()))
            .collect();
        let guest_plan = GuestPlan {
            configurations: plan
                .configurations
                .iter()
                .filter(|c| used.contains(c.name.as_str()))
                .cloned()
                .collect(),
            jobs: remaining.clone(),
            options: GuestOptions {
                probe_timeout_ms: vm.probe_timeout * 1000,
                ablate: !vm.no_ablation,
                // As many launches at once as the guest has CPUs.
                workers: vm.cpus.max(1) as usize,
                announce_trials: group.ends_guest,
                workload_timeout_ms: vm.workload_timeout * 1000,
            },
            known_trials: known.clone(),
            workloads: remaining_workloads.clone(),
        };
        guest_plan
            .write(&plan_path)
            .map_err(|e| RunError::Plan(e.to_string()))?;
        observer.booting(&group.label, attempt);

        let mut config = vm_config(vm, binaries, &plan_path);
        if !guest_plan.workloads.is_empty() {
            // The workloads' files come as a second image, only for a VM that runs them.
            config.bundle = Some(crate::workloads::bundle_spec());
        }
        if guest_plan.configurations.iter().any(|c| {
            matches!(
                c.kind,
                crate::suite::plan::ConfigurationKind::Adapter { .. }
            )
        }) {
            // The external runtimes' binaries, at their host paths (the VM adds their libraries).
            for path in crate::adapters::guest_files() {
                config.files.push(GuestFile {
                    host: path.clone(),
                    guest: path,
                });
            }
        }
        // File probes: their directories, under the path sandboxes see.
        config
            .files
            .extend(crate::suite::file_probes::guest_files(&guest_plan.jobs));
        for c in &guest_plan.configurations {
            for path in c.guest_files() {
                config.files.push(GuestFile {
                    host: path.clone(),
                    guest: path,
                });
            }
        }
        #[cfg(feature = "layer-mutants")]
        if let Ok(layer) = std::env::var(breakout_runtime::mutant::MUTANT_ENV) {
            eprintln!("breakout: SCRATCH BUILD: layer `{layer}` does nothing in this run");
            config
                .env
                .push((breakout_runtime::mutant::MUTANT_ENV.to_string(), layer));
        }
        // The tool itself, not through the front: one start fewer.
        let argv = vec![
            GUEST_HARNESS.to_string(),
            "guest-exec".to_string(),
            "--plan".to_string(),
            GUEST_PLAN_PATH.to_string(),
            "--accel".to_string(),
            accel_name(vm.accel).to_string(),
        ];
        let mut collector = Collector::new(&mut *observer, &remaining, &remaining_workloads);
        let vm_result = breakout_vm::run(&config, &argv, &mut collector);
        let mut state = collector.state;
        if outcome.environment.is_none() {
            outcome.environment = state.environment.clone();
            if let (Some(env), Ok(vm_outcome)) = (&mut outcome.environment, &vm_result) {
                env.accel = format!("{:?}", vm_outcome.accel).to_lowercase();
            }
        }
        for r in &state.results {
            remaining.retain(|j| !(j.probe == r.probe && j.profile == r.profile));
        }
        outcome.results.extend(state.results.iter().cloned());
        for w in &state.workloads {
            remaining_workloads.retain(|j| !(j.workload == w.workload && j.profile == w.profile));
        }
        outcome.workloads.extend(state.workloads.iter().cloned());
        if let Some(launches) = &state.launches {
            outcome.launches = Some(launches.clone());
        }
        if let (Some(plan_at), Some(done)) = (state.plan_at, state.done_at) {
            let workloads_at = state.first_workload_at.unwrap_or(done);
            if let Some(first) = state.first_result_at {
                outcome.probes_ms += (first - plan_at).as_millis() as u64;
                outcome.ablation_ms +=
                    workloads_at.saturating_duration_since(first).as_millis() as u64;
            }
            if state.first_workload_at.is_some() {
                outcome.workloads_ms += (done - workloads_at).as_millis() as u64;
            }
        }
        if state.done.is_some() && remaining.is_empty() && remaining_workloads.is_empty() {
            // Every result came back; what else the channel or the VM said still counts.
            if let Err(e) = &vm_result {
                state
                    .channel_problems
                    .push(format!("the VM failed after the last result: {e}"));
            } else if let Ok(o) = &vm_result {
                if o.exit_code != 0 {
                    state.channel_problems.push(format!(
                        "the orchestrator exited with code {} after the last result",
                        o.exit_code
                    ));
                }
            }
            if state.bad_lines > 1 {
                state.channel_problems.push(format!(
                    "{} unreadable result lines from the guest in all",
                    state.bad_lines
                ));
            }
            if let Some(e) = &state.error {
                state
                    .channel_problems
                    .push(format!("the guest reported an error: {e}"));
            }
            outcome.channel_problems.extend(state.channel_problems);
            return Ok(outcome);
        }
        outcome
            .channel_problems
            .extend(state.channel_problems.iter().cloned());
        known.extend(state.finished.iter().cloned());

        // The guest ended without finishing the plan.
        let ended = match &vm_result {
            Ok(o) => format!(
                "the guest ended (exit code {}) before finishing",
                o.exit_code
            ),
            Err(e) => e.to_string(),
        };
        match (&state.in_flight, group.ends_guest, state.saw_plan) {
            (Some((key, description)), true, _) => {
                // The launch in flight took the guest down: an escape the harness observed itself.
                known.push(KnownTrial {
                    key: key.clone(),
                    record: TrialRecord {
                        verdict: Verdict::Escaped,
                        reason: format!("the guest went down during `{description}`: {ended}"),
                        evidence: Evidence::default(),
                        duration_ms: 0,
                    },
                });
            }
            (_, _, false) => {
                return match vm_result {
                    Err(source) => Err(RunError::Vm {
                        group: group.label.clone(),
                        source,
                    }),
                    Ok(o) => Err(RunError::Guest {
                        group: group.label.clone(),
                        exit_code: o.exit_code,
                        message: state
                            .error
                            .unwrap_or_else(|| "no result came back".to_string()),
                    }),
                };
            }
            (_, _, true) => {
                // The guest died mid-plan for a reason no probe is known to cause: what did not
                // finish is inconclusive, never blocked.
                let why = state.error.clone().unwrap_or(ended);
                for job in remaining.drain(..) {
                    let result = ProbeResult {
                        probe: job.probe.clone(),
                        profile: job.profile.clone(),
                        kernel: String::new(),
                        verdict: Verdict::Inconclusive,
                        reason: format!("the guest ended before this result: {why}"),
                        evidence: Evidence::default(),
                        attribution: None,
                        duration_ms: 0,
                    };
                    observer.event(&GuestEvent::Result(result.clone()));
                    outcome.results.push(result);
                }
                for job in remaining_workloads.drain(..) {
                    let result = WorkloadResult {
                        workload: job.workload,
                        profile: job.profile,
                        verdict: breakout_attacks::workloads::WorkloadVerdict::Skipped,
                        reason: format!("the guest ended before this result: {why}"),
                        step: None,
                        stderr_tail: String::new(),
                        duration_ms: 0,
                        kernel: String::new(),
                    };
                    observer.event(&GuestEvent::Workload(result.clone()));
                    outcome.workloads.push(result);
                }
                return Ok(outcome);
            }
        }
    }
    unreachable!("the restart loop returns")
}

fn vm_config(vm: &VmArgs, binaries: &Binaries, plan_path: &Path) -> VmConfig {
    VmConfig {
        kernel: vm.kernels.first().cloned(),
        accel: match vm.accel {
            AccelArg::Auto => Accel::Auto,
            AccelArg::Kvm => Accel::Kvm,
            AccelArg::Tcg => Accel::Tcg,
        },
        memory_mib: vm.memory,
        cpus: vm.cpus.max(1),
        timeout: Some(Duration::from_secs(vm.vm_timeout)),
        // A TCG boot takes seconds when the host is idle, far longer on a loaded CI machine.
        boot_timeout: Duration::from_secs(180),
        files: vec![
            GuestFile {
                host: binaries.breakout.clone(),
                guest: PathBuf::from(GUEST_BREAKOUT),
            },
            GuestFile {
                host: binaries.harness.clone(),
                guest: PathBuf::from(GUEST_HARNESS),
            },
            GuestFile {
                host: binaries.probe.clone(),
                guest: PathBuf::from(GUEST_PROBE),
            },
            GuestFile {
                host: plan_path.to_path_buf(),
                guest: PathBuf::from(GUEST_PLAN_PATH),
            },
        ],
        ..VmConfig::default()
    }
}

fn accel_name(a: AccelArg) -> &'static str {
    match a {
        AccelArg::Auto => "auto",
        AccelArg::Kvm => "kvm",
        AccelArg::Tcg => "tcg",
    }
}

#[derive(Default)]
struct GuestState {
    saw_plan: bool,
    environment: Option<Environment>,
    results: Vec<ProbeResult>,
    workloads: Vec<WorkloadResult>,
    done: Option<(u64, u64)>,
    launches: Option<LaunchTimings>,
    error: Option<String>,
    /// The announced launch that has not come back (key, description).
    in_flight: Option<(String, String)>,
    finished: Vec<KnownTrial>,
    /// Result lines that did not parse (reported once as an error).
    bad_lines: usize,
    /// See [`RunReport::channel_problems`].
    channel_problems: Vec<String>,
    /// When the host saw the plan start, the first result (the end of the probe runs: results
    /// that need ablation come after it) and the end.
    plan_at: Option<Instant>,
    first_result_at: Option<Instant>,
    /// When the workloads started (their phase event, else their first result).
    first_workload_at: Option<Instant>,
    done_at: Option<Instant>,
}

struct Collector<'a> {
    observer: &'a mut dyn Observer,
    state: GuestState,
    /// The jobs this guest was given, and where each one's result is in `state`: a result for
    /// any other job, or a second one, did not come from the orchestrator's plan.
    probe_jobs: BTreeMap<Job, Option<usize>>,
    workload_jobs: BTreeMap<WorkloadJob, Option<usize>>,
}

impl<'a> Collector<'a> {
    fn new(
        observer: &'a mut dyn Observer,
        jobs: &[Job],
        workloads: &[WorkloadJob],
    ) -> Collector<'a> {
        Collector {
            observer,
            state: GuestState::default(),
            probe_jobs: jobs.iter().map(|j| (j.clone(), None)).collect(),
            workload_jobs: workloads.iter().map(|j| (j.clone(), None)).collect(),
        }
    }

    /// A probe result for a job of the plan, once: true when it is taken as it is.
    fn take_result(&mut self, r: &ProbeResult) -> bool {
        let job = Job {
            probe: r.probe.clone(),
            profile: r.profile.clone(),
        };
        match self.probe_jobs.get_mut(&job) {
            None => {
                self.state.channel_problems.push(format!(
                    "a result for {} under {}, a job this guest was not given, came over the result channel (verdict {}); it was dropped",
                    r.probe, r.profile, crate::model::verdict_name(r.verdict)
                ));
                false
            }
            Some(Some(at)) => {
                let first = &mut self.state.results[*at];
                self.state.channel_problems.push(format!(
                    "two results came back for {} under {} ({}, then {}): neither is trusted",
                    r.probe,
                    r.profile,
                    crate::model::verdict_name(first.verdict),
                    crate::model::verdict_name(r.verdict)
                ));
                *first = ProbeResult {
                    verdict: Verdict::Inconclusive,
                    reason: format!(
                        "two results came back over the result channel for this job ({}: {}; then {}: {}), so something in the guest other than the orchestrator wrote to it; neither is trusted",
                        crate::model::verdict_name(first.verdict),
                        first.reason,
                        crate::model::verdict_name(r.verdict),
                        r.reason
                    ),
                    evidence: Evidence::default(),
                    attribution: None,
                    ..first.clone()
                };
                false
            }
            Some(slot) => {
                *slot = Some(self.state.results.len());
                self.state.results.push(r.clone());
                true
            }
        }
    }

    /// A workload result, with the same rule as [`Collector::take_result`].
    fn take_workload(&mut self, w: &WorkloadResult) -> bool {
        let job = WorkloadJob {
            workload: w.workload.clone(),
            profile: w.profile.clone(),
        };
        match self.workload_jobs.get_mut(&job) {
            None => {
                self.state.channel_problems.push(format!(
                    "a workload result for {} under {}, a job this guest was not given, came over the result channel; it was dropped",
                    w.workload, w.profile
                ));
                false
            }
            Some(Some(at)) => {
                let first = &mut self.state.workloads[*at];
                self.state.channel_problems.push(format!(
                    "two workload results came back for {} under {}: neither is trusted",
                    w.workload, w.profile
                ));
                *first = WorkloadResult {
                    verdict: breakout_attacks::workloads::WorkloadVerdict::Skipped,
                    reason: "two results came back over the result channel for this workload, so something in the guest other than the orchestrator wrote to it; neither is trusted".to_string(),
                    step: None,
                    stderr_tail: String::new(),
                    ..first.clone()
                };
                false
            }
            Some(slot) => {
                *slot = Some(self.state.workloads.len());
                self.state.workloads.push(w.clone());
                true
            }
        }
    }
}

impl VmSink for Collector<'_> {
    fn output(&mut self, stream: Stream, bytes: &[u8]) {
        self.observer.console(stream, bytes);
    }

    fn result_line(&mut self, line: &str) {
        let event: GuestEvent = match serde_json::from_str(line) {
            Ok(e) => e,
            Err(e) => {
                self.state.bad_lines += 1;
                if self.state.bad_lines == 1 {
                    self.state.channel_problems.push(format!(
                        "unreadable result line from the guest ({e}): {line:.200}"
                    ));
                }
                return;
            }
        };
        match &event {
            GuestEvent::Plan { .. } => {
                self.state.saw_plan = true;
                self.state.plan_at = Some(Instant::now());
            }
            GuestEvent::Environment(env) => self.state.environment = Some(env.clone()),
            GuestEvent::Result(r) => {
                self.state.first_result_at.get_or_insert_with(Instant::now);
                if !self.take_result(r) {
                    return;
                }
            }
            GuestEvent::WorkloadsStarted { .. } => {
                self.state.first_workload_at = Some(Instant::now());
            }
            GuestEvent::Workload(w) => {
                self.state
                    .first_workload_at
                    .get_or_insert_with(Instant::now);
                if !self.take_workload(w) {
                    return;
                }
            }
            GuestEvent::Done {
                probes_ms,
                ablation_ms,
                launches,
            } => {
                self.state.done = Some((*probes_ms, *ablation_ms));
                self.state.launches = launches.clone();
                self.state.done_at = Some(Instant::now());
            }
            GuestEvent::Error { message } => self.state.error = Some(message.clone()),
            GuestEvent::TrialStarted {
                key, description, ..
            } => self.state.in_flight = Some((key.clone(), description.clone())),
            GuestEvent::TrialFinished { key, record } => {
                self.state.in_flight = None;
                self.state.finished.push(KnownTrial {
                    key: key.clone(),
                    record: record.clone(),
                });
            }
            GuestEvent::Started { .. } => {}
        }
        self.observer.event(&event);
    }
}

/// Profiles of a report by name.
pub fn profile_info<'a>(report: &'a RunReport, name: &str) -> Option<&'a ProfileInfo> {
    report.profiles.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::elf_has_interpreter;

    /// An ELF64 little-endian header with program headers of the given types at offset 64.
    fn elf(types: &[u32]) -> Vec<u8> {
        let mut e = vec![0u8; 64 + 56 * types.len()];
        e[..6].copy_from_slice(b"\x7fELF\x02\x01");
        e[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        e[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        e[0x38..0x3a].copy_from_slice(&(types.len() as u16).to_le_bytes());
        for (i, t) in types.iter().enumerate() {
            e[64 + 56 * i..68 + 56 * i].copy_from_slice(&t.to_le_bytes());
        }
        e
    }

    #[test]
    fn an_interpreter_header_makes_a_dynamic_executable() {
        assert_eq!(elf_has_interpreter(&elf(&[6, 3, 1])), Some(true));
        assert_eq!(elf_has_interpreter(&elf(&[1, 1, 7])), Some(false));
        assert_eq!(elf_has_interpreter(&elf(&[])), Some(false));
    }

    #[test]
    fn what_is_not_a_whole_elf_image_is_unknown() {
        assert_eq!(elf_has_interpreter(b"#!/bin/sh\n"), None);
        let mut cut = elf(&[1, 3]);
        cut.truncate(64 + 56);
        assert_eq!(elf_has_interpreter(&cut), None);
        let mut far = elf(&[1]);
        far[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(elf_has_interpreter(&far), None);
    }

    #[test]
    fn this_test_binary_is_read_as_elf() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(elf_has_interpreter(&exe).is_some());
    }
}

#[cfg(test)]
mod channel_tests {
    use super::{Collector, Quiet};
    use crate::model::{Evidence, GuestEvent, ProbeResult};
    use crate::suite::plan::Job;
    use breakout_attacks::Verdict;
    use breakout_vm::VmSink;

    fn job(probe: &str, profile: &str) -> Job {
        Job {
            probe: probe.to_string(),
            profile: profile.to_string(),
        }
    }

    fn line(probe: &str, profile: &str, verdict: Verdict) -> String {
        serde_json::to_string(&GuestEvent::Result(ProbeResult {
            probe: probe.to_string(),
            profile: profile.to_string(),
            kernel: String::new(),
            verdict,
            reason: format!("{verdict:?} by the oracle"),
            evidence: Evidence::default(),
            attribution: None,
            duration_ms: 1,
        }))
        .unwrap()
    }

    #[test]
    fn one_result_per_job_is_taken_as_it_came() {
        let mut quiet = Quiet;
        let jobs = [job("leaked-fds", "none"), job("leaked-fds", "namespaces")];
        let mut c = Collector::new(&mut quiet, &jobs, &[]);
        c.result_line(&line("leaked-fds", "none", Verdict::Escaped));
        c.result_line(&line("leaked-fds", "namespaces", Verdict::Escaped));
        assert!(c.state.channel_problems.is_empty());
        assert_eq!(c.state.results.len(), 2);
        assert_eq!(c.state.results[1].verdict, Verdict::Escaped);
    }

    /// A payload with the guest's root wrote a "blocked" line for a job whose real result is an
    /// escape: whichever comes first, neither is believed, and the run says why.
    #[test]
    fn a_second_result_for_a_job_makes_it_inconclusive_and_marks_the_run() {
        for (first, second) in [
            (Verdict::Escaped, Verdict::Blocked),
            (Verdict::Blocked, Verdict::Escaped),
        ] {
            let mut quiet = Quiet;
            let jobs = [job("leaked-fds", "namespaces")];
            let mut c = Collector::new(&mut quiet, &jobs, &[]);
            c.result_line(&line("leaked-fds", "namespaces", first));
            c.result_line(&line("leaked-fds", "namespaces", second));
            assert_eq!(c.state.results.len(), 1);
            let r = &c.state.results[0];
            assert_eq!(r.verdict, Verdict::Inconclusive, "{r:?}");
            assert!(r.reason.contains("two results came back"), "{}", r.reason);
            assert_eq!(c.state.channel_problems.len(), 1);
            assert!(c.state.channel_problems[0].contains("leaked-fds under namespaces"));
        }
    }

    #[test]
    fn a_result_for_a_job_the_guest_was_not_given_is_dropped_and_marks_the_run() {
        let mut quiet = Quiet;
        let jobs = [job("leaked-fds", "none")];
        let mut c = Collector::new(&mut quiet, &jobs, &[]);
        c.result_line(&line("ptrace-outside", "strict", Verdict::Blocked));
        c.result_line(&line("leaked-fds", "none", Verdict::Escaped));
        assert_eq!(c.state.results.len(), 1);
        assert_eq!(c.state.results[0].probe, "leaked-fds");
        assert_eq!(c.state.channel_problems.len(), 1);
        assert!(c.state.channel_problems[0].contains("ptrace-outside under strict"));
    }

    #[test]
    fn an_unreadable_line_marks_the_run() {
        let mut quiet = Quiet;
        let mut c = Collector::new(&mut quiet, &[job("leaked-fds", "none")], &[]);
        c.result_line("{\"event\":\"result\",\"probe\":");
        assert_eq!(c.state.channel_problems.len(), 1);
        assert!(c.state.channel_problems[0].contains("unreadable result line"));
    }
}
