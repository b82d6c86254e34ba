//! The child's setup chain, built in the parent: one flat ordered list that reads like the list
//! of layers. Everything before `Fork` runs in the supervisor (it creates the namespaces the
//! payload will live in), everything after in the payload process, ending in execve.

use crate::config::SandboxConfig;
use crate::layer::Layer;
use crate::layers::cgroup_limits::CgroupHandle;
use crate::layers::mount::{MountContext, MountError};
use crate::layers::user_ns::IdPlan;
use crate::layers::{
    caps, fd_hygiene, fs_hardening, landlock, mount, namespaces, net, nnp, rlimits, seccomp,
    session, uid, user_ns,
};
use crate::seccomp::{Resolved, SeccompError};
use crate::step::{cstr, Exec, Op, Step};
use std::ffi::CString;
use std::os::fd::RawFd;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
}

/// The descriptors and payload details the chain needs, prepared by the parent.
pub struct PlanInput<'a> {
    /// The runtime's pid (the supervisor dies with it).
    pub parent: libc::pid_t,
    /// The runtime runs as root; a `rootless` sandbox started by an unprivileged user is already
    /// unprivileged and skips the drop.
    pub caller_is_root: bool,
    /// Descriptors (close-on-exec, >= 3) that become the payload's 0, 1, 2.
    pub stdio: [RawFd; 3],
    /// The caller's terminal to adopt as controlling terminal before any layer.
    pub controlling_tty: Option<RawFd>,
    /// The runtime-owned pty's slave side (`--tty`) and its path.
    pub pty_slave: Option<RawFd>,
    pub pty_name: Option<std::path::PathBuf>,
    pub cgroup: Option<&'a CgroupHandle>,
    pub ids: &'a IdPlan,
    pub exec: Exec,
    /// The payload's working directory, when one is set.
    pub cwd: Option<CString>,
    /// How long the payload waits for the parent's record after the fork (`Op::AwaitPrepared`).
    pub prepared_timeout: Duration,
}

/// The payload's wait for the parent's record after the fork: long enough for any compile on a
/// loaded machine (milliseconds normally); it only bounds a wait that should never end otherwise.
pub const PREPARED_TIMEOUT: Duration = Duration::from_secs(60);

/// The chain, and the work the parent does after the fork while the child sets up.
pub struct Plan {
    pub steps: Vec<Step>,
    /// The seccomp policy to compile after the fork (this process has not compiled it yet); the
    /// program goes to the child in the prepared record.
    pub compile: Option<Resolved>,
    /// fs-hardening's device program is to be attached to the leaf after the fork.
    pub devices: bool,
}

impl Plan {
    /// Whether the parent owes the child the prepared record.
    pub fn sends_prepared(&self) -> bool {
        self.compile.is_some() || self.devices
    }
}

