//! The same profile on two kernels, in the VM (issue 11): a verdict holds for the kernel it was
//! measured on.
//!
//! - tiocsti with only the `uid` layer: Debian 12's 6.1 has legacy TIOCSTI, so an unprivileged
//!   payload sharing the outside's terminal injects keystrokes (escaped); Debian 13's 6.12 is
//!   built without it (dev.tty.legacy_tiocsti=0) and refuses TIOCSTI without CAP_SYS_ADMIN
//!   (blocked). The verdicts must differ.
//! - abstract-socket with only the `landlock` layer: ABI 2 on 6.1 has no scoping (escaped, and
//!   the evidence says the ruleset was partially enforced); ABI 6 on 6.12 scopes abstract unix
//!   sockets (blocked, fully enforced).
//!
//! One VM per kernel (the debian-13 kernel is fetched into the cache on first use); ablation off.

use breakout_attacks::{Layer, Verdict};
use breakout_harness::model::RunReport;
use breakout_harness::suite::host::{self, Quiet};
use breakout_harness::suite::plan::{Configuration, ConfigurationKind, RunPlan};
use breakout_runtime::config::SandboxConfig;
use breakout_runtime::LandlockEnforcement;
use breakout_tests::{binaries, listing_only, selected, vm_args};
use libtest_mimic::{Arguments, Failed, Trial};
use std::path::PathBuf;

const KERNELS: [&str; 2] = ["debian-12", "debian-13"];

fn only(layer: Layer) -> Result<Configuration, String> {
    let mut config = SandboxConfig::builtin("strict").map_err(|e| e.to_string())?;
    for l in Layer::ALL {
        config.set_enabled(l, l == layer);
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(Configuration {
        name: format!("only-{layer}"),
        kind: ConfigurationKind::Breakout { config },
    })
}

fn run_on(kernel: &str) -> Result<RunReport, String> {
    let plan = RunPlan::new(
        vec![only(Layer::Uid)?, only(Layer::Landlock)?],
        &["tiocsti".to_string(), "abstract-socket".to_string()],
    )
    .map_err(|e| e.to_string())?;
    let mut vm = vm_args()?;
    vm.no_ablation = true;
    vm.kernels = vec![PathBuf::from(kernel)];
    let binaries = binaries().map_err(|e| e.to_string())?;
    host::execute(&plan, &vm, &binaries, &mut Quiet).map_err(|e| format!("{kernel}: {e}"))
}

fn result<'a>(
    report: &'a RunReport,
    probe: &str,
    profile: &str,
) -> Result<&'a breakout_harness::model::ProbeResult, String> {
    report
        .results
        .iter()
        .find(|r| r.probe == probe && r.profile == profile)
        .ok_or_else(|| format!("no result for {probe} under {profile}"))
}

fn expect(
    report: &RunReport,
    kernel: &str,
    probe: &str,
    profile: &str,
    want: Verdict,
) -> Result<(), String> {
    let r = result(report, probe, profile)?;
    if r.verdict != want {
        return Err(format!(
            "{kernel}: {probe} under {profile}: {:?} ({}), expected {want:?}",
            r.verdict, r.reason
        ));
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let names = [
        "tiocsti_under_uid_alone_escapes_on_6_1_and_is_blocked_on_6_12",
        "landlock_scopes_abstract_sockets_on_6_12_only_and_says_so",
    ];
    let any = names.iter().any(|n| selected(&args, n));
    let reports: Vec<Result<RunReport, String>> = if any && !listing_only(&args) {
        KERNELS.iter().map(|k| run_on(k)).collect()
    } else {
        KERNELS.iter().map(|_| Err("not run".to_string())).collect()
    };
    let reports = std::sync::Arc::new(reports);
    let both = |reports: &[Result<RunReport, String>]| -> Result<(RunReport, RunReport), Failed> {
        let old = reports[0].clone().map_err(Failed::from)?;
        let new = reports[1].clone().map_err(Failed::from)?;
        Ok((old, new))
    };
    let r1 = std::sync::Arc::clone(&reports);
    let r2 = std::sync::Arc::clone(&reports);
    let trials = vec![
        Trial::test(names[0], move || {
            let (old, new) = both(&r1)?;
            expect(&old, KERNELS[0], "tiocsti", "only-uid", Verdict::Escaped)?;
            expect(&new, KERNELS[1], "tiocsti", "only-uid", Verdict::Blocked)?;
            println!("tiocsti under only-uid: escaped on 6.1, blocked on 6.12");
            Ok(())
        }),
        Trial::test(names[1], move || {
            let (old, new) = both(&r2)?;
            expect(
                &old,
                KERNELS[0],
                "abstract-socket",
                "only-landlock",
                Verdict::Escaped,
            )?;
            expect(
                &new,
                KERNELS[1],
                "abstract-socket",
                "only-landlock",
                Verdict::Blocked,
            )?;
            for (report, kernel, abi, enforcement) in [
                (&old, KERNELS[0], 2, LandlockEnforcement::Partial),
                (&new, KERNELS[1], 6, LandlockEnforcement::Full),
            ] {
                let r = result(report, "abstract-socket", "only-landlock")?;
                let ev = r
                    .evidence
                    .landlock
                    .as_ref()
                    .ok_or_else(|| format!("{kernel}: no landlock evidence"))?;
                if ev.abi != abi || ev.enforcement != enforcement {
                    return Err(format!(
                        "{kernel}: landlock evidence {ev:?}, expected ABI {abi} {enforcement:?}"
                    )
                    .into());
                }
            }
            Ok(())
        }),
    ];
    libtest_mimic::run(&args, trials).exit();
}
