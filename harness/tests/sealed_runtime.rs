//! `breakout sandbox` runs from a view of its binary a payload cannot write (CVE-2019-5736):
//! `breakout` is the runtime and seals itself; `breakout-harness sandbox` seals the `breakout`
//! beside it, else itself; either through a
//! read-only overlay where the kernel allows one, else (and with `BREAKOUT_SEAL_COPY=1`) as a
//! sealed memfd copy; either way the runtime's processes hold nothing a payload can write
//! through /proc/PID/exe or /proc/PID/map_files. Root tests, like the rest of the CLI tests
//! (`none` needs no namespaces: the payload sees its supervisor).

use std::path::Path;
use std::process::{Command, Output};

/// Under `none`, the payload's parent is the supervisor: what its exe link names, its size,
/// whether the payload (real root, every capability) can append to it, and to the file its
/// first mapping names in map_files.
const PROBE: &str = "readlink /proc/$PPID/exe; stat -L -c %s /proc/$PPID/exe; \
                     if printf x >> /proc/$PPID/exe; then echo WRITTEN; else echo refused; fi; \
                     m=$(head -n1 /proc/$PPID/maps); m=${m%% *}; \
                     if printf x >> /proc/$PPID/map_files/$m; then echo WRITTEN; else echo refused; fi";

fn sandbox_with(breakout: &Path, copy: bool) -> Output {
    let mut cmd = Command::new(breakout);
    cmd.args(["sandbox", "--profile", "none", "--", "/bin/sh", "-c", PROBE]);
    if copy {
        cmd.env(breakout_runtime::sealed_exe::COPY_ENV, "1");
    } else {
        cmd.env_remove(breakout_runtime::sealed_exe::COPY_ENV);
    }
    cmd.output().expect("run breakout")
}