/// The whole chain, in order.
pub fn build(cfg: &SandboxConfig, input: PlanInput<'_>) -> Result<Plan, PlanError> {
    let on = |l: Layer| cfg.enabled(l);
    let mut s: Vec<Step> = Vec::new();

    // --- supervisor: runtime plumbing, then the layers that create the payload's world ---
    s.push(Step::new(
        None,
        "sigprocmask/sigaction (reset signals)",
        Op::ResetSignals,
    ));
    for (to, from) in input.stdio.iter().enumerate() {
        s.push(Step::new(
            None,
            format!("dup2({from}, {to})"),
            Op::Dup2 {
                from: *from,
                to: to as RawFd,
            },
        ));
    }
    // Rootless started by root drops to the outside user: that process must hold nothing of the
    // caller's (descriptors, session, terminal) and never be dumpable (the parent writes its
    // maps), or a process of that user could attach in between (CVE-2016-9962 class).
    let drop_to_outside_user = cfg.rootless && input.caller_is_root;
    if let Some(tty) = input.controlling_tty {
        if drop_to_outside_user {
            s.push(Step::new(
                None,
                format!("dup2({tty}, 0) (caller's terminal, not adopted: rootless)"),
                Op::Dup2 { from: tty, to: 0 },
            ));
        } else {
            s.extend(session::adopt_controlling_tty(tty));
        }
    }
    s.push(session::die_with_parent(input.parent));
    if let Some(cg) = input.cgroup {
        s.push(cg.join_step());
    }
    s.push(session::close_runtime_fds(
        input.pty_slave.into_iter().collect(),
    ));
    if cfg.rootless {
        if drop_to_outside_user {
            s.push(session::not_dumpable());
            s.push(session::leave_callers_session());
            s.extend(uid::become_unprivileged(input.ids));
            // A uid change sets dumpable to fs.suid_dumpable, which may be 1.
            s.push(session::not_dumpable());
            s.push(session::die_with_parent(input.parent));
        }
        if input.ids.self_map {
            s.push(uid::dumpable_for_self_map());
        }
    } else if on(Layer::Uid) {
        s.extend(uid::clear_groups());
    }
    if on(Layer::UserNs) {
        // Not dumpable before the new user namespace: from unshare(CLONE_NEWUSER) until the
        // switch to inside root this process is the host's uid 0 with every capability in a
        // namespace the host's uid 0 owns, so any uid-0 process of the initial namespace (a
        // root payload of another sandbox with pid-ns off, whatever capabilities it lacks)
        // passed ptrace_may_access and opened its /proc/PID/root, exe and cwd: the host's
        // filesystem as root. Rootless started by root is not dumpable already; a rootless
        // sandbox that maps itself must be, and holds only its user's own.
        if !drop_to_outside_user && !input.ids.self_map {
            s.push(session::not_dumpable());
        }
        s.extend(user_ns::steps(input.ids));
        // Becoming inside root is a credential change, which clears the parent-death signal.
        s.push(session::die_with_parent(input.parent));
    }
    s.push(session::not_dumpable());
    s.extend(namespaces::steps(cfg));
    if on(Layer::NetNs) {
        s.extend(net::steps());
    }
    if on(Layer::UtsNs) {
        s.extend(namespaces::hostname(cfg));
    }
    s.push(Step::new(None, "fork() (payload)", Op::Fork));

    // --- payload: its filesystem, limits, session, then the privilege cuts, then execve ---
    s.push(session::die_with_parent(0));
    if on(Layer::MountNs) {
        let ctx = MountContext {
            pid_ns: on(Layer::PidNs),
            user_ns: on(Layer::UserNs),
            harden: on(Layer::FsHardening),
            net_ns: on(Layer::NetNs),
            console: input.pty_name.clone(),
        };
        s.extend(mount::steps(cfg, &ctx)?);
    }
    if on(Layer::FsHardening) {
        s.extend(fs_hardening::steps(cfg));
    }
    if on(Layer::Rlimits) {
        s.extend(rlimits::steps(cfg));
    }
    if let Some(pty) = input.pty_slave {
        for to in 0..3 {
            s.push(Step::new(
                None,
                format!("dup2({pty}, {to}) (runtime pty)"),
                Op::Dup2 { from: pty, to },
            ));
        }
    }
    s.extend(session::steps(on(Layer::NewSession), input.pty_slave));
    if on(Layer::NoNewPrivs) {
        s.extend(nnp::steps());
    }
    if on(Layer::Landlock) {
        s.extend(landlock::steps(cfg, input.cwd.as_ref()));
    }
    let (seccomp_steps, compile) = if cfg.records_syscalls() {
        (seccomp::record_steps(), None)
    } else if on(Layer::Seccomp) {
        seccomp::steps(cfg)?
    } else {
        (Vec::new(), None)
    };
    // What the parent prepares after the fork is waited for here, as late as it can be: right
    // before the filter is loaded, and before anything of the payload's runs. The steps before
    // open no device node (the mounts bind /dev nodes through O_PATH descriptors, which the
    // device program is not asked about, and every other open is of a directory or a regular
    // file), so the device program attached meanwhile governs every device the payload opens.
    let devices = input.cgroup.is_some_and(CgroupHandle::device_policy);
    if compile.is_some() || devices {
        let what = match (compile.is_some(), devices) {
            (true, true) => "the seccomp program, the device program attached",
            (true, false) => "the seccomp program",
            _ => "the device program attached",
        };
        s.push(Step::new(
            None,
            format!("recv(the parent's record after the fork: {what})"),
            Op::AwaitPrepared {
                program: compile.is_some(),
                timeout_ms: u32::try_from(input.prepared_timeout.as_millis()).unwrap_or(u32::MAX),
            },
        ));
    }
    s.extend(seccomp_steps);
    let keep = cfg.effective_caps();
    if on(Layer::Caps) {
        s.extend(caps::bounding(&keep));
    }
    // The uid the payload ends up with: inside ids with user-ns on, else the range's outside ids.
    let target = on(Layer::Uid).then(|| {
        if on(Layer::UserNs) {
            (input.ids.inside_uid, input.ids.inside_gid)
        } else {
            (input.ids.outside_uid, input.ids.outside_gid)
        }
    });
    let payload_is_root = target.is_none_or(|(u, _)| u == 0);
    if let Some((u, g)) = target {
        s.extend(uid::switch(u, g));
    }
    if on(Layer::Caps) {
        s.extend(caps::sets(&keep, payload_is_root));
    }
    if on(Layer::Uid) || on(Layer::Caps) {
        // A credential change clears the parent-death signal and sets dumpable to
        // fs.suid_dumpable; this process is still a copy of the runtime until execve.
        s.push(session::die_with_parent(0));
        s.push(session::not_dumpable());
    }
    if let Some(cwd) = input.cwd {
        let shown = cwd.to_string_lossy().into_owned();
        s.push(Step::new(None, format!("chdir({shown:?})"), Op::Chdir(cwd)));
    }
    if on(Layer::FdHygiene) {
        s.extend(fd_hygiene::steps());
    }
    // Every privilege cut read back: a step that "succeeded" without effect (a seccomp rule
    // answering 0) fails the setup here, naming its layer, instead of running the payload.
    if let Some((u, g)) = target {
        s.push(uid::verify(u, g));
    }
    if on(Layer::Caps) {
        s.push(caps::verify(&keep, payload_is_root));
    }
    if on(Layer::NoNewPrivs) {
        s.push(nnp::verify());
    }
    // Nothing between here and execve changes a disposition or the mask.
    s.push(Step::new(
        None,
        "sigprocmask/sigaction (reset signals before execve)",
        Op::ResetSignals,
    ));
    if cfg.records_syscalls() {
        s.push(seccomp::marker_step());
    }
    let shown = input
        .exec
        .argv
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    s.push(Step::new(
        None,
        format!("execve({shown:?})"),
        Op::Exec(input.exec),
    ));
    #[cfg(feature = "layer-mutants")]
    crate::mutant::disable_named_layer(&mut s);
    Ok(Plan {
        steps: s,
        compile,
        devices,
    })
}

