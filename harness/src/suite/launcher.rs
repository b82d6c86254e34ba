//! [`RuntimeLauncher`]: starts the inside half of a probe in our runtime under a
//! `SandboxConfig` (breakout_attacks::Launcher on breakout_runtime::spawn), and the small
//! helpers the orchestrator needs from the runtime's configuration: the limits probes judge
//! against, ablation variants, the capabilities a profile drops, layer dependencies.

use breakout_attacks::pipe::drain;
use breakout_attacks::{LaunchRequest, Launched, Launcher, Layer, Limits};
use breakout_runtime::config::SandboxConfig;
use std::collections::BTreeSet;
use std::os::fd::{BorrowedFd, OwnedFd};

/// The environment every payload gets: nothing inherited from the orchestrator.
const PAYLOAD_ENV: [(&str, &str); 2] = [("PATH", "/usr/bin:/bin"), ("LC_ALL", "C")];

/// Launches `breakout-probe` in our runtime.
pub struct RuntimeLauncher {
    config: SandboxConfig,
}

impl RuntimeLauncher {
    pub fn new(config: SandboxConfig) -> Self {
        RuntimeLauncher { config }
    }
}

impl Launcher for RuntimeLauncher {
    fn launch(&self, request: &LaunchRequest) -> Result<Launched, String> {
        let (stdout_read, stdout_write) = pipe().map_err(|e| format!("pipe for stdout: {e}"))?;
        let (stderr_read, stderr_write) = pipe().map_err(|e| format!("pipe for stderr: {e}"))?;
        let controlling_tty = dup_arranged(request.controlling_tty, "the controlling terminal")?;
        let stdin = dup_arranged(request.stdin, "the stdin descriptor")?;
        let mut payload = breakout_runtime::Payload::new(request.argv.iter().cloned());
        payload.env = PAYLOAD_ENV
            .iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        payload.stdin = stdin;
        payload.stdout = Some(stdout_write);
        payload.stderr = Some(stderr_write);
        payload.outer_cgroup = request.cgroup.clone();
        payload.controlling_tty = controlling_tty;
        let mut sandbox =
            breakout_runtime::spawn(&self.config, payload).map_err(|e| format!("sandbox: {e}"))?;
        // The write ends went into the payload and were closed here by spawn (it took them).
        let stdout = drain(Some(std::fs::File::from(stdout_read)));
        let stderr = drain(Some(std::fs::File::from(stderr_read)));
        let (outcome, timed_out) = match sandbox.wait_timeout(request.timeout) {
            Ok(Some(outcome)) => (outcome, false),
            Ok(None) => {
                sandbox.kill();
                let outcome = sandbox.wait().map_err(|e| {
                    format!("waiting for the sandbox after killing it at its timeout: {e}")
                })?;
                (outcome, true)
            }
            Err(e) => {
                sandbox.kill();
                return Err(format!("waiting for the sandbox: {e}"));
            }
        };
        Ok(Launched {
            outcome: Some(outcome),
            stdout: stdout.collect(),
            stderr: stderr.collect(),
            timed_out,
        })
    }
}

/// Our own copy of a descriptor the arrangement passes for the payload (a terminal, the timing
/// channel), or None.
fn dup_arranged(fd: Option<i32>, what: &str) -> Result<Option<OwnedFd>, String> {
    let Some(fd) = fd else {
        return Ok(None);
    };
    // SAFETY: the caller (the driver) keeps the arrangement, which owns this descriptor, alive
    // for the whole launch; we only duplicate it.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    borrowed
        .try_clone_to_owned()
        .map(Some)
        .map_err(|e| format!("dup of {what} {fd}: {e}"))
}

fn pipe() -> Result<(OwnedFd, OwnedFd), nix::Error> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
}

/// The limits of a configuration, for resource probes to judge against.
pub fn limits_of(config: &SandboxConfig) -> Limits {
    Limits {
        pids_max: config.pids_max(),
        memory_max: config.memory_max(),
        nproc: config.rlimit_nproc(),
        nofile: config.rlimit_nofile(),
    }
}

