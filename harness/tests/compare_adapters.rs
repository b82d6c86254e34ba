//! The external-runtime adapters: the command lines and the OCI bundle they generate, Docker's
//! seccomp profile resolved for crun, attribution from evidence, and real launches of bwrap and
//! unshare on this host (root, cgroup v2 at /sys/fs/cgroup/unified or /sys/fs/cgroup). crun
//! refuses this host's hybrid cgroups; it runs in the VM (`breakout compare`).

mod common;

use breakout_attacks::{LaunchRequest, Layer};
use breakout_harness::adapters::{self, crun, infer, ExternalSpec};
use breakout_harness::model::Evidence;
use breakout_runtime::ExitKind;
use common::step;
use rstest::rstest;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn docker_profile() -> Value {
    serde_json::from_str(include_str!("../../profiles/seccomp/docker-default.json")).unwrap()
}

#[rstest]
#[case("read", &crun::DOCKER_CAPS[..], Some(false))]
#[case("ptrace", &crun::DOCKER_CAPS[..], Some(false))] // allowed since Docker 19.03 (kernel >= 4.8)
#[case("kexec_load", &crun::DOCKER_CAPS[..], Some(true))]
#[case("mount", &crun::DOCKER_CAPS[..], Some(true))]
#[case("mount", &["CAP_SYS_ADMIN"][..], Some(false))]
#[case("keyctl", &crun::DOCKER_CAPS[..], Some(true))]
#[case("reboot", &crun::DOCKER_CAPS[..], Some(true))]
#[case("reboot", &["CAP_SYS_BOOT"][..], Some(false))]
#[case("personality", &crun::DOCKER_CAPS[..], None)]
#[case("clone", &crun::DOCKER_CAPS[..], None)]
#[case("clone", &["CAP_SYS_ADMIN"][..], Some(false))]
fn docker_seccomp_resolves_for_the_kept_capabilities(
    #[case] syscall: &str,
    #[case] caps: &[&str],
    #[case] denied: Option<bool>,
) {
    let oci = crun::oci_seccomp(&docker_profile(), caps).unwrap();
    assert_eq!(
        crun::oci_denies(&oci, syscall),
        denied,
        "{syscall} with {caps:?}"
    );
}