/// The execve of the payload: PATH search unrolled into candidate paths, run inside the sandbox.
pub fn exec_for(argv: &[CString], env: &[CString]) -> Exec {
    let first = argv.first().cloned().unwrap_or_default();
    let candidates = if first.as_bytes().contains(&b'/') {
        vec![first]
    } else {
        let path = env
            .iter()
            .find_map(|e| e.to_bytes().strip_prefix(b"PATH="))
            .map(|p| p.to_vec())
            .unwrap_or_else(|| DEFAULT_PATH.as_bytes().to_vec());
        path.split(|b| *b == b':')
            .map(|dir| if dir.is_empty() { b".".as_slice() } else { dir })
            .map(|dir| {
                let mut p = dir.to_vec();
                p.push(b'/');
                p.extend_from_slice(first.as_bytes());
                cstr(p)
            })
            .collect()
    };
    Exec::new(candidates, argv.to_vec(), env.to_vec())
}

/// PATH when the payload's environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::user_ns::id_plan;

    fn chain(cfg: &SandboxConfig) -> Vec<Step> {
        plan_with(cfg, None).steps
    }

    /// Owners of the steps, consecutive duplicates folded: the chain "reads like the list". The
    /// wait for the parent's record is left out: whether there is one depends on this process's
    /// compile cache (`the_wait_for_the_parent_*` test its place).
    fn owners(steps: &[Step]) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for s in steps
            .iter()
            .filter(|s| !matches!(s.op, Op::AwaitPrepared { .. }))
        {
            let o = if s.is_fork() {
                "FORK".to_string()
            } else {
                s.owner().to_string()
            };
            if v.last() != Some(&o) {
                v.push(o);
            }
        }
        v
    }

    fn pos(steps: &[Step], pred: impl Fn(&Step) -> bool) -> usize {
        steps.iter().position(pred).expect("step present")
    }

    #[test]
    fn strict_chain_order() {
        let mut cfg = SandboxConfig::builtin("strict").unwrap();
        cfg.set_enabled(Layer::CgroupLimits, false);
        let s = chain(&cfg);
        assert_eq!(
            owners(&s),
            [
                "runtime",
                "uid",
                "runtime",
                "user-ns",
                "runtime",
                "pid-ns",
                "mount-ns",
                "net-ns",
                "ipc-ns",
                "uts-ns",
                "cgroup-ns",
                "net-ns",
                "uts-ns",
                "FORK",
                "runtime",
                "mount-ns",
                "fs-hardening",
                "rlimits",
                "new-session",
                "no-new-privs",
                "landlock",
                "seccomp",
                "caps",
                "uid",
                "caps",
                "runtime",
                "fd-hygiene",
                "uid",
                "caps",
                "no-new-privs",
                "runtime"
            ]
        );
        assert!(s.last().unwrap().is_exec());
    }

    #[test]
    fn privilege_cuts_come_in_a_safe_order() {
        let mut cfg = SandboxConfig::builtin("strict").unwrap();
        cfg.set_enabled(Layer::CgroupLimits, false);
        let s = chain(&cfg);
        let call = |c: &str| pos(&s, |x| x.call.starts_with(c));
        // Groups cleared while still privileged, before the user namespace.
        assert!(call("setgroups") < call("unshare(CLONE_NEWUSER)"));
        // The user namespace first: the other namespaces are owned by it.
        assert!(call("unshare(CLONE_NEWUSER)") < call("unshare(CLONE_NEWPID)"));
        // The new root is built by the payload process (inside the new pid namespace).
        assert!(pos(&s, Step::is_fork) < call("pivot_root"));
        // Seccomp while CAP_SYS_ADMIN is still held (works without no-new-privs), before the
        // bounding set is cut, which comes before the uid switch (needs CAP_SETPCAP).
        assert!(call("seccomp(") < call("prctl(PR_CAPBSET_DROP)"));
        // Landlock after the last mount (a domain may not mount), while CAP_SYS_ADMIN is held
        // (restrict_self then needs no no-new-privs).
        let last_mount = s
            .iter()
            .rposition(|x| matches!(x.layer, Some(Layer::MountNs | Layer::FsHardening)))
            .unwrap();
        assert!(last_mount < call("landlock_restrict_self"));
        assert!(call("landlock_restrict_self") < call("prctl(PR_CAPBSET_DROP)"));
        assert!(call("prctl(PR_CAPBSET_DROP)") < call("setresuid(1000"));
        assert!(call("setresgid(1000") < call("setresuid(1000"));
        assert!(call("setresuid(1000") < call("capset("));
        // Inside root right after the maps: the creator's host root is not mapped.
        assert!(call("setresuid(0, 0, 0) (inside root)") < pos(&s, Step::is_fork));
        // Descriptors closed last before execve.
        assert!(call("close_range") > call("capset("));
        assert_eq!(s.iter().filter(|x| x.is_fork()).count(), 1);
    }

    /// The supervisor is never dumpable inside its new user namespace: a not-dumpable step
    /// comes before unshare(CLONE_NEWUSER) in every builtin profile and with any one layer of
    /// strict switched off. (Found by an attacker review: in the window between the unshare
    /// and the switch to inside root, a root payload of a `docker-default --disable pid-ns`
    /// sandbox opened a `namespaces` supervisor's /proc/PID/root and appended to the runtime
    /// binary through it.)
    #[test]
    fn the_supervisor_is_not_dumpable_when_it_enters_its_user_namespace() {
        let mut configs: Vec<(String, SandboxConfig)> = crate::config::builtin_names()
            .iter()
            .map(|n| (n.to_string(), SandboxConfig::builtin(n).unwrap()))
            .collect();
        for layer in Layer::ALL {
            let mut cfg = SandboxConfig::builtin("strict").unwrap();
            cfg.set_enabled(layer, false);
            configs.push((format!("strict without {layer}"), cfg));
        }
        for (name, cfg) in &configs {
            let s = chain(cfg);
            let Some(unshare) = s.iter().position(|x| x.call == "unshare(CLONE_NEWUSER)") else {
                continue;
            };
            let calls: Vec<&str> = s.iter().map(|x| x.call.as_str()).collect();
            assert!(
                s[..unshare].iter().any(|x| matches!(x.op, Op::NotDumpable)),
                "{name}: {calls:?}"
            );
            assert!(
                !s[..unshare].iter().any(|x| matches!(x.op, Op::Dumpable)),
                "{name}: {calls:?}"
            );
        }
    }

    /// fs.suid_dumpable=1 re-arms the dumpable flag at every uid or gid change: a chain with one
    /// is refused there (found by an attacker review), one without is not, and 0 and 2 are
    /// fine for every chain.
    #[test]
    fn a_host_with_suid_dumpable_1_refuses_a_chain_that_changes_ids() {
        use crate::layers::session::suid_dumpable_refusal;
        for name in crate::config::builtin_names() {
            let s = chain(&SandboxConfig::builtin(name).unwrap());
            let changes_ids = s
                .iter()
                .any(|x| matches!(x.op, Op::SetResGid(_) | Op::SetResUid(_)));
            let refusal = suid_dumpable_refusal(&s, Some(1));
            assert_eq!(refusal.is_some(), changes_ids, "{name}: {refusal:?}");
            for fine in [None, Some(0), Some(2)] {
                assert_eq!(
                    suid_dumpable_refusal(&s, fine),
                    None,
                    "{name} with {fine:?}"
                );
            }
        }
        for (name, refused) in [
            ("strict", true),
            ("namespaces", true),
            ("rootless", true),
            ("none", false),
            ("docker-default", false),
        ] {
            let s = chain(&SandboxConfig::builtin(name).unwrap());
            let refusal = suid_dumpable_refusal(&s, Some(1));
            assert_eq!(refusal.is_some(), refused, "{name}");
            if let Some(why) = refusal {
                assert!(
                    why.contains("fs.suid_dumpable is 1") && why.contains("setresgid("),
                    "{why}"
                );
            }
        }
    }

    #[test]
    fn none_is_just_plumbing_and_exec() {
        let s = chain(&SandboxConfig::builtin("none").unwrap());
        assert!(
            s.iter().all(|x| x.layer.is_none()),
            "{:?}",
            s.iter().map(|x| &x.call).collect::<Vec<_>>()
        );
    }

    #[test]
    fn each_layer_alone_adds_only_its_own_steps() {
        for layer in Layer::ALL {
            if layer == Layer::CgroupLimits || !crate::layer::requires(layer).is_empty() {
                continue; // cgroup steps come from a prepared handle; fs-hardening needs mount-ns
            }
            let mut cfg = SandboxConfig::builtin("none").unwrap();
            cfg.set_enabled(layer, true);
            if layer == Layer::Seccomp {
                cfg.set_seccomp_profile("strict").unwrap();
            }
            if layer == Layer::Rlimits {
                cfg.rlimits.insert("nofile".into(), 64);
            }
            let s = chain(&cfg);
            let layers: BTreeSet<Layer> = s.iter().filter_map(|x| x.layer).collect();
            assert_eq!(layers, [layer].into_iter().collect(), "{layer}");
        }
    }

    #[test]
    fn rootless_drops_to_outside_user_before_the_user_namespace() {
        let cfg = SandboxConfig::builtin("rootless").unwrap();
        let s = chain(&cfg);
        let call = |c: &str| pos(&s, |x| x.call.starts_with(c));
        let drop = call("setresuid(101000");
        assert!(drop < call("unshare(CLONE_NEWUSER)"));
        // Nothing of the caller's is held and its session is left before the drop; the process
        // is never dumpable: root writes the maps.
        assert!(call("close the runtime's") < drop);
        assert!(call("setsid() (leave the caller's session") < drop);
        assert!(call("prctl(PR_SET_DUMPABLE, 0)") < drop);
        assert_eq!(call("prctl(PR_SET_DUMPABLE, 0)"), drop - 4);
        assert!(matches!(s[drop + 1].op, Op::NotDumpable));
        assert!(!s.iter().any(|x| matches!(x.op, Op::Dumpable)));
        assert!(s.iter().any(|x| x.call.contains("uid_map \"0 101000 1\"")));
    }

    #[test]
    fn rootless_started_by_a_user_maps_itself() {
        let cfg = SandboxConfig::builtin("rootless").unwrap();
        let mut ids = id_plan(&cfg);
        ids.self_map = true;
        let argv = vec![cstr("true")];
        let s = build(
            &cfg,
            PlanInput {
                parent: 1,
                caller_is_root: false,
                stdio: [10, 11, 12],
                controlling_tty: None,
                pty_slave: None,
                pty_name: None,
                cgroup: None,
                ids: &ids,
                exec: exec_for(&argv, &[]),
                cwd: None,
                prepared_timeout: PREPARED_TIMEOUT,
            },
        )
        .unwrap()
        .steps;
        assert!(!s.iter().any(|x| x.call.starts_with("setresuid(101000")));
        assert!(s
            .iter()
            .any(|x| x.call.starts_with("write(/proc/self/uid_map")));
    }

    /// The checks come after the last privilege step and right before execve, each under the
    /// layer whose promise it checks.
    #[test]
    fn privilege_checks_come_last_before_execve() {
        let mut cfg = SandboxConfig::builtin("strict").unwrap();
        cfg.set_enabled(Layer::CgroupLimits, false);
        let s = chain(&cfg);
        let n = s.len();
        let verify: Vec<(usize, Option<Layer>)> = s
            .iter()
            .enumerate()
            .filter(|(_, x)| {
                matches!(
                    x.op,
                    Op::VerifyIds { .. } | Op::VerifyCaps { .. } | Op::VerifyNoNewPrivs
                )
            })
            .map(|(i, x)| (i, x.layer))
            .collect();
        assert_eq!(
            verify,
            [
                (n - 5, Some(Layer::Uid)),
                (n - 4, Some(Layer::Caps)),
                (n - 3, Some(Layer::NoNewPrivs))
            ]
        );
        assert!(matches!(s[n - 2].op, Op::ResetSignals));
        assert!(s[n - 1].is_exec());
        let last_cut = s
            .iter()
            .rposition(|x| {
                matches!(
                    x.op,
                    Op::SetResUid(_)
                        | Op::SetCaps { .. }
                        | Op::DropBounding(_)
                        | Op::NoNewPrivs
                        | Op::Seccomp(_)
                        | Op::AwaitPrepared { .. }
                        | Op::CloseFrom { .. }
                )
            })
            .unwrap();
        assert!(last_cut < n - 5);
        // strict's payload is inside uid 1000: nothing effective, permitted or inheritable.
        assert!(matches!(
            s[n - 4].op,
            Op::VerifyCaps {
                eff_prm: 0,
                bounding: 0
            }
        ));
        assert!(matches!(
            s[n - 5].op,
            Op::VerifyIds {
                uid: 1000,
                gid: 1000
            }
        ));
    }

    #[test]
    fn uid_without_user_ns_switches_to_the_ranges_outside_id() {
        let mut cfg = SandboxConfig::builtin("none").unwrap();
        cfg.set_enabled(Layer::Uid, true);
        let s = chain(&cfg);
        assert!(s
            .iter()
            .any(|x| x.call == "setresuid(101000, 101000, 101000)"));
        assert!(s.iter().any(|x| matches!(
            x.op,
            Op::VerifyIds {
                uid: 101000,
                gid: 101000
            }
        )));
    }

    fn plan_with(cfg: &SandboxConfig, cgroup: Option<&CgroupHandle>) -> Plan {
        let ids = id_plan(cfg);
        let argv = vec![cstr("true")];
        let env = vec![cstr("PATH=/bin")];
        build(
            cfg,
            PlanInput {
                parent: 1,
                caller_is_root: true,
                stdio: [10, 11, 12],
                controlling_tty: None,
                pty_slave: None,
                pty_name: None,
                cgroup,
                ids: &ids,
                exec: exec_for(&argv, &env),
                cwd: Some(cstr("/")),
                prepared_timeout: PREPARED_TIMEOUT,
            },
        )
        .unwrap()
    }

    /// strict without cgroup-limits, its seccomp policy at a path of its own: never compiled in
    /// this process before, so the plan leaves the compile to after the fork.
    fn strict_uncached(dir: &std::path::Path) -> SandboxConfig {
        let mut cfg = SandboxConfig::builtin("strict").unwrap();
        cfg.set_enabled(Layer::CgroupLimits, false);
        let path = dir.join("plan-test.toml");
        std::fs::write(
            &path,
            "default_action = \"errno\"\n[[rule]]\naction = \"allow\"\nnames = [\"read\"]\n",
        )
        .unwrap();
        cfg.set_seccomp_profile(path.to_str().unwrap()).unwrap();
        cfg
    }

    fn waits(s: &[Step]) -> Vec<(usize, bool)> {
        s.iter()
            .enumerate()
            .filter_map(|(i, x)| match x.op {
                Op::AwaitPrepared { program, .. } => Some((i, program)),
                _ => None,
            })
            .collect()
    }

    /// The last step that makes the payload's world: a namespace, its maps, loopback, hostname.
    fn last_namespace_step(s: &[Step]) -> usize {
        s.iter()
            .rposition(|x| {
                matches!(
                    x.op,
                    Op::Unshare(_) | Op::AwaitIdMaps | Op::LoopbackUp | Op::SetHostname(_)
                )
            })
            .unwrap()
    }

    /// The parent compiles and attaches while the child creates its namespaces and builds its
    /// root; the payload waits right before the filter is loaded, long before execve.
    #[test]
    fn the_wait_for_the_parent_comes_after_the_namespaces_and_right_before_seccomp() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = strict_uncached(dir.path());
        let devices = CgroupHandle::for_plan_tests(true);
        let p = plan_with(&cfg, Some(&devices));
        assert!(p.compile.is_some() && p.devices && p.sends_prepared());
        let s = &p.steps;
        let [(wait, true)] = waits(s)[..] else {
            panic!("one wait for a program: {:?}", waits(s));
        };
        assert!(last_namespace_step(s) < pos(s, Step::is_fork));
        assert!(pos(s, Step::is_fork) < wait);
        let landlock = pos(s, |x| x.layer == Some(Layer::Landlock));
        assert!(landlock < wait);
        assert!(matches!(s[wait + 1].op, Op::Seccomp(None)));
        assert!(wait < pos(s, Step::is_exec));

        // Compiled once in this process: the step carries the program; the wait stays for the
        // device program, at the same place, and expects no program.
        cfg.seccomp_profile()
            .unwrap()
            .resolve(&crate::seccomp::ResolveContext::native(
                cfg.effective_caps(),
            ))
            .compile()
            .unwrap();
        let p = plan_with(&cfg, Some(&devices));
        assert!(p.compile.is_none() && p.devices);
        let [(wait, false)] = waits(&p.steps)[..] else {
            panic!("one wait, no program: {:?}", waits(&p.steps));
        };
        assert!(matches!(p.steps[wait + 1].op, Op::Seccomp(Some(_))));
        // Nothing owed at all: no wait.
        let p = plan_with(&cfg, None);
        assert!(!p.sends_prepared() && waits(&p.steps).is_empty());
    }

    /// seccomp off, the device policy on: the payload still waits for the program on its leaf
    /// before execve (and after the namespaces and its root are made).
    #[test]
    fn the_wait_for_the_device_program_comes_before_exec_without_seccomp() {
        let mut cfg = SandboxConfig::builtin("strict").unwrap();
        cfg.set_enabled(Layer::CgroupLimits, false);
        cfg.set_enabled(Layer::Seccomp, false);
        let devices = CgroupHandle::for_plan_tests(true);
        let p = plan_with(&cfg, Some(&devices));
        assert!(p.compile.is_none() && p.devices);
        let s = &p.steps;
        let [(wait, false)] = waits(s)[..] else {
            panic!("one wait, no program: {:?}", waits(s));
        };
        assert!(!s.iter().any(|x| matches!(x.op, Op::Seccomp(_))));
        assert!(last_namespace_step(s) < pos(s, Step::is_fork));
        assert!(pos(s, Step::is_fork) < wait);
        let last_mount = s
            .iter()
            .rposition(|x| matches!(x.layer, Some(Layer::MountNs | Layer::FsHardening)))
            .unwrap();
        assert!(last_mount < wait);
        assert!(wait < pos(s, Step::is_exec));
        // Without the device policy and seccomp nothing is owed.
        let p = plan_with(&cfg, Some(&CgroupHandle::for_plan_tests(false)));
        assert!(waits(&p.steps).is_empty());
    }

    #[test]
    fn path_search_is_unrolled_and_paths_are_taken_as_given() {
        let e = exec_for(&[cstr("sh")], &[cstr("PATH=/usr/bin:/bin")]);
        assert_eq!(e.candidates(), [cstr("/usr/bin/sh"), cstr("/bin/sh")]);
        let e = exec_for(&[cstr("./x")], &[]);
        assert_eq!(e.candidates(), [cstr("./x")]);
        let e = exec_for(&[cstr("x")], &[]);
        assert_eq!(e.candidates().len(), DEFAULT_PATH.split(':').count());
    }

    use std::collections::BTreeSet;
}