/// The configuration with exactly `layers` on, keeping `extra_caps` on top of the profile's
/// kept capabilities. The runtime's own validation decides whether it can start.
pub fn with_variant(
    base: &SandboxConfig,
    layers: &BTreeSet<Layer>,
    extra_caps: &BTreeSet<String>,
) -> Result<SandboxConfig, String> {
    let mut config = base.clone();
    for layer in Layer::ALL {
        config.set_enabled(layer, layers.contains(&layer));
    }
    for cap in extra_caps {
        config.keep_cap(cap).map_err(|e| e.to_string())?;
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

/// The capabilities the profile does not keep (what the caps drill-down may add back), by name,
/// in the kernel's order.
pub fn dropped_caps(config: &SandboxConfig) -> Vec<String> {
    let kept: BTreeSet<String> = config
        .caps
        .keep
        .iter()
        .filter_map(|c| breakout_runtime::config::canonical_cap(c))
        .collect();
    let mut all: Vec<caps::Capability> = caps::all().into_iter().collect();
    all.sort_by_key(|c| c.index());
    all.into_iter()
        .map(|c| c.to_string())
        .filter(|name| !kept.contains(name))
        .collect()
}

/// The layers the runtime needs on for `layer` to work.
pub fn requires(layer: Layer) -> Vec<Layer> {
    breakout_runtime::requires(layer).to_vec()
}

/// The text that identifies what a configuration runs, for reusing a launch's record: labels
/// (name, description) and the settings of layers that are off do not change what runs, so
/// "pid-ns alone" asked by two profiles is one launch.
pub fn identity(config: &SandboxConfig) -> String {
    serde_json::to_string(&config.in_effect()).expect("configurations serialize")
}

/// A configuration as it arrives in the guest, made ready to run and to compare: every layer
/// switched explicitly (so equal configurations serialize equally), and the seccomp profile loaded
/// again from its name or path (the loaded filter does not travel in the plan file).
pub fn prepare(mut config: SandboxConfig) -> Result<SandboxConfig, String> {
    for layer in Layer::ALL {
        let on = config.enabled(layer);
        config.set_enabled(layer, on);
    }
    if !config.seccomp.profile.is_empty() {
        let spec = config.seccomp.profile.clone();
        config
            .set_seccomp_profile(&spec)
            .map_err(|e| format!("seccomp profile `{spec}`: {e}"))?;
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

#[cfg(test)]
mod tests {

    use super::*;
    use breakout_runtime::ExitKind;
    use std::time::{Duration, Instant};

    fn request(argv: &[&str], timeout: Duration) -> LaunchRequest {
        LaunchRequest {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            cgroup: None,
            timeout,
            controlling_tty: None,
            stdin: None,
        }
    }

    fn none() -> SandboxConfig {
        prepare(SandboxConfig::builtin("none").unwrap()).unwrap()
    }

    #[test]
    fn output_and_status_come_back() {
        let launcher = RuntimeLauncher::new(none());
        let launched = launcher
            .launch(&request(
                &["/bin/sh", "-c", "echo out; echo err >&2; exit 3"],
                Duration::from_secs(20),
            ))
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&launched.stdout), "out\n");
        assert_eq!(String::from_utf8_lossy(&launched.stderr), "err\n");
        assert!(!launched.timed_out);
        assert_eq!(
            launched.outcome.unwrap().status,
            ExitKind::Exited { code: 3 }
        );
    }

    #[test]
    fn the_timeout_kills_the_payload() {
        let launcher = RuntimeLauncher::new(none());
        let start = Instant::now();
        let launched = launcher
            .launch(&request(&["/bin/sleep", "30"], Duration::from_millis(300)))
            .unwrap();
        assert!(launched.timed_out);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "took {:?}",
            start.elapsed()
        );
        assert!(matches!(
            launched.outcome.unwrap().status,
            ExitKind::Signaled { .. }
        ));
    }

    #[test]
    fn variants_switch_exactly_the_given_layers_and_keep_extra_caps() {
        let strict = prepare(SandboxConfig::builtin("strict").unwrap()).unwrap();
        let layers: BTreeSet<Layer> = [Layer::Caps].into();
        let caps: BTreeSet<String> = ["CAP_SYS_PTRACE".to_string()].into();
        let v = with_variant(&strict, &layers, &caps).unwrap();
        assert_eq!(v.enabled_layers(), layers);
        assert!(v.caps.keep.contains(&"CAP_SYS_PTRACE".to_string()));
        assert!(!dropped_caps(&v).contains(&"CAP_SYS_PTRACE".to_string()));
        assert!(dropped_caps(&strict).contains(&"CAP_SYS_PTRACE".to_string()));
        let bad: BTreeSet<String> = ["CAP_NOT_A_CAP".to_string()].into();
        assert!(with_variant(&strict, &layers, &bad)
            .unwrap_err()
            .contains("CAP_NOT_A_CAP"));
    }

    #[test]
    fn identity_ignores_labels_and_settings_of_layers_that_are_off() {
        let strict = prepare(SandboxConfig::builtin("strict").unwrap()).unwrap();
        let docker = prepare(SandboxConfig::builtin("docker-default").unwrap()).unwrap();
        let pid_ns: BTreeSet<Layer> = [Layer::PidNs].into();
        let a = with_variant(&strict, &pid_ns, &BTreeSet::new()).unwrap();
        let b = with_variant(&docker, &pid_ns, &BTreeSet::new()).unwrap();
        // With only pid-ns on, nothing else of the two profiles is used (rootless aside).
        assert_eq!(identity(&a) == identity(&b), a.rootless == b.rootless);
        assert_ne!(identity(&strict), identity(&docker));
        let mut renamed = strict.clone();
        renamed.name = "other".to_string();
        assert_eq!(identity(&renamed), identity(&strict));
    }

    #[test]
    fn prepared_configurations_compare_equal_after_a_round_trip() {
        let strict = prepare(SandboxConfig::builtin("strict").unwrap()).unwrap();
        let json = serde_json::to_string(&strict).unwrap();
        let back = prepare(serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        assert_eq!(
            back.seccomp_denies("keyctl"),
            strict.seccomp_denies("keyctl")
        );
    }
}