#[test]
fn docker_seccomp_keeps_errno_and_arches() {
    let oci = crun::adapter_seccomp();
    assert_eq!(oci["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(oci["defaultErrnoRet"], 1);
    assert_eq!(oci["architectures"][0], "SCMP_ARCH_X86_64");
    // clone3 answers ENOSYS so libc falls back to clone, as under Docker.
    let clone3 = oci["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["names"].as_array().unwrap().iter().any(|n| n == "clone3"))
        .unwrap();
    assert_eq!(clone3["errnoRet"], 38);
}

#[test]
fn a_malformed_docker_profile_is_an_error_not_a_panic() {
    let err = crun::oci_seccomp(&serde_json::json!({"syscalls": []}), &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "docker seccomp profile: missing string `defaultAction`"
    );
    let err = crun::oci_seccomp(
        &serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}),
        &[],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "docker seccomp profile: syscalls[0]: missing `names`"
    );
}

#[test]
fn crun_bundle_is_what_docker_run_asks_for() {
    let argv = vec![
        "/usr/bin/breakout-probe".to_string(),
        "ptrace-outside".to_string(),
    ];
    let config = crun::config(&argv, Some("/breakout-adapters/crun-1-0/payload"));
    assert_eq!(
        config["root"],
        serde_json::json!({"path": "rootfs", "readonly": true})
    );
    assert_eq!(config["process"]["args"], serde_json::json!(argv));
    assert_eq!(config["process"]["user"]["uid"], 0);
    assert_eq!(config["process"]["noNewPrivileges"], false);
    let caps = config["process"]["capabilities"]["bounding"]
        .as_array()
        .unwrap();
    assert_eq!(caps.len(), 14);
    assert!(!caps
        .iter()
        .any(|c| c == "CAP_SYS_ADMIN" || c == "CAP_SYS_PTRACE"));
    assert_eq!(
        config["process"]["capabilities"]["inheritable"],
        serde_json::json!([])
    );
    let namespaces: Vec<&str> = config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        namespaces,
        ["pid", "network", "ipc", "uts", "mount", "cgroup"]
    );
    assert!(config["linux"]["maskedPaths"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "/proc/kcore"));
    assert!(config["linux"]["readonlyPaths"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "/proc/sysrq-trigger"));
    assert_eq!(
        config["linux"]["cgroupsPath"],
        "/breakout-adapters/crun-1-0/payload"
    );
    // The outside's world under /srv is not part of the "image": the launch hides it (a root of
    // the container's own; taking root.path out shows the outside's root, /srv included).
    let config = breakout_harness::adapters::oci::for_launch(&config, &argv, None);
    assert!(config["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["destination"] == "/srv" && m["type"] == "tmpfs"));
}

fn default_argv(name: &str) -> Vec<String> {
    match adapters::by_name(name).unwrap().spec() {
        ExternalSpec::Cmd { argv } => argv,
        other => panic!("{name} is a wrapper: {other:?}"),
    }
}

fn launcher(name: &str) -> Box<dyn breakout_attacks::Launcher> {
    adapters::launcher_for(&adapters::by_name(name).unwrap().spec()).unwrap()
}

#[test]
fn bwrap_and_unshare_command_lines() {
    let argv = default_argv("bwrap");
    assert_eq!(
        &argv[..4],
        [
            "/usr/bin/bwrap",
            "--unshare-all",
            "--die-with-parent",
            "--new-session"
        ]
    );
    assert!(argv
        .windows(3)
        .any(|w| w == ["--ro-bind-try", "/usr", "/usr"]));
    assert!(
        !argv.iter().any(|a| a == "/srv"),
        "the world is not bound in"
    );
    assert_eq!(&argv[argv.len() - 2..], ["--tmpfs", "/tmp"]);
    let argv = default_argv("unshare");
    assert_eq!(argv[0], "/usr/bin/unshare");
    for flag in [
        "--user",
        "--map-root-user",
        "--pid",
        "--fork",
        "--net",
        "--ipc",
        "--uts",
        "--cgroup",
        "--mount-proc",
    ] {
        assert!(argv.iter().any(|a| a == flag), "{flag}");
    }
}

#[test]
fn adapters_declare_the_layers_their_items_stand_for() {
    for name in adapters::names() {
        let info = adapters::profile_info(name).unwrap();
        assert_eq!(info.name, name);
        assert_eq!(info.runtime, name);
        // Attributed by ablating their items, not inferred.
        assert!(!info.inferred, "{name}");
        assert!(!info.layers.is_empty(), "{name}");
    }
    // crun has no user namespace; bwrap drops no caps; unshare has no seccomp.
    assert!(!adapters::profile_info("unshare")
        .unwrap()
        .layers
        .contains(&Layer::Seccomp));
    assert!(!adapters::profile_info("crun")
        .unwrap()
        .layers
        .contains(&Layer::UserNs));
    assert!(!adapters::profile_info("bwrap")
        .unwrap()
        .layers
        .contains(&Layer::Caps));
    let err = breakout_harness::suite::plan::Configuration::named("docker")
        .unwrap_err()
        .to_string();
    // Every runtime of the registry, in its order.
    let runtimes = adapters::names().join(", ");
    assert!(
        err.contains(&format!("nor is it a runtime: {runtimes};")),
        "{err}"
    );
}

fn evidence(steps: Vec<breakout_attacks::Step>, exit: Option<ExitKind>) -> Evidence {
    Evidence {
        steps,
        exit,
        ..Evidence::default()
    }
}

const ALL_NS: &[Layer] = &[
    Layer::UserNs,
    Layer::PidNs,
    Layer::NetNs,
    Layer::IpcNs,
    Layer::UtsNs,
    Layer::CgroupNs,
];

#[rstest]
// ptrace of an invisible victim: ESRCH is pid-ns's signature.
#[case(&[Layer::PidNs, Layer::Caps, Layer::Uid, Layer::Seccomp], ALL_NS,
       vec![step("attach", "ptrace(PTRACE_ATTACH, 812)", Some((3, "ESRCH")), None)], None, &[Layer::PidNs][..])]
// EPERM under a user namespace: user-ns (caps and uid are not on under unshare).
#[case(&[Layer::UserNs, Layer::Caps, Layer::Uid], ALL_NS,
       vec![step("mount", "mount(\"tmpfs\", \"/mnt\")", Some((1, "EPERM")), None)], None, &[Layer::UserNs][..])]
// /proc/<pid> missing: pid-ns; a plain missing path: mount-ns.
#[case(&[Layer::PidNs, Layer::MountNs], &[Layer::PidNs, Layer::MountNs],
       vec![step("open root", "open(\"/proc/812/root/secret\")", Some((2, "ENOENT")), None)], None, &[Layer::PidNs][..])]
#[case(&[Layer::PidNs, Layer::MountNs], &[Layer::PidNs, Layer::MountNs],
       vec![step("connect", "connect(\"/srv/breakout/sock\")", Some((2, "ENOENT")), None)], None, &[Layer::MountNs][..])]
