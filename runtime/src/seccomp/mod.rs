//! The seccomp layer's policy: profiles in two formats (our TOML allowlists and Docker/OCI JSON,
//! loaded as they are), resolved against the sandbox's kept capabilities, the native architecture
//! and the running kernel, then compiled once to BPF with libseccomp (cached per policy).

pub mod allowlist;
pub mod compile;
pub mod kill_record;
pub mod learned;
pub mod oci;
pub mod policy;
pub mod record;

pub use compile::Bpf;
pub use kill_record::FilterKill;
pub use policy::{Action, ArgCond, CmpOp, ResolveContext, Resolved, Rule, SeccompProfile};
pub use record::{Call, Recording};

use std::path::{Path, PathBuf};

/// What can go wrong loading or compiling a seccomp profile. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("{}: cannot read seccomp profile: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: malformed seccomp profile: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("{}: field `{field}`: {message}", path.display())]
    Field {
        path: PathBuf,
        field: String,
        message: String,
    },
    #[error("{}: unknown builtin seccomp profile `{name}` (builtin: strict, docker-default, deny-all, learned-workloads)", path.display())]
    UnknownBuiltin { path: PathBuf, name: String },
    #[error("seccomp profile {source_name}: libseccomp refused {what}: {message}")]
    Compile {
        source_name: String,
        what: String,
        message: String,
    },
}

/// The seccomp profiles embedded in the binary, so it works anywhere (also in the VM).
const BUILTIN: &[(&str, &str)] = &[
    (
        "strict",
        include_str!("../../../profiles/seccomp/strict.toml"),
    ),
    (
        "docker-default",
        include_str!("../../../profiles/seccomp/docker-default.json"),
    ),
    (
        "deny-all",
        include_str!("../../../profiles/seccomp/deny-all.toml"),
    ),
    (
        "learned-workloads",
        include_str!("../../../profiles/seccomp/learned-workloads.toml"),
    ),
];

/// Load a seccomp profile: a builtin name (`strict`, `docker-default`) or a path to a `.json`
/// (Docker/OCI) or `.toml` (our allowlist) file. `base` resolves relative paths.
pub fn load(spec: &str, base: Option<&Path>) -> Result<SeccompProfile, SeccompError> {
    if let Some((name, text)) = BUILTIN.iter().find(|(n, _)| *n == spec) {
        let origin = PathBuf::from(format!("<builtin seccomp profile {name}>"));
        return parse(text, &origin, name.ends_with("default"));
    }
    if !spec.contains('/') && !spec.contains('.') {
        return Err(SeccompError::UnknownBuiltin {
            path: base.map(Path::to_path_buf).unwrap_or_default(),
            name: spec.to_string(),
        });
    }
    let path = match base {
        Some(dir) if Path::new(spec).is_relative() => dir.join(spec),
        _ => PathBuf::from(spec),
    };
    let text = std::fs::read_to_string(&path).map_err(|source| SeccompError::Read {
        path: path.clone(),
        source,
    })?;
    let json = path.extension().is_some_and(|e| e == "json");
    parse(&text, &path, json)
}

/// toml's messages span several lines; keep one.
pub fn allowlist_one_line(s: &str) -> String {
    allowlist::one_line(s)
}

fn parse(text: &str, origin: &Path, json: bool) -> Result<SeccompProfile, SeccompError> {
    if json {
        oci::parse(text, origin)
    } else {
        allowlist::parse(text, origin)
    }
}

#[cfg(test)]
mod tests {
    use super::policy::{running_kernel, Action};
    use super::*;
    use rstest::rstest;
    use std::collections::BTreeSet;

    fn docker() -> SeccompProfile {
        load("docker-default", None).unwrap()
    }

    fn ctx(caps: &[&str], kernel: (u32, u32)) -> ResolveContext {
        ResolveContext {
            caps: caps.iter().map(|c| c.to_string()).collect::<BTreeSet<_>>(),
            arch: "amd64".into(),
            kernel,
        }
    }