/// Can this machine give the runtime a read-only overlay (root and overlayfs)?
fn overlay_possible() -> bool {
    nix::unistd::geteuid().is_root()
        && std::fs::read_to_string("/proc/filesystems").is_ok_and(|f| f.contains("\toverlay\n"))
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

/// `breakout sandbox` started from `breakout` ran its supervisor from a view of `sealed` (its
/// size; its name at the overlay's root), and the payload's appends were refused.
fn runs_sealed_view_of(breakout: &Path, sealed: &Path, copy: bool) {
    let o = sandbox_with(breakout, copy);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines: Vec<&str> = out.lines().collect();
    if copy || !overlay_possible() {
        assert_eq!(lines[0], "/memfd:breakout (deleted)", "{out}");
    } else {
        // The overlay's root is the binary's directory: the link names the file at its top.
        let name = sealed.file_name().unwrap().to_string_lossy();
        assert_eq!(lines[0], format!("/{name}"), "{out}");
    }
    assert_eq!(
        lines[1],
        size(sealed).to_string(),
        "the sealed copy's size: {out}"
    );
    assert_eq!(lines[2], "refused", "{out}");
    assert_eq!(lines[3], "refused", "map_files: {out}");
}

#[rstest::rstest]
fn the_supervisor_runs_from_a_sealed_view_of_breakout(#[values(false, true)] copy: bool) {
    let runtime = Path::new(env!("CARGO_BIN_EXE_breakout"));
    let before = std::fs::read(runtime).unwrap();
    runs_sealed_view_of(runtime, runtime, copy);
    assert_eq!(std::fs::read(runtime).unwrap(), before);
}

#[rstest::rstest]
fn the_tool_runs_sandbox_from_a_sealed_view_of_the_breakout_beside_it(
    #[values(false, true)] copy: bool,
) {
    let runtime = Path::new(env!("CARGO_BIN_EXE_breakout"));
    let before = std::fs::read(runtime).unwrap();
    runs_sealed_view_of(
        Path::new(env!("CARGO_BIN_EXE_breakout-harness")),
        runtime,
        copy,
    );
    assert_eq!(std::fs::read(runtime).unwrap(), before);
}

#[rstest::rstest]
fn without_breakout_beside_it_the_tool_seals_itself(#[values(false, true)] copy: bool) {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("breakout-harness");
    std::fs::copy(env!("CARGO_BIN_EXE_breakout-harness"), &bin).unwrap();
    let before = std::fs::read(&bin).unwrap();
    runs_sealed_view_of(&bin, &bin, copy);
    assert_eq!(std::fs::read(&bin).unwrap(), before);
}

/// A sealed program started with another build's marker refuses to run (a stale breakout
/// next to a new breakout-harness), with exit 125 and one line saying why.
#[test]
fn a_runtime_of_another_build_refuses_to_start() {
    let o = Command::new(env!("CARGO_BIN_EXE_breakout"))
        .args(["sandbox", "--profile", "none", "--", "/bin/true"])
        .env(
            breakout_runtime::sealed_exe::MARKER_ENV,
            "0.0.0-0000000000000000",
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(err.contains("another build"), "{err}");
}

/// The sealed process trusts its executable, not the marker: started with the marker from an
/// overlay that has an upper layer and is mounted read-only (attached, so it could be remounted
/// read-write), it refuses to run.
#[test]
fn a_runtime_on_an_attached_read_only_overlay_refuses_to_start() {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    if !overlay_possible() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let [lower, upper, work, merged] = ["lower", "upper", "work", "merged"].map(|d| {
        let p = dir.path().join(d);
        std::fs::create_dir(&p).unwrap();
        p
    });
    std::fs::copy(env!("CARGO_BIN_EXE_breakout"), lower.join("breakout")).unwrap();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        MsFlags::MS_RDONLY,
        Some(opts.as_str()),
    )
    .unwrap();
    let o = Command::new(merged.join("breakout"))
        .args(["sandbox", "--profile", "none", "--", "/bin/true"])
        .env(
            breakout_runtime::sealed_exe::MARKER_ENV,
            breakout_harness::BUILD_ID,
        )
        .output();
    umount2(&merged, MntFlags::MNT_DETACH).unwrap();
    let o = o.unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(
        err.contains("neither a sealed memfd nor a read-only overlay"),
        "{err}"
    );
}

/// Whether `breakout sandbox` re-executed through a sealed view follows from the file and the
/// sandbox (sealed_exe::seal_decision): a sandbox with a user namespace runs from a root-owned
/// binary only the owner may write; a binary the sandbox's ids could write (world- or
/// group-writable, or owned by an id of its range) is sealed, as is every sandbox without a user
/// namespace. The trace line is what depends on the rule: the payload, which sees its supervisor
/// (pid-ns off) and tries to append to it, is refused in every case by the supervisor's own
/// non-dumpability (the ptrace access check on /proc/PID/exe) before the file's permissions or
/// the seal come into play; the binary must stay as it was all the same.
#[rstest::rstest]
#[case::root_owned_with_a_user_namespace(0o755, 0, "namespaces", false)]
#[case::world_writable(0o757, 0, "namespaces", true)]
#[case::group_writable(0o775, 0, "namespaces", true)]
#[case::owned_by_the_sandboxs_root(0o755, 100_000, "namespaces", true)]
#[case::no_user_namespace(0o755, 0, "none", true)]
fn the_seal_is_skipped_only_where_no_one_in_the_sandbox_may_write_the_binary(
    #[case] mode: u32,
    #[case] owner: u32,
    #[case] profile: &str,
    #[case] sealed: bool,
) {
    use std::os::unix::fs::PermissionsExt;
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (CI runs as root)"
    );
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("breakout");
    std::fs::copy(env!("CARGO_BIN_EXE_breakout"), &bin).unwrap();
    std::os::unix::fs::chown(&bin, Some(owner), Some(0)).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(mode)).unwrap();
    let before = std::fs::read(&bin).unwrap();
    let o = Command::new(&bin)
        .args(["sandbox", "--profile", profile, "--disable", "pid-ns"])
        .args(["--", "/bin/sh", "-c", PROBE])
        .env("BREAKOUT_TRACE_STEPS", "1")
        .env_remove(breakout_runtime::sealed_exe::COPY_ENV)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{out} {err}");
    assert_eq!(err.contains("running sealed"), sealed, "{err}");
    assert_eq!(
        err.contains("running from the binary on disk"),
        !sealed,
        "{err}"
    );
    assert!(!out.contains("WRITTEN"), "{out}");
    assert_eq!(std::fs::read(&bin).unwrap(), before);
}