// SysV keys missing: ipc-ns, not mount-ns.
#[case(&[Layer::IpcNs, Layer::MountNs], &[Layer::IpcNs, Layer::MountNs],
       vec![step("find segment", "shmget(0x9447e83, 0, 0)", Some((2, "ENOENT")), None)], None, &[Layer::IpcNs][..])]
// The attempt "worked" inside and the outside saw nothing: the namespace kept it inside.
#[case(&[Layer::UtsNs, Layer::Caps], ALL_NS,
       vec![step("set hostname", "sethostname(\"pwned\")", None, None)], None, &[Layer::UtsNs][..])]
// Killed by SIGSYS: seccomp.
#[case(&[Layer::Seccomp, Layer::Caps], &[Layer::Seccomp, Layer::Caps],
       vec![], Some(ExitKind::Signaled { signal: 31, core_dumped: false }), &[Layer::Seccomp][..])]
// Network down in an empty network namespace.
#[case(&[Layer::NetNs, Layer::Caps], ALL_NS,
       vec![step("sniff", "recv(...) until the marker shows up", Some((100, "ENETDOWN")), None)], None, &[Layer::NetNs][..])]
// reboot(2) in a PID namespace.
#[case(&[Layer::PidNs, Layer::Caps], ALL_NS,
       vec![step("ctrl-alt-del", "reboot(LINUX_REBOOT_CMD_CAD_ON)", Some((22, "EINVAL")), None)], None, &[Layer::PidNs][..])]
// No controlling terminal: /dev/tty is ENXIO and TIOCSTI needs CAP_SYS_ADMIN.
#[case(&[Layer::NewSession, Layer::UserNs], &[Layer::NewSession, Layer::UserNs],
       vec![step("open tty", "open(/dev/tty, O_RDWR)", Some((6, "ENXIO")), None),
            step("inject", "ioctl(fd 0, TIOCSTI, \"x\\n\")", Some((1, "EPERM")), None)], None, &[Layer::NewSession, Layer::UserNs][..])]
// A candidate the runtime did not turn on is never credited.
#[case(&[Layer::Seccomp], ALL_NS,
       vec![step("keyctl", "keyctl(KEYCTL_READ, 5)", Some((1, "EPERM")), None)], None, &[][..])]
fn attribution_from_evidence(
    #[case] candidates: &[Layer],
    #[case] enabled: &[Layer],
    #[case] steps: Vec<breakout_attacks::Step>,
    #[case] exit: Option<ExitKind>,
    #[case] credited: &[Layer],
) {
    let a = infer::attribution(candidates, enabled, &evidence(steps, exit), None);
    assert_eq!(a.sufficient, credited);
    assert_eq!(a.depth, credited.len());
    assert!(a.inferred);
    assert!(a.necessary.is_empty() && a.ablation_runs.is_empty());
}

#[test]
fn crun_attribution_names_the_denied_syscall() {
    let ev = evidence(
        vec![step(
            "read key",
            "keyctl(KEYCTL_READ, 5)",
            Some((1, "EPERM")),
            None,
        )],
        None,
    );
    let a = infer::for_adapter("crun", &[Layer::Caps, Layer::Seccomp], &ev).unwrap();
    // Docker's filter denies keyctl whatever the capabilities: the EPERM is seccomp's, not caps'.
    assert_eq!(a.sufficient, [Layer::Seccomp]);
    assert_eq!(a.seccomp_denied, ["keyctl"]);
}