    #[test]
    fn docker_fixture_loads_as_documented() {
        let p = docker();
        assert_eq!(p.default_action, Action::Errno(1));
        assert_eq!(p.rules.len(), 33);
        let names: usize = p.rules.iter().map(|r| r.names.len()).sum();
        assert_eq!(names, 442, "the NOTICE counts 442 names in 33 rules");
        if policy::native_scmp_arch() == "SCMP_ARCH_X86_64" {
            assert_eq!(p.extra_arches, vec!["SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
        }
    }

    /// Docker's profile for several capability sets (NOTICE.md lists what each cap unlocks).
    #[rstest]
    #[case::no_caps(&[], "mount", Some(true))]
    #[case::sys_admin(&["CAP_SYS_ADMIN"], "mount", Some(false))]
    #[case::sys_admin_unshare(&["CAP_SYS_ADMIN"], "unshare", Some(false))]
    #[case::no_caps_unshare(&[], "unshare", Some(true))]
    #[case::no_caps_setns(&[], "setns", Some(true))]
    #[case::sys_boot(&["CAP_SYS_BOOT"], "reboot", Some(false))]
    #[case::no_sys_boot(&["CAP_SYS_ADMIN"], "reboot", Some(true))]
    #[case::dac_read_search(&["CAP_DAC_READ_SEARCH"], "open_by_handle_at", Some(false))]
    #[case::no_dac_read_search(&[], "open_by_handle_at", Some(true))]
    #[case::sys_chroot(&["CAP_SYS_CHROOT"], "chroot", Some(false))]
    #[case::no_sys_chroot(&[], "chroot", Some(true))]
    #[case::sys_ptrace(&["CAP_SYS_PTRACE"], "kcmp", Some(false))]
    #[case::no_sys_ptrace(&[], "pidfd_getfd", Some(true))]
    #[case::never_keyctl(&["CAP_SYS_ADMIN"], "keyctl", Some(true))]
    #[case::never_userfaultfd(&["CAP_SYS_ADMIN"], "userfaultfd", Some(true))]
    #[case::never_io_uring(&["CAP_SYS_ADMIN"], "io_uring_setup", Some(true))]
    #[case::never_pivot_root(&["CAP_SYS_ADMIN"], "pivot_root", Some(true))]
    #[case::never_kexec(&["CAP_SYS_ADMIN"], "kexec_load", Some(true))]
    #[case::init_module(&[], "init_module", Some(true))]
    #[case::init_module_sys_module(&["CAP_SYS_MODULE"], "init_module", Some(false))]
    #[case::ptrace_new_kernel(&[], "ptrace", Some(false))]
    #[case::clone_args(&[], "clone", None)]
    #[case::clone_sys_admin(&["CAP_SYS_ADMIN"], "clone", Some(false))]
    #[case::clone3_enosys(&[], "clone3", Some(true))]
    #[case::socket_args(&[], "socket", None)]
    #[case::read(&[], "read", Some(false))]
    fn docker_profile_per_capability_set(
        #[case] caps: &[&str],
        #[case] syscall: &str,
        #[case] denied: Option<bool>,
    ) {
        let r = docker().resolve(&ctx(caps, (6, 1)));
        assert_eq!(r.denies(syscall), denied, "{syscall} with {caps:?}");
    }

    #[test]
    fn min_kernel_gates_ptrace() {
        assert_eq!(
            docker().resolve(&ctx(&[], (4, 4))).denies("ptrace"),
            Some(true)
        );
        assert_eq!(
            docker().resolve(&ctx(&[], (4, 8))).denies("ptrace"),
            Some(false)
        );
    }

    #[test]
    fn clone3_without_sys_admin_returns_enosys() {
        let r = docker().resolve(&ctx(&[], (6, 1)));
        let rule = r.rules.iter().find(|x| x.name == "clone3").unwrap();
        assert_eq!(rule.action, Action::Errno(38));
    }

    #[test]
    fn arch_conditions_follow_the_native_arch() {
        let amd = docker().resolve(&ctx(&[], (6, 1)));
        assert_eq!(amd.denies("arch_prctl"), Some(false));
        let mut arm = ctx(&[], (6, 1));
        arm.arch = "arm64".into();
        assert_eq!(docker().resolve(&arm).denies("arch_prctl"), Some(true));
    }

    #[test]
    fn docker_profile_compiles_for_several_cap_sets_and_caches() {
        for caps in [
            &[][..],
            &["CAP_SYS_ADMIN"][..],
            &["CAP_SYS_PTRACE", "CAP_SYS_BOOT"][..],
        ] {
            let r = docker().resolve(&ctx(caps, running_kernel()));
            let a = r.compile().unwrap();
            let b = r.compile().unwrap();
            assert!(a.len() > 100, "a real program: {} instructions", a.len());
            assert!(
                std::sync::Arc::ptr_eq(&a.0, &b.0),
                "second compile came from the cache"
            );
        }
    }

    #[test]
    fn strict_allowlist_loads_compiles_and_denies_the_dangerous() {
        let p = load("strict", None).unwrap();
        let r = p.resolve(&ctx(&[], running_kernel()));
        for s in [
            "mount",
            "unshare",
            "setns",
            "keyctl",
            "bpf",
            "ptrace",
            "pivot_root",
            "userfaultfd",
            "io_uring_setup",
            "init_module",
            "reboot",
        ] {
            assert_eq!(r.denies(s), Some(true), "{s}");
        }
        for s in [
            "read",
            "execve",
            "capset",
            "setresuid",
            "close_range",
            "prctl",
            "wait4",
        ] {
            assert_eq!(
                r.denies(s),
                Some(false),
                "{s} is needed by the setup after the filter"
            );
        }
        assert_eq!(r.denies("clone"), None);
        r.compile().unwrap();
    }

    #[rstest]
    #[case::unknown_syscall(
        "default_action = \"errno\"\n[[rule]]\naction = \"allow\"\nnames = [\"read\", \"raed\"]\n",
        "rule[0].names[1]",
        "unknown syscall `raed`"
    )]
    #[case::unknown_action(
        "default_action = \"errno\"\n[[rule]]\naction = \"permit\"\nnames = [\"read\"]\n",
        "rule[0].action",
        "unknown action `permit`"
    )]
    #[case::bad_errno(
        "default_action = \"errno\"\ndefault_errno = \"EWHAT\"\n",
        "default_errno",
        "unknown errno name"
    )]
    #[case::bad_op("default_action = \"errno\"\n[[rule]]\naction = \"allow\"\nnames = [\"read\"]\nargs = [{ index = 0, op = \"approx\", value = 1 }]\n", "rule[0].args[0].op", "unknown comparison")]
    fn our_toml_errors_name_file_and_field(
        #[case] text: &str,
        #[case] field: &str,
        #[case] what: &str,
    ) {
        let e = allowlist::parse(text, std::path::Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("p.toml: field `") && e.contains(field) && e.contains(what),
            "{e}"
        );
    }

    #[rstest]
    #[case::not_json("{", "malformed seccomp profile")]
    #[case::bad_action("{\"defaultAction\": \"SCMP_ACT_MAYBE\"}", "field `defaultAction`")]
    #[case::bad_op("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"args\": [{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_NEAR\"}]}]}", "field `syscalls[0].args[0].op`")]
    #[case::bad_kernel("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"includes\": {\"minKernel\": \"new\"}}]}", "field `syscalls[0].includes.minKernel`")]
    fn oci_errors_name_file_and_field(#[case] text: &str, #[case] what: &str) {
        let e = oci::parse(text, std::path::Path::new("d.json"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("d.json: ") && e.contains(what), "{e}");
    }

    #[test]
    fn docker_profile_skips_unknown_allowed_names_with_a_warning() {
        let text = "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"read\", \"no_such_call\"], \"action\": \"SCMP_ACT_ALLOW\"}]}";
        let p = oci::parse(text, std::path::Path::new("d.json")).unwrap();
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
        let w = &p.warnings[0];
        assert!(
            w.starts_with("d.json: syscalls[0] (SCMP_ACT_ALLOW)") && w.contains("`no_such_call`"),
            "{w}"
        );
        p.resolve(&ctx(&[], (6, 1))).compile().unwrap();
    }

    /// A typo in a deny rule would take the call out of the deny list: refused, naming the file,
    /// the rule and the name.
    #[rstest]
    #[case::errno_over_allow("SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO")]
    #[case::kill_over_allow("SCMP_ACT_ALLOW", "SCMP_ACT_KILL_PROCESS")]
    #[case::trap_over_errno("SCMP_ACT_ERRNO", "SCMP_ACT_TRAP")]
    fn docker_profile_refuses_unknown_names_in_deny_rules(
        #[case] default: &str,
        #[case] action: &str,
    ) {
        let text = format!(
            "{{\"defaultAction\": \"{default}\", \"syscalls\": [{{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\"}}, {{\"names\": [\"mount\", \"ptarce\"], \"action\": \"{action}\"}}]}}"
        );
        let e = oci::parse(&text, std::path::Path::new("d.json"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("d.json: field `syscalls[1].names[1]`: unknown syscall `ptarce`")
                && !e.contains('\n'),
            "{e}"
        );
    }

    #[test]
    fn unknown_name_in_a_rule_repeating_the_default_only_warns() {
        let text = "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"ptarce\"], \"action\": \"SCMP_ACT_ERRNO\"}]}";
        let p = oci::parse(text, std::path::Path::new("d.json")).unwrap();
        assert!(p.warnings[0].contains("`ptarce`"), "{:?}", p.warnings);
    }

    /// Docker's real profile still loads; what it warns depends on this libseccomp's table.
    #[test]
    fn docker_real_profile_loads_and_warns_only_about_allowed_names() {
        let p = docker();
        for w in &p.warnings {
            eprintln!("warning: {w}");
            assert!(w.contains("(SCMP_ACT_ALLOW)"), "{w}");
        }
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../profiles/seccomp/docker-default.json");
        let q = load(fixture.to_str().unwrap(), None).unwrap();
        assert_eq!(p.warnings.len(), q.warnings.len());
    }

    /// More instructions than the kernel takes: refused at compile time, naming the profile,
    /// never truncated to 16 bits when installed.
    #[test]
    fn oversized_program_is_refused_with_its_length() {
        // About one instruction per compared value.
        let args = (0..6000)
            .map(|v| format!("{{ index = 1, op = \"eq\", value = {v} }}"))
            .collect::<Vec<_>>()
            .join(", ");
        let text = format!(
            "default_action = \"errno\"\n[[rule]]\naction = \"allow\"\nnames = [\"ioctl\"]\nargs = [{args}]\n"
        );
        let p = allowlist::parse(&text, std::path::Path::new("big.toml")).unwrap();
        let e = p
            .resolve(&ctx(&[], (6, 1)))
            .compile()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("big.toml") && e.contains("the kernel takes at most 4096"),
            "{e}"
        );
    }

    #[test]
    fn unreadable_json_names_the_file() {
        let e = load("/nonexistent/profile.json", None)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/nonexistent/profile.json: cannot read seccomp profile"),
            "{e}"
        );
    }
}
