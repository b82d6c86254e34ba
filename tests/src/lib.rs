//! Helpers shared by the escape suite's test binaries: where the committed baseline and our
//! binaries are, which trials libtest-mimic's arguments select (so the filter shapes the plan
//! before the VM boots), and the VM settings taken from the environment.

use breakout_attacks::Layer;
use breakout_harness::suite::host::{AccelArg, Binaries, RunError, VmArgs};
use libtest_mimic::Arguments;
use std::path::{Path, PathBuf};

/// The layer coverage test's table (tests/layer_coverage.rs): for `layer`, the probe it stops
/// and the base it is added to. The base is empty ("alone") unless that test's module comment
/// explains otherwise. The match is exhaustive: a new layer does not compile without its probe.
pub fn coverage_probe(layer: Layer) -> (&'static str, &'static [Layer]) {
    match layer {
        Layer::UserNs => ("mount", &[]),
        Layer::PidNs => ("signal-same-uid", &[]),
        Layer::MountNs => ("scm-rights-import", &[]),
        Layer::NetNs => ("host-loopback", &[]),
        Layer::IpcNs => ("sysv-ipc", &[]),
        Layer::UtsNs => ("hostname", &[]),
        Layer::CgroupNs => ("cgroup-path-leak", &[]),
        Layer::Uid => ("signal-outside", &[]),
        Layer::Caps => ("ptrace-outside", &[]),
        Layer::NoNewPrivs => ("setuid-gain", &[]),
        Layer::Seccomp => ("keyring", &[]),
        Layer::CgroupLimits => ("memory-hog", &[]),
        Layer::FsHardening => ("masked-paths", &[]),
        Layer::FdHygiene => ("leaked-fds", &[]),
        Layer::Rlimits => ("fork-bomb", &[Layer::Uid]),
        Layer::NewSession => ("tiocsti", &[Layer::Uid]),
        Layer::Landlock => ("outside-file", &[]),
    }
}

/// The project's committed baseline, or the file BREAKOUT_BASELINE names (a baseline written by
/// `breakout run --probes DIR --write-baseline FILE` covers file probes too).
pub fn baseline_path() -> PathBuf {
    match std::env::var_os("BREAKOUT_BASELINE") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../baselines/default.json"),
    }
}

/// Registers the file probes of BREAKOUT_PROBES (directories, colon-separated), so that a
/// baseline naming them plans and runs like one of built-in probes.
pub fn register_file_probes() -> Result<(), String> {
    let Some(dirs) = std::env::var_os("BREAKOUT_PROBES") else {
        return Ok(());
    };
    let args = breakout_harness::suite::file_probes::FileProbeArgs {
        dirs: std::env::split_paths(&dirs).collect(),
    };
    args.probes_to_run(&[])
        .map(|_| ())
        .map_err(|e| format!("BREAKOUT_PROBES: {e}"))
}

/// `breakout`, `breakout-harness` and `breakout-probe` in the target directory of the running test binary
/// (target/debug/deps/NAME-HASH -> target/debug).
pub fn binaries() -> Result<Binaries, RunError> {
    let exe = std::env::current_exe().map_err(RunError::CurrentExe)?;
    let deps = exe.parent().unwrap_or(Path::new("/"));
    let dir = if deps.ends_with("deps") {
        deps.parent().unwrap_or(deps)
    } else {
        deps
    };
    Binaries::in_dir(dir)
}

/// Does libtest-mimic run the trial `name` under these arguments? The same rules as
/// libtest-mimic's own filter: substring match (exact with `--exact`), `--skip` likewise.
pub fn selected(args: &Arguments, name: &str) -> bool {
    let matches = |pattern: &str| {
        if args.exact {
            name == pattern
        } else {
            name.contains(pattern)
        }
    };
    if let Some(filter) = &args.filter {
        if !matches(filter) {
            return false;
        }
    }
    !args.skip.iter().any(|s| matches(s))
}

/// Whether the arguments only list trials (no VM needed).
pub fn listing_only(args: &Arguments) -> bool {
    args.list
}

/// VM settings: the defaults of `breakout run`, with BREAKOUT_ACCEL=auto|kvm|tcg and
/// BREAKOUT_KERNEL=PATH honoured. A bad value is an error, not a silent default.
pub fn vm_args() -> Result<VmArgs, String> {
    let mut vm = VmArgs::default();
    if let Ok(accel) = std::env::var("BREAKOUT_ACCEL") {
        vm.accel = match accel.as_str() {
            "auto" => AccelArg::Auto,
            "kvm" => AccelArg::Kvm,
            "tcg" => AccelArg::Tcg,
            other => return Err(format!("BREAKOUT_ACCEL={other}: expected auto, kvm or tcg")),
        };
    }
    if let Some(kernel) = std::env::var_os("BREAKOUT_KERNEL") {
        vm.kernels = vec![PathBuf::from(kernel)];
    }
    Ok(vm)
}