/// A cgroup v2 directory on this host for the launch tests.
fn host_cgroup(test: &str) -> PathBuf {
    assert_eq!(
        nix::unistd::geteuid().as_raw(),
        0,
        "the adapter launch tests need root (bwrap, unshare and cgroup placement)"
    );
    let base = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.join("cgroup.procs").exists() && p.join("cgroup.subtree_control").exists())
        .expect("a cgroup v2 mount at /sys/fs/cgroup/unified or /sys/fs/cgroup");
    let dir = base.join(format!(
        "breakout-adapter-test-{}-{test}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn request(argv: &[&str], cgroup: &Path, timeout: Duration) -> LaunchRequest {
    LaunchRequest {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        cgroup: Some(cgroup.to_path_buf()),
        timeout,
        controlling_tty: None,
        stdin: None,
    }
}

fn ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[rstest]
#[case::bwrap("bwrap")]
#[case::unshare("unshare")]
fn adapters_really_isolate_on_this_host(#[case] name: &str) {
    let cgroup = host_cgroup(&format!("isolate-{name}"));
    let launcher = launcher(name);
    let script = "readlink /proc/self/ns/pid /proc/self/ns/net /proc/self/ns/user; grep NoNewPrivs /proc/self/status; echo err >&2; exit 3";
    let launched = launcher
        .launch(&request(
            &["/bin/sh", "-c", script],
            &cgroup,
            Duration::from_secs(20),
        ))
        .unwrap();
    let out = String::from_utf8_lossy(&launched.stdout);
    assert!(!launched.timed_out);
    assert_eq!(
        launched.outcome.unwrap().status,
        ExitKind::Exited { code: 3 },
        "{out}"
    );
    assert_eq!(String::from_utf8_lossy(&launched.stderr).trim(), "err");
    let lines: Vec<&str> = out.lines().collect();
    assert_ne!(lines[0], ns("pid"), "own pid namespace");
    assert_ne!(lines[1], ns("net"), "own network namespace");
    assert_ne!(lines[2], ns("user"), "own user namespace");
    let nnp = if name == "bwrap" { "1" } else { "0" };
    assert_eq!(lines[3].split_whitespace().last(), Some(nnp), "{out}");
    let _ = std::fs::remove_dir(&cgroup);
}

#[rstest]
#[case::bwrap("bwrap")]
#[case::unshare("unshare")]
fn a_timeout_kills_the_whole_tree(#[case] name: &str) {
    let cgroup = host_cgroup(&format!("timeout-{name}"));
    let launcher = launcher(name);
    let started = Instant::now();
    // A grandchild that ignores SIGTERM and holds stdout open: only a tree kill ends it.
    let launched = launcher
        .launch(&request(
            &[
                "/bin/sh",
                "-c",
                "trap '' TERM; (trap '' TERM; sleep 300) & sleep 300",
            ],
            &cgroup,
            Duration::from_millis(1500),
        ))
        .unwrap();
    let took = started.elapsed();
    assert!(launched.timed_out);
    assert!(
        took < Duration::from_secs(30),
        "killed at the timeout, took {took:?}"
    );
    // Every launch cgroup under ours is gone again: nothing is left running.
    let leftovers: Vec<_> = std::fs::read_dir(&cgroup)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.path())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let _ = std::fs::remove_dir(&cgroup);
}

#[test]
fn adapter_binaries_found_on_the_host_go_into_the_guest() {
    let files = adapters::guest_files();
    for a in adapters::all() {
        assert_eq!(
            files.contains(&a.binary().to_path_buf()),
            a.binary().exists(),
            "{}",
            a.name()
        );
    }
    // A configuration brings its own runtime's binary.
    let c = breakout_harness::suite::plan::Configuration::named("cmd:bwrap --unshare-pid").unwrap();
    assert_eq!(
        c.guest_files(),
        [Path::new("/usr/bin/bwrap")]
            .iter()
            .filter(|p| p.exists())
            .map(|p| p.to_path_buf())
            .collect::<Vec<_>>()
    );
}

/// The seventh field of /proc/self/stat inside the sandbox: tty_nr, 0 without a controlling
/// terminal.
fn tty_nr_inside(name: &str, tty: Option<std::os::fd::RawFd>, cgroup: &Path) -> String {
    let launcher = launcher(name);
    let mut req = request(
        &["/bin/sh", "-c", "cut -d' ' -f7 /proc/self/stat"],
        cgroup,
        Duration::from_secs(20),
    );
    req.controlling_tty = tty;
    let launched = launcher.launch(&req).unwrap();
    assert_eq!(
        launched.outcome.unwrap().status,
        ExitKind::Exited { code: 0 },
        "{}",
        String::from_utf8_lossy(&launched.stderr)
    );
    String::from_utf8_lossy(&launched.stdout).trim().to_string()
}

#[rstest]
// unshare keeps the terminal it was given as its controlling one; bwrap --new-session drops it.
#[case::unshare("unshare", true)]
#[case::bwrap("bwrap", false)]
fn the_controlling_terminal_reaches_the_runtime(#[case] name: &str, #[case] kept: bool) {
    use std::os::fd::AsRawFd;
    let cgroup = host_cgroup(&format!("tty-{name}"));
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let with_tty = tty_nr_inside(name, Some(pty.slave.as_raw_fd()), &cgroup);
    let without = tty_nr_inside(name, None, &cgroup);
    assert_eq!(without, "0", "no terminal given, none held");
    assert_eq!(with_tty != "0", kept, "{name}: tty_nr {with_tty}");
    let _ = std::fs::remove_dir(&cgroup);
}
