//! Allowlists written from recordings (`breakout learn`): our TOML format (the shape of strict's
//! allowlist) or Docker's JSON. Both allow exactly what was recorded plus what the runtime's
//! own last setup steps call ([`RUNTIME_TAIL`]); everything else fails with EPERM, as in
//! strict. Two calls are written as strict writes them: clone only without namespace flags
//! (unless the command used them), and clone3 answered ENOSYS whenever clone or clone3 was
//! recorded (seccomp cannot read clone3's flags in memory; libc falls back to clone on ENOSYS,
//! never on EPERM), with clone allowed even when only clone3 was recorded.

use super::record::{Call, Recording, CLONE_NAMESPACE_FLAGS, RUNTIME_TAIL};
use std::collections::BTreeSet;
use std::fmt::Write;

/// What a learned profile does with a call that was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Deny {
    /// EPERM, as strict: the program sees an error and may carry on.
    #[default]
    Errno,
    /// Kill the process: the runtime then names the call from the kernel's audit record
    /// (`Outcome::seccomp_kill`), which is what a report of a broken workload wants.
    Kill,
}

/// Why a recording cannot become a profile.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    #[error("the recording is incomplete ({0}): a profile from it could lack calls")]
    Incomplete(String),
    #[error("the recording filter was never installed (the sandbox's setup ended before it)")]
    NotInstalled,
    #[error("the command never started (no marker before execve was seen)")]
    NoMarker,
    #[error("our TOML allowlists cover the native architecture only, and the command called {0}: write Docker's JSON (--format docker)")]
    ForeignArch(String),
    #[error("libseccomp has no name for {0}: no allowlist can name it")]
    Unnamed(String),
}

/// The name sets a profile is written from.
struct Sets {
    /// Allowed unconditionally.
    allow: BTreeSet<String>,
    /// clone allowed only without namespace flags.
    clone_no_ns: bool,
    /// clone3 answered ENOSYS.
    clone3_enosys: bool,
    /// The runtime's own calls not among the command's (a rule of their own, to say why).
    runtime_only: BTreeSet<String>,
}

fn check(rec: &Recording) -> Result<(), LearnError> {
    if let Some(e) = &rec.error {
        return Err(LearnError::Incomplete(e.clone()));
    }
    if !rec.installed {
        return Err(LearnError::NotInstalled);
    }
    if !rec.marker_seen {
        return Err(LearnError::NoMarker);
    }
    if let Some(c) = rec.calls.iter().find(|c| c.name.is_none()) {
        return Err(LearnError::Unnamed(c.to_string()));
    }
    Ok(())
}

fn sets(names: BTreeSet<String>, clone_namespaces: bool) -> Sets {
    let mut allow = names;
    let clone3 = allow.remove("clone3");
    let clone = allow.contains("clone") || clone3;
    let clone_no_ns = clone && !clone_namespaces;
    if clone_no_ns {
        allow.remove("clone");
    } else if clone {
        allow.insert("clone".into());
    }
    let runtime_only = RUNTIME_TAIL
        .iter()
        .map(|s| s.to_string())
        .filter(|s| !allow.contains(s))
        .collect();
    Sets {
        allow,
        clone_no_ns,
        // Whenever clone is allowed: a libc that tries clone3 first falls back on ENOSYS only
        // (EPERM, the default, would fail the thread or process creation).
        clone3_enosys: clone,
        runtime_only,
    }
}

