//! setuid-gain: after dropping to uid 1000, exec a setuid-root helper and use its euid 0.

use crate::kit::{judge_secret, with_args, wrong_state};
use crate::world::{write_new_file, Planted, World, SANDBOX_INSIDE_UID};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation,
};
use nix::unistd::{Gid, Uid};
use std::os::unix::fs::PermissionsExt;

pub struct SetuidGain;

/// The action of the note the inside leaves when it could not become uid 1000 first.
const NO_DROP: &str = "could not become uid 1000";

/// The hidden mode of `breakout-probe` the planted setuid copy runs in.
pub const HELPER_FLAG: &str = "--setuid-helper";

static META: ProbeMeta = ProbeMeta {
    id: "setuid-gain",
    title: "gain root through a setuid binary",
    technique: "A setuid-root program runs with euid 0 whoever starts it, which is how `su` and \
        `passwd` work and how a compromised unprivileged process regains root. The outside \
        plants a setuid-root helper and a root-only (0400) secret in a directory the sandbox \
        sees; the payload drops to uid 1000, then execs the helper, which reads the secret with \
        its euid 0. no_new_privs makes exec ignore the setuid bit; a nosuid mount, or a user \
        namespace in which root is unmapped, do too.",
    oracle: "The per-attempt secret, readable only by euid 0, appears in the payload's report \
        (read by the helper after the payload had dropped to uid 1000).",
    layers: &[
        Layer::NoNewPrivs,
        Layer::FsHardening,
        Layer::UserNs,
        Layer::Seccomp,
        // Landlock lets the payload execute only beneath the sandbox's read-only binds.
        Layer::Landlock,
    ],
    references: &[
        "kernel seccomp selftests (no_new_privs)",
        "prctl(2) PR_SET_NO_NEW_PRIVS",
        "mount(8) nosuid",
    ],
    class: ProbeClass::Plain,
};

struct State {
    secret: String,
    _dir: Planted,
}

/// `breakout-probe --setuid-helper FILE`: prints `euid=N` and the file's content.
pub fn run_setuid_helper(args: &[String]) -> i32 {
    let [file] = args else {
        eprintln!("breakout-probe {HELPER_FLAG}: expected one argument, the file to read");
        return 2;
    };
    println!("euid={}", nix::unistd::geteuid());
    match std::fs::read_to_string(file) {
        Ok(text) => {
            println!("{text}");
            0
        }
        Err(e) => {
            eprintln!("breakout-probe {HELPER_FLAG}: reading {file}: {e}");
            1
        }
    }
}

struct Output(std::process::Output);

impl crate::report::StepValue for Output {
    fn step_value(&self) -> i64 {
        i64::from(self.0.status.code().unwrap_or(-1))
    }
}

impl Probe for SetuidGain {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let secret = world.fresh_secret().map_err(ProbeError::world(META.id))?;
        let dir = world
            .shared_scratch_dir("setuid")
            .map_err(ProbeError::world(META.id))?;
        let helper = dir.path().join("breakout-suid");
        let failed = |step: String| move |e| ProbeError::arrange(META.id, step, e);
        std::fs::copy(world.probe_bin(), &helper).map_err(failed(format!(
            "copying the helper to {}",
            helper.display()
        )))?;
        std::os::unix::fs::chown(&helper, Some(0), Some(0))
            .map_err(failed(format!("chown root {}", helper.display())))?;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o4755))
            .map_err(failed(format!("chmod 04755 {}", helper.display())))?;
        let file = dir.path().join("root-only");
        write_new_file(&file, &secret, 0o400).map_err(ProbeError::world(META.id))?;
        let args = vec![kv("helper", helper.display()), kv("file", file.display())];
        Ok(Arrangement::new(args, State { secret, _dir: dir }))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        with_args(META.id, args, |args, steps| {
            let helper = args.str("helper")?;
            let file = args.str("file")?;
            let (uid, gid) = (
                Uid::from_raw(SANDBOX_INSIDE_UID),
                Gid::from_raw(SANDBOX_INSIDE_UID),
            );
            // A payload the sandbox already made unprivileged (the `uid` layer without a user
            // namespace runs it as an outside id of the range) starts from there: what counts is
            // that no id is root before the exec.
            let unprivileged = |u: Uid, e: Uid| !u.is_root() && !e.is_root();
            if !unprivileged(nix::unistd::getuid(), nix::unistd::geteuid()) {
                // Supplementary groups may stay when this is refused.
                steps.call("drop supplementary groups", "setgroups([])", || {
                    nix::unistd::setgroups(&[])
                });
                steps.call("become gid 1000", "setresgid(1000, 1000, 1000)", || {
                    nix::unistd::setresgid(gid, gid, gid)
                });
                steps.call("become uid 1000", "setresuid(1000, 1000, 1000)", || {
                    nix::unistd::setresuid(uid, uid, uid)
                });
            }
            if !unprivileged(nix::unistd::getuid(), nix::unistd::geteuid()) {
                steps.note(
                    NO_DROP,
                    format!(
                        "uid {} euid {}: a gain could not be told apart",
                        nix::unistd::getuid(),
                        nix::unistd::geteuid()
                    ),
                );
                return Ok(());
            }
            // Expected to fail (EACCES): the secret is root's alone.
            if let Some(text) = steps.io(
                "read the root-only file as uid 1000",
                format!("open+read({file})"),
                || std::fs::read_to_string(file),
            ) {
                steps.data(text);
            }
            let out = steps.io(
                "exec the setuid-root helper",
                format!("execve({helper} {HELPER_FLAG} {file})"),
                || {
                    std::process::Command::new(helper)
                        .arg(HELPER_FLAG)
                        .arg(file)
                        .env_clear()
                        .output()
                        .map(Output)
                },
            );
            if let Some(Output(out)) = out {
                steps.data(format!(
                    "{} / stderr: {}",
                    String::from_utf8_lossy(&out.stdout).trim(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Ok(())
        })
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        let Ok(state) = arrangement.state.downcast::<State>() else {
            return wrong_state(META.id);
        };
        let judgement = judge_secret(run, &state.secret, "root-only file");
        let no_drop = run
            .inside
            .and_then(|r| r.steps.iter().find(|s| s.action == NO_DROP));
        match (judgement.verdict, no_drop) {
            (crate::Verdict::Blocked, Some(step)) => Judgement::inconclusive(format!(
                "the payload could not drop to uid 1000 first ({}); {}",
                step.data.as_deref().unwrap_or(""),
                judgement.reason
            )),
            _ => judgement,
        }
    }
}