/// A check of one run's report: `Err` says what it saw instead.
pub type ReportCheck = fn(&breakout_harness::model::RunReport) -> Result<(), String>;

/// Named checks that share one run: `run` is called once, and only when a selected check needs
/// it (never when listing); each check becomes a trial of its own. Exits with libtest's status.
pub fn checks_on_one_run(
    checks: Vec<(&'static str, ReportCheck)>,
    run: impl FnOnce() -> Result<breakout_harness::model::RunReport, String>,
) -> ! {
    let args = Arguments::from_args();
    let any = checks.iter().any(|(n, _)| selected(&args, n));
    let report = shared_run(&args, any, run);
    let trials = checks
        .into_iter()
        .map(|(name, check)| {
            let report = std::sync::Arc::clone(&report);
            libtest_mimic::Trial::test(name, move || {
                let report = report
                    .as_ref()
                    .as_ref()
                    .map_err(|e| libtest_mimic::Failed::from(format!("the run failed: {e}")))?;
                check(report).map_err(libtest_mimic::Failed::from)
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit()
}

/// The one run a test binary's trials share: `run` is called only when `needed` (some selected
/// trial uses it) and the arguments do not only list the trials.
pub fn shared_run(
    args: &Arguments,
    needed: bool,
    run: impl FnOnce() -> Result<breakout_harness::model::RunReport, String>,
) -> std::sync::Arc<Result<breakout_harness::model::RunReport, String>> {
    std::sync::Arc::new(if needed && !listing_only(args) {
        run()
    } else {
        Err("not run".to_string())
    })
}

/// `plan` in a fresh VM with the environment's VM settings, without ablation.
pub fn run_without_ablation(
    plan: &breakout_harness::suite::plan::RunPlan,
) -> Result<breakout_harness::model::RunReport, String> {
    let mut vm = vm_args()?;
    vm.no_ablation = true;
    let binaries = binaries().map_err(|e| e.to_string())?;
    breakout_harness::suite::host::execute(
        plan,
        &vm,
        &binaries,
        &mut breakout_harness::suite::host::Quiet,
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn every_layer_has_a_coverage_probe_that_exists() {
        for layer in Layer::ALL {
            let (probe, base) = coverage_probe(layer);
            assert!(breakout_attacks::probe(probe).is_some(), "{layer}: {probe}");
            assert!(!base.contains(&layer), "{layer}");
        }
    }

    fn args(filter: Option<&str>, exact: bool, skip: &[&str]) -> Arguments {
        Arguments {
            filter: filter.map(str::to_string),
            exact,
            skip: skip.iter().map(|s| s.to_string()).collect(),
            ..Arguments::default()
        }
    }

    #[rstest]
    #[case(None, false, &[], "ptrace-outside::strict", true)]
    #[case(Some("ptrace"), false, &[], "ptrace-outside::strict", true)]
    #[case(Some("ptrace"), false, &[], "mount::strict", false)]
    #[case(Some("::strict"), false, &[], "mount::strict", true)]
    #[case(Some("ptrace-outside"), true, &[], "ptrace-outside::strict", false)]
    #[case(Some("ptrace-outside::strict"), true, &[], "ptrace-outside::strict", true)]
    #[case(None, false, &["none"], "ptrace-outside::none", false)]
    #[case(Some("ptrace"), false, &["none"], "ptrace-outside::strict", true)]
    fn the_filter_selects_like_libtest(
        #[case] filter: Option<&str>,
        #[case] exact: bool,
        #[case] skip: &[&str],
        #[case] name: &str,
        #[case] expected: bool,
    ) {
        assert_eq!(selected(&args(filter, exact, skip), name), expected);
    }

    #[test]
    fn missing_binaries_are_named() {
        let dir = std::env::temp_dir().join("breakout-tests-no-binaries");
        std::fs::create_dir_all(&dir).unwrap();
        let err = Binaries::in_dir(&dir).unwrap_err().to_string();
        assert!(
            err.contains("breakout") && err.contains("cargo build --workspace --bins"),
            "{err}"
        );
    }
}