/// Our TOML allowlist (docs/profile-format.md, the shape of profiles/seccomp/strict.toml).
/// `source` says what was learned from, for the header comment.
pub fn to_toml(rec: &Recording, source: &str, deny: Deny) -> Result<String, LearnError> {
    check(rec)?;
    if let Some(c) = rec.calls.iter().find(|c| !c.is_native()) {
        return Err(LearnError::ForeignArch(c.to_string()));
    }
    let s = sets(rec.native_names(), rec.clone_namespaces);
    let mut out = String::new();
    let _ = writeln!(out, "# Learned by `breakout learn` from {source}.");
    // No counts that vary from run to run: the same program gives the same file.
    let _ = writeln!(
        out,
        "# {} distinct calls recorded on {}; anything else {}.",
        rec.calls.len(),
        super::policy::native_scmp_arch(),
        match deny {
            Deny::Errno => "fails with EPERM",
            Deny::Kill => "kills the process",
        }
    );
    out.push_str(match deny {
        Deny::Errno => "\ndefault_action = \"errno\"\ndefault_errno = \"EPERM\"\n",
        Deny::Kill => "\ndefault_action = \"kill-process\"\n",
    });
    let list = |out: &mut String, names: &BTreeSet<String>| {
        out.push_str("names = [\n");
        for chunk in names.iter().collect::<Vec<_>>().chunks(8) {
            let line: Vec<String> = chunk.iter().map(|n| format!("\"{n}\"")).collect();
            let _ = writeln!(out, "  {},", line.join(", "));
        }
        out.push_str("]\n");
    };
    out.push_str("\n# What was recorded.\n[[rule]]\naction = \"allow\"\n");
    list(&mut out, &s.allow);
    if !s.runtime_only.is_empty() {
        out.push_str("\n# The runtime's own last setup steps, after the filter and before execve.\n[[rule]]\naction = \"allow\"\n");
        list(&mut out, &s.runtime_only);
    }
    if s.clone_no_ns {
        let _ = write!(
            out,
            "\n# fork/clone without namespace flags, as in strict.\n[[rule]]\naction = \"allow\"\nnames = [\"clone\"]\nargs = [{{ index = 0, op = \"masked-eq\", value = {CLONE_NAMESPACE_FLAGS:#X}, value_two = 0 }}]\n"
        );
    }
    if s.clone3_enosys {
        out.push_str("\n# clone3 passes its flags in memory, where seccomp cannot look: ENOSYS makes libc fall back to clone.\n[[rule]]\naction = \"errno\"\nerrno = \"ENOSYS\"\nnames = [\"clone3\"]\n");
    }
    Ok(out)
}

