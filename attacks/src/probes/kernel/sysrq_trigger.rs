//! sysrq-trigger: send the kernel a magic SysRq command (only 'h', help).

use crate::kit::{conclude, parse_or_report, scratch_name, Oracle};
use crate::world::{ExclusiveGuard, KmsgCursor, World, EXCLUSIVE_WAIT};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// What the kernel logs for SysRq 'h': "sysrq: HELP : loglevel(0-9) reboot(b) ...".
const HELP_LINE: &str = "HELP : ";

static META: ProbeMeta = ProbeMeta {
    id: "sysrq-trigger",
    title: "Send the kernel a SysRq command",
    technique: "Writing a letter to /proc/sysrq-trigger runs a magic SysRq command: 'c' crashes \
        the machine, 'b' reboots it, 'e' kills every process. The file is root's (mode 0200) \
        and the kernel asks for no capability, so root in a container only needs to reach a \
        writable procfs. The inside writes the harmless 'h' (help) to the /proc it has and, \
        when that fails, to a fresh procfs it mounts itself.",
    oracle: "The SysRq help line appears in the outside's kernel log after the attempt.",
    layers: &[
        Layer::FsHardening,
        Layer::Uid,
        Layer::Caps,
        Layer::UserNs,
        Layer::Seccomp,
        Layer::MountNs,
        Layer::Landlock,
    ],
    references: &[
        "runc tests/integration/mask.bats and no_pivot.bats",
        "Documentation/admin-guide/sysrq.rst",
    ],
    class: ProbeClass::Plain,
};

pub struct SysrqTrigger;

struct State {
    cursor: Mutex<KmsgCursor>,
    /// Another attempt's 'h' would show in our cursor: one attempt at a time.
    _exclusive: ExclusiveGuard,
}

impl Probe for SysrqTrigger {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let exclusive = world
            .exclusive("SysRq output in the kernel log", EXCLUSIVE_WAIT)
            .map_err(ProbeError::world(META.id))?;
        let cursor = KmsgCursor::at_end()
            .map_err(|e| ProbeError::arrange(META.id, "opening /dev/kmsg at its end", e))?;
        Ok(Arrangement::new(
            vec![kv("proc", "/proc"), kv("scratch", "/tmp")],
            State {
                cursor: Mutex::new(cursor),
                _exclusive: exclusive,
            },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        if let Some((proc_dir, scratch)) = parse_or_report(&mut steps, args, |a| {
            Ok((a.str("proc")?.to_string(), a.str("scratch")?.to_string()))
        }) {
            attempt(&mut steps, Path::new(&proc_dir), Path::new(&scratch));
        }
        steps.finish()
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        let Some(state) = arrangement.state::<State>() else {
            return Judgement::inconclusive("sysrq-trigger: arrangement state of the wrong type");
        };
        let new = state
            .cursor
            .lock()
            .map_err(|_| std::io::Error::other("kmsg cursor lock poisoned"))
            .and_then(|mut c| c.read_new());
        let oracle = match new {
            Ok(text) => classify(&text),
            Err(e) => Oracle::Undecided(format!("reading /dev/kmsg failed: {e}")),
        };
        conclude(oracle, run)
    }
}

/// The verdict on the kernel-log records written during the attempt.
fn classify(new_records: &str) -> Oracle {
    match new_records.lines().find(|l| l.contains(HELP_LINE)) {
        Some(line) => Oracle::Hit(format!("the kernel logged the SysRq help: {line:.60}")),
        None => Oracle::Miss("no SysRq help line in the kernel log".to_string()),
    }
}

fn write_h(steps: &mut Steps, trigger: &Path, action: &str) -> bool {
    steps
        .io(
            action,
            format!("write({}, \"h\")", trigger.display()),
            || {
                fs::OpenOptions::new()
                    .write(true)
                    .open(trigger)?
                    .write(b"h")
            },
        )
        .is_some()
}

fn attempt(steps: &mut Steps, proc_dir: &Path, scratch: &Path) {
    if write_h(
        steps,
        &proc_dir.join("sysrq-trigger"),
        "SysRq 'h' through /proc",
    ) {
        return;
    }
    // The /proc we were given is read-only or masked: mount a procfs of our own.
    let dir = scratch.join(scratch_name("breakout-proc"));
    if steps
        .io("a mount point", format!("mkdir({})", dir.display()), || {
            fs::create_dir(&dir)
        })
        .is_none()
    {
        return;
    }
    let mounted = steps
        .call(
            "mount a fresh procfs",
            format!("mount(proc, {}, proc)", dir.display()),
            || {
                mount::<str, Path, str, str>(
                    Some("proc"),
                    &dir,
                    Some("proc"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                    None,
                )
            },
        )
        .is_some();
    if mounted {
        write_h(
            steps,
            &dir.join("sysrq-trigger"),
            "SysRq 'h' through a fresh procfs",
        );
        steps.call(
            "unmount it",
            format!("umount2({}, MNT_DETACH)", dir.display()),
            || umount2(&dir, MntFlags::MNT_DETACH),
        );
    }
    steps.io(
        "remove the mount point",
        format!("rmdir({})", dir.display()),
        || fs::remove_dir(&dir),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_help_line_counts() {
        assert!(matches!(
            classify("x\nsysrq: HELP : loglevel(0-9) reboot(b) crash(c)\n"),
            Oracle::Hit(_)
        ));
        assert!(matches!(classify("sysrq: Show Memory\n"), Oracle::Miss(_)));
        assert!(matches!(classify(""), Oracle::Miss(_)));
    }

    #[test]
    fn bad_arguments_are_reported() {
        let report = SysrqTrigger.attempt(&["proc=/proc".into()]);
        assert_eq!(report.steps[0].action, "parse arguments");
        assert!(report.steps[0].data.as_deref().unwrap().contains("scratch"));
    }
}