/// Docker's JSON: the same allowlist; calls of other ABIs (int 0x80 from a 64-bit process, x32)
/// add their architecture, and since a Docker rule names calls for every architecture of the
/// profile, a name recorded on one ABI is allowed on all of them.
pub fn to_docker_json(rec: &Recording, source: &str, deny: Deny) -> Result<String, LearnError> {
    check(rec)?;
    let names: BTreeSet<String> = rec.calls.iter().filter_map(|c| c.name.clone()).collect();
    let s = sets(names, rec.clone_namespaces);
    let native = super::policy::native_scmp_arch();
    let mut arches = vec![native.to_string()];
    for c in rec.calls.iter().filter(|c| !c.is_native()) {
        let a = format!("SCMP_ARCH_{}", c.arch);
        if !arches.contains(&a) {
            arches.push(a);
        }
    }
    let mut syscalls = vec![serde_json::json!({
        "names": s.allow.iter().collect::<Vec<_>>(),
        "action": "SCMP_ACT_ALLOW",
        "comment": "what was recorded",
    })];
    if !s.runtime_only.is_empty() {
        syscalls.push(serde_json::json!({
            "names": s.runtime_only.iter().collect::<Vec<_>>(),
            "action": "SCMP_ACT_ALLOW",
            "comment": "the runtime's own last setup steps, after the filter and before execve",
        }));
    }
    if s.clone_no_ns {
        syscalls.push(serde_json::json!({
            "names": ["clone"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
            "comment": "fork/clone without namespace flags",
        }));
    }
    if s.clone3_enosys {
        syscalls.push(serde_json::json!({
            "names": ["clone3"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": libc::ENOSYS,
            "comment": "flags in memory, where seccomp cannot look: libc falls back to clone",
        }));
    }
    let mut doc = serde_json::json!({
        "comment": format!("learned by `breakout learn` from {source}: {} calls recorded", rec.calls.len()),
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EPERM,
        "architectures": arches,
        "syscalls": syscalls,
    });
    if deny == Deny::Kill {
        doc["defaultAction"] = "SCMP_ACT_KILL_PROCESS".into();
        if let Some(o) = doc.as_object_mut() {
            o.remove("defaultErrnoRet");
        }
    }
    Ok(serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n")
}

/// The calls of `rec` a profile does not allow whatever the arguments: what a command learned
/// elsewhere lacks here.
pub fn missing_from(rec: &Recording, profile: &super::Resolved) -> Vec<Call> {
    // clone3 answered ENOSYS is not missing: libc falls back to clone.
    let clone3_falls_back = profile
        .rules
        .iter()
        .any(|r| r.name == "clone3" && r.action == super::Action::Errno(libc::ENOSYS as u16));
    rec.calls
        .iter()
        .filter(|c| {
            c.is_native()
                && c.name.as_deref().is_some_and(|n| {
                    profile.denies(n) == Some(true) && !(n == "clone3" && clone3_falls_back)
                })
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::policy::{native_go_arch, ResolveContext};
    use std::path::Path;

    fn rec(names: &[&str]) -> Recording {
        let calls = names
            .iter()
            .map(|n| {
                let nr = libseccomp::ScmpSyscall::from_name(n).unwrap();
                Call::new(0xc000_003e, i64::from(i32::from(nr)))
            })
            .collect();
        Recording {
            installed: true,
            marker_seen: true,
            calls,
            notifications: 99,
            ..Default::default()
        }
    }

    fn ctx() -> ResolveContext {
        ResolveContext {
            caps: BTreeSet::new(),
            arch: native_go_arch().into(),
            kernel: (6, 1),
        }
    }

    #[test]
    fn toml_loads_and_allows_exactly_the_recording_and_the_runtime_tail() {
        if crate::seccomp::policy::native_scmp_arch() != "SCMP_ARCH_X86_64" {
            return;
        }
        let r = rec(&["read", "getppid", "uname", "clone3", "exit_group"]);
        let text = to_toml(&r, "a test", Deny::Errno).unwrap();
        let p = super::super::allowlist::parse(&text, Path::new("learned.toml"))
            .unwrap()
            .resolve(&ctx());
        for allowed in ["read", "getppid", "uname", "capset", "execve"] {
            assert_eq!(p.denies(allowed), Some(false), "{allowed}\n{text}");
        }
        for denied in ["keyctl", "mount", "ptrace", "bpf", "unshare"] {
            assert_eq!(p.denies(denied), Some(true), "{denied}\n{text}");
        }
        // clone3 recorded: ENOSYS, and clone without namespace flags for the fallback.
        assert_eq!(p.denies("clone3"), Some(true));
        assert_eq!(p.denies("clone"), None, "{text}");
        p.compile().unwrap();
    }

    #[test]
    fn docker_json_loads_with_our_oci_loader() {
        if crate::seccomp::policy::native_scmp_arch() != "SCMP_ARCH_X86_64" {
            return;
        }
        let mut r = rec(&["read", "getppid", "clone"]);
        // int 0x80 socketcall from a 64-bit process.
        r.calls.insert(Call::new(0x4000_0003, 102));
        let text = to_docker_json(&r, "a test", Deny::Errno).unwrap();
        let prof = super::super::oci::parse(&text, Path::new("learned.json")).unwrap();
        assert_eq!(prof.extra_arches, vec!["SCMP_ARCH_X86"]);
        let p = prof.resolve(&ctx());
        assert_eq!(p.denies("getppid"), Some(false));
        assert_eq!(p.denies("socketcall"), Some(false));
        assert_eq!(p.denies("keyctl"), Some(true));
        assert_eq!(p.denies("clone"), None);
        p.compile().unwrap();
        // The TOML format cannot say "i386": it refuses instead of dropping the call.
        let e = to_toml(&r, "a test", Deny::Errno).unwrap_err().to_string();
        assert!(
            e.contains("socketcall (X86)") && e.contains("--format docker"),
            "{e}"
        );
    }

    #[test]
    fn incomplete_recordings_make_no_profile() {
        let mut r = rec(&["read"]);
        r.error = Some("the listener went away".into());
        assert!(to_toml(&r, "x", Deny::Errno)
            .unwrap_err()
            .to_string()
            .contains("incomplete"));
        let mut r = rec(&["read"]);
        r.marker_seen = false;
        assert!(matches!(
            to_docker_json(&r, "x", Deny::Errno),
            Err(LearnError::NoMarker)
        ));
        let mut r = rec(&["read"]);
        r.calls.insert(Call::new(0xc000_003e, 0xb4e0));
        assert!(to_toml(&r, "x", Deny::Errno)
            .unwrap_err()
            .to_string()
            .contains("no name"));
    }

    #[test]
    fn deny_kill_kills_in_both_formats() {
        let r = rec(&["read"]);
        let t = super::super::allowlist::parse(
            &to_toml(&r, "x", Deny::Kill).unwrap(),
            Path::new("k.toml"),
        )
        .unwrap();
        assert_eq!(t.default_action, crate::seccomp::Action::KillProcess);
        let j = super::super::oci::parse(
            &to_docker_json(&r, "x", Deny::Kill).unwrap(),
            Path::new("k.json"),
        )
        .unwrap();
        assert_eq!(j.default_action, crate::seccomp::Action::KillProcess);
    }

    #[test]
    fn namespace_clones_keep_clone_unconditional() {
        let mut r = rec(&["clone"]);
        r.clone_namespaces = true;
        let text = to_toml(&r, "x", Deny::Errno).unwrap();
        let p = super::super::allowlist::parse(&text, Path::new("l.toml"))
            .unwrap()
            .resolve(&ctx());
        assert_eq!(p.denies("clone"), Some(false));
    }

    #[test]
    fn missing_names_what_a_profile_denies() {
        let r = rec(&["read", "keyctl", "clone3"]);
        let strict = crate::seccomp::load("strict", None)
            .unwrap()
            .resolve(&ctx());
        let m: Vec<String> = missing_from(&r, &strict)
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(m, ["keyctl"]);
    }
}

#[cfg(test)]
mod shipped {
    use crate::seccomp::policy::{native_go_arch, ResolveContext};

    fn names(profile: &str) -> std::collections::BTreeSet<String> {
        let p = crate::seccomp::load(profile, None).unwrap();
        p.rules
            .iter()
            .filter(|r| r.action.permits())
            .flat_map(|r| r.names.iter().cloned())
            .collect()
    }

    /// profiles/seccomp/learned-workloads.toml (`breakout learn --workload all`) loads,
    /// compiles, is smaller than strict's allowlist and denies what no workload needs.
    #[test]
    fn the_learned_workloads_profile_is_smaller_than_strict() {
        let learned = names("learned-workloads");
        let strict = names("strict");
        assert!(
            learned.len() < strict.len() / 2,
            "{} vs {}",
            learned.len(),
            strict.len()
        );
        let extra: Vec<&String> = learned.difference(&strict).collect();
        assert!(
            extra.is_empty(),
            "learned allows what strict does not: {extra:?}"
        );
        let ctx = ResolveContext {
            caps: Default::default(),
            arch: native_go_arch().into(),
            kernel: (6, 1),
        };
        let r = crate::seccomp::load("learned-workloads", None)
            .unwrap()
            .resolve(&ctx);
        for denied in [
            "keyctl",
            "mount",
            "ptrace",
            "bpf",
            "unshare",
            "setns",
            "io_uring_setup",
        ] {
            assert_eq!(r.denies(denied), Some(true), "{denied}");
        }
        r.compile().unwrap();
    }
}
