//! Helpers shared by the catalog probes: argument parsing for the inside halves, the common
//! verdict logic of the outside halves, and small outside tools (kernel-log cursor, sysctl
//! read/write, a watcher thread that looks at kernel state while the payload runs, a scratch
//! directory that a sandbox's root can see).

use crate::driver::settle;
use crate::report::Steps;
use crate::world::{Planted, World};
use crate::{ArgError, Args, Arrangement, Judgement, ProbeError, RunObservation};
use std::any::Any;
use std::fs;
use std::io::{self, ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum UtilError {
    #[error("{path}: {what}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl UtilError {
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        UtilError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

/// An arrange step that failed with an I/O error.
pub fn arrange_err(probe: &'static str, step: impl Into<String>, e: io::Error) -> ProbeError {
    ProbeError::Arrange {
        probe,
        step: step.into(),
        source: e,
    }
}

/// A feature the probe needs is absent here.
pub fn unsupported(probe: &'static str, reason: impl Into<String>) -> ProbeError {
    ProbeError::Unsupported {
        probe,
        reason: reason.into(),
    }
}

impl From<UtilError> for io::Error {
    fn from(e: UtilError) -> io::Error {
        match e {
            UtilError::Io { source, .. } => source,
        }
    }
}

/// Builds the arrangement handed to the driver.
pub fn arrangement(args: Vec<String>, state: impl Any + Send) -> Arrangement {
    Arrangement::new(args, state)
}

/// Parses the inside's `key=value` arguments with `parse`; on failure records the error as a
/// `parse arguments` step and returns None, so the outside judges the run inconclusive.
pub fn parse_or_report<T>(
    steps: &mut Steps,
    args: &[String],
    parse: impl FnOnce(&Args) -> Result<T, ArgError>,
) -> Option<T> {
    match Args::parse(args).and_then(|a| parse(&a)) {
        Ok(v) => Some(v),
        Err(e) => {
            steps.bad_args(e.to_string());
            None
        }
    }
}

/// Like [`Steps::io`] for a value that is no syscall result (a stream, a file): the step records
/// success as 0, and the value comes back to the caller.
pub fn io_keep<T>(
    steps: &mut Steps,
    action: &str,
    syscall: impl Into<String>,
    f: impl FnOnce() -> io::Result<T>,
) -> Option<T> {
    let mut out = None;
    steps.io(action, syscall, || {
        out = Some(f()?);
        Ok(())
    });
    out
}

/// Reads a whole file as one step; its (trimmed, lossy UTF-8) content becomes the step's data.
pub fn read_step(steps: &mut Steps, action: &str, path: &Path) -> Option<String> {
    let mut content = None;
    steps.io(action, format!("read({})", path.display()), || {
        let bytes = fs::read(path)?;
        let n = bytes.len();
        content = Some(String::from_utf8_lossy(&bytes).trim().to_string());
        Ok(n)
    });
    if let Some(text) = &content {
        steps.data(text.clone());
    }
    content
}

/// What the outside oracle saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Oracle {
    /// The effect happened for real.
    Hit(String),
    /// The oracle looked and saw nothing.
    Miss(String),
    /// The oracle cannot tell (its own observation failed).
    Undecided(String),
}

/// Turns the oracle's observation into a verdict. Only the oracle can say `escaped`; a miss is
/// `blocked` only when the inside really ran its attempt: bad arguments make it inconclusive, and
/// [`crate::driver::settle`] turns timeouts, setup failures and reportless deaths without a
/// layer's evidence into `inconclusive` as well.
pub fn conclude(oracle: Oracle, run: &RunObservation) -> Judgement {
    let judgement = match oracle {
        Oracle::Hit(reason) => Judgement::escaped(reason),
        Oracle::Undecided(reason) => Judgement::inconclusive(reason),
        Oracle::Miss(reason) => match run.inside {
            Some(report) => match report
                .steps
                .iter()
                .find(|s| s.action == "parse arguments" && s.errno.is_some())
            {
                Some(bad) => Judgement::inconclusive(format!(
                    "{reason}; the inside rejected its arguments: {}",
                    bad.data.as_deref().unwrap_or("?")
                )),
                None => Judgement::blocked(format!("{reason}; inside: {}", report.failures())),
            },
            None => Judgement::blocked(reason),
        },
    };
    settle(judgement, run)
}

/// The oracle for "the inside reported a secret it could only get by escaping".
pub fn secret_oracle(run: &RunObservation, secret: &str, what: &str) -> Oracle {
    match run.inside.and_then(|r| r.step_with(secret)) {
        Some(step) => Oracle::Hit(format!("{what} read by the inside ({})", step.syscall)),
        None => Oracle::Miss(format!("{what} not in the inside's report")),
    }
}

/// The whole judgement of a probe whose only oracle is a secret the outside planted: escaped
/// when the inside's report holds the secret (taken from the arrangement's state of type `S` by
/// `secret`), otherwise [`conclude`]'s verdict; inconclusive when the state is not an `S`. Many
/// catalog probes judge exactly this way, so they share one place that does it.
pub fn judge_by_secret<S: Any>(
    arrangement: &Arrangement,
    run: &RunObservation,
    probe: &str,
    secret: impl FnOnce(&S) -> &str,
    what: &str,
) -> Judgement {
    let Some(state) = arrangement.state::<S>() else {
        return Judgement::inconclusive(format!("{probe}: arrangement state of the wrong type"));
    };
    conclude(secret_oracle(run, secret(state), what), run)
}

/// Finds `prefix` in `haystack` and returns the token after it (up to the first character that
/// is not an ASCII letter, digit, `-` or `_`); the last occurrence wins (the newest record).
pub fn token_after(haystack: &str, prefix: &str) -> Option<String> {
    let start = haystack.rfind(prefix)? + prefix.len();
    let token: String = haystack[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!token.is_empty()).then_some(token)
}

/// Attempts run in parallel (the harness has several workers, ablation runs overlap). A probe
/// whose oracle is machine-wide state that another attempt of it could change or see (the kernel
/// log's SysRq output, the clock, core_pattern, ctrl-alt-del, the module list) holds this token
/// from `arrange` until its state is dropped after `judge`, so such attempts run one at a time.
pub struct Exclusive(());

static EXCLUSIVE_BUSY: Mutex<bool> = Mutex::new(false);
static EXCLUSIVE_FREE: std::sync::Condvar = std::sync::Condvar::new();

impl Exclusive {
    /// Waits until no other holder is left, then holds the token.
    pub fn acquire() -> Exclusive {
        let mut busy = EXCLUSIVE_BUSY.lock().unwrap_or_else(|p| p.into_inner());
        while *busy {
            busy = EXCLUSIVE_FREE.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
        *busy = true;
        Exclusive(())
    }
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        *EXCLUSIVE_BUSY.lock().unwrap_or_else(|p| p.into_inner()) = false;
        EXCLUSIVE_FREE.notify_one();
    }
}

/// A reader of /dev/kmsg positioned at the end of the ring when created: `read_new` returns only
/// the records written since (sysrq output, kernel messages caused by the attempt).
pub struct KmsgCursor {
    file: fs::File,
}

impl KmsgCursor {
    pub fn at_end() -> io::Result<KmsgCursor> {
        let mut file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")?;
        file.seek(SeekFrom::End(0))?;
        Ok(KmsgCursor { file })
    }

    /// The messages (text after `;`) of every record written since the last read.
    pub fn read_new(&mut self) -> io::Result<String> {
        read_kmsg_records(&mut self.file)
    }
}

/// Reads every available record from an O_NONBLOCK /dev/kmsg descriptor, one message per line.
/// The one parser of kmsg records ("prio,seq,time,flags;message\n"): [`KmsgCursor`], the probes
/// that read the log through a device, and the world's whole-ring reader all go through it, so
/// they agree on what a message is.
pub fn read_kmsg_records(file: &mut fs::File) -> io::Result<String> {
    let mut out = String::new();
    let mut record = vec![0u8; 8192];
    loop {
        match file.read(&mut record) {
            Ok(0) => break,
            Ok(n) => {
                let text = String::from_utf8_lossy(&record[..n]);
                let message = text.split_once(';').map(|(_, m)| m).unwrap_or(&text);
                out.push_str(message.lines().next().unwrap_or(""));
                out.push('\n');
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            // EPIPE: the record under the cursor was overwritten; the next read goes on.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Plants one attempt's canary file: a fresh secret in a world file named after `base`, readable
/// by root only (0600), so that reading it from the sandbox proves an escape. Returns the file
/// (the state keeps it planted until judged) and the secret. Shared by the catalog probes that try
/// to reach an outside file by another road (chroot, io_uring, a file handle, /proc/PID/root).
pub fn plant_canary_file(
    world: &World,
    probe: &'static str,
    base: &str,
) -> Result<(Planted, String), ProbeError> {
    let secret = world.fresh_secret().map_err(ProbeError::world(probe))?;
    let file = world
        .secret_file(base, &secret, 0o600)
        .map_err(ProbeError::world(probe))?;
    Ok((file, secret))
}

/// Plants one attempt's kernel-log canary: a fresh secret written to /dev/kmsg after
/// `{prefix}{tag}:`, where the tag (from `kind`) tells this attempt's line from those of attempts
/// running beside it. Returns (tag, secret). Shared by the probes whose oracle is a kernel-log
/// secret (kernel-log, mknod-device), so both plant it the same way.
pub fn plant_kmsg_canary(
    world: &World,
    probe: &'static str,
    prefix: &str,
    kind: &str,
) -> Result<(String, String), ProbeError> {
    let secret = world.fresh_secret().map_err(ProbeError::world(probe))?;
    let tag = world.unique(kind);
    world
        .kmsg_write(&format!("{prefix}{tag}:{secret}"))
        .map_err(ProbeError::world(probe))?;
    Ok((tag, secret))
}

/// Reads every record from an open kernel-log device as one step and records the token after
/// `marker` (or that there is none). The inside halves that reach /dev/kmsg (by its path, or
/// through a device node of their own) look for their canary this one way.
pub fn read_kmsg_canary(
    steps: &mut Steps,
    file: &mut fs::File,
    action: &str,
    syscall: impl Into<String>,
    marker: &str,
) {
    let mut text = String::new();
    if steps
        .io(action, syscall, || {
            text = read_kmsg_records(file)?;
            Ok(text.len())
        })
        .is_some()
    {
        match token_after(&text, marker) {
            Some(token) => steps.data(token),
            None => steps.data("no canary record"),
        }
    }
}

/// Reads a sysctl or other small kernel file, trimmed.
pub fn read_trimmed(path: &Path) -> Result<String, UtilError> {
    fs::read_to_string(path)
        .map(|s| s.trim_end_matches('\n').to_string())
        .map_err(|e| UtilError::io("reading", path, e))
}

/// Writes a value to a sysctl or other kernel file (no O_CREAT, no truncation games).
pub fn write_existing(path: &Path, value: &str) -> Result<(), UtilError> {
    use std::io::Write;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| UtilError::io("opening for writing", path, e))?;
    f.write_all(value.as_bytes())
        .map_err(|e| UtilError::io("writing", path, e))
}

/// Restores a sysctl to its value from before the attempt when dropped (also when judge never
/// runs), so a probe that changed global state cannot leave it changed.
pub struct SysctlRestore {
    path: PathBuf,
    original: String,
}

impl SysctlRestore {
    pub fn capture(path: &Path) -> Result<SysctlRestore, UtilError> {
        Ok(SysctlRestore {
            path: path.to_path_buf(),
            original: read_trimmed(path)?,
        })
    }

    pub fn original(&self) -> &str {
        &self.original
    }

    pub fn current(&self) -> Result<String, UtilError> {
        read_trimmed(&self.path)
    }

    /// Writes the original value back if the current one differs.
    pub fn restore(&self) -> Result<(), UtilError> {
        if self.current()? != self.original {
            write_existing(&self.path, &self.original)?;
        }
        Ok(())
    }
}

impl Drop for SysctlRestore {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            // Drop cannot return the error; the guest's log is where a failed restore is seen.
            eprintln!("breakout: could not restore {}: {e}", self.path.display());
        }
    }
}

/// A thread that polls some kernel state every `interval` while the payload runs and remembers
/// the first thing it found. Needed where the effect lives only as long as the payload (a BPF
/// program, a userfaultfd object).
pub struct Watcher {
    stop: Arc<AtomicBool>,
    found: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    pub fn start(
        interval: Duration,
        mut look: impl FnMut() -> Option<String> + Send + 'static,
    ) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let found = Arc::new(Mutex::new(None));
        let (stop2, found2) = (stop.clone(), found.clone());
        let thread = std::thread::spawn(move || loop {
            // One last look after the stop flag, so a hit just before the end is not missed.
            let last = stop2.load(Ordering::Relaxed);
            if let Some(hit) = look() {
                if let Ok(mut slot) = found2.lock() {
                    slot.get_or_insert(hit);
                }
                return;
            }
            if last {
                return;
            }
            std::thread::sleep(interval);
        });
        Watcher {
            stop,
            found,
            thread: Some(thread),
        }
    }

    /// Stops the thread and returns what it found.
    pub fn finish(mut self) -> Option<String> {
        self.stop_thread();
        self.found.lock().ok().and_then(|slot| slot.clone())
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// The static busybox of the guest (its applets pick their job from argv[0]), used where a probe
/// plants an executable of its own.
pub fn busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .map(Path::to_path_buf)
}

/// A name for a scratch file or directory the inside creates in a directory other attempts may
/// share (the guest's /tmp or /dev when there is no mount namespace). The pid alone is not
/// enough: in a pid namespace every attempt is pid 1.
pub fn scratch_name(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    let salt = match getrandom::fill(&mut bytes) {
        Ok(()) => hex(&bytes),
        // Without the random source, the clock still separates attempts that overlap.
        Err(_) => format!(
            "{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ),
    };
    format!("{prefix}-{}-{salt}", std::process::id())
}

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses lower- or upper-case hex into bytes.
pub fn unhex(name: &str, s: &str) -> Result<Vec<u8>, String> {
    if s.len() % 2 != 0 {
        return Err(format!("argument <{name}>: odd number of hex digits"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&s[i..i + 2], 16)
                .map_err(|e| format!("argument <{name}> = {s:?}: {e}"))
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod testing {
    //! Synthetic observations for judge tests.
    use crate::report::{InsideReport, Step};
    use crate::{Limits, RunObservation};
    use breakout_runtime::{ExitKind, Outcome};

    pub fn report_with(data: &[&str]) -> InsideReport {
        InsideReport {
            probe: "test".into(),
            steps: data
                .iter()
                .map(|d| Step {
                    action: "step".into(),
                    syscall: "read(...)".into(),
                    result: Some(0),
                    data: Some(d.to_string()),
                    ..Step::default()
                })
                .collect(),
        }
    }

    pub fn failed_report() -> InsideReport {
        InsideReport {
            probe: "test".into(),
            steps: vec![Step {
                action: "attempt".into(),
                syscall: "open(...)".into(),
                errno: Some(libc::EPERM),
                errno_name: Some("EPERM".into()),
                ..Step::default()
            }],
        }
    }

    pub static LIMITS: Limits = Limits {
        pids_max: None,
        memory_max: None,
        nproc: None,
        nofile: None,
    };

    pub fn observe<'a>(
        inside: Option<&'a InsideReport>,
        outcome: Option<&'a Outcome>,
    ) -> RunObservation<'a> {
        RunObservation {
            outcome,
            inside,
            stderr: "",
            timed_out: false,
            limits: &LIMITS,
        }
    }

    /// A world in a temporary directory (the test binary stands in for breakout-probe).
    pub fn temp_world() -> (tempfile::TempDir, crate::world::World) {
        let dir = tempfile::tempdir().unwrap();
        let bin = std::env::current_exe().unwrap();
        let world = crate::world::World::build(dir.path(), &bin).unwrap();
        (dir, world)
    }

    /// Arranges `probe` in `world`, lets `secret_of` pick the expected secret from the state,
    /// and judges three synthetic reports: one carrying the secret (must escape), one carrying
    /// a different secret and one with only failed steps (both must not).
    pub fn judge_needs_the_secret<S: 'static>(
        probe: &dyn crate::Probe,
        world: &crate::world::World,
        secret_of: impl Fn(&S) -> String,
    ) {
        use crate::Verdict;
        let verdict = |data: Option<&str>| {
            let arrangement = probe.arrange(world, &LIMITS).unwrap();
            let secret = secret_of(arrangement.state::<S>().expect("state type"));
            let report = match data {
                Some("SECRET") => report_with(&["noise", &secret]),
                Some(other) => report_with(&[other]),
                None => failed_report(),
            };
            let run = observe(Some(&report), None);
            probe.judge(world, arrangement, &run).verdict
        };
        assert_eq!(verdict(Some("SECRET")), Verdict::Escaped);
        assert_eq!(
            verdict(Some("0123456789abcdef0123456789abcdef")),
            Verdict::Blocked
        );
        assert_eq!(verdict(None), Verdict::Blocked);
    }

    pub fn signaled(signal: i32) -> Outcome {
        Outcome {
            status: ExitKind::Signaled {
                signal,
                core_dumped: false,
            },
            cgroup: None,
            setup_failure: None,
            landlock: None,
            seccomp_kill: None,
            recording: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::Verdict;

    #[test]
    fn only_a_hit_escapes() {
        let report = report_with(&["secret=abc"]);
        let run = observe(Some(&report), None);
        assert_eq!(
            conclude(Oracle::Hit("seen".into()), &run).verdict,
            Verdict::Escaped
        );
        assert_eq!(
            conclude(Oracle::Miss("not seen".into()), &run).verdict,
            Verdict::Blocked
        );
        assert_eq!(
            conclude(Oracle::Undecided("?".into()), &run).verdict,
            Verdict::Inconclusive
        );
    }

    #[test]
    fn a_miss_without_report_is_inconclusive_unless_sigsys() {
        let run = observe(None, None);
        assert_eq!(
            conclude(Oracle::Miss("x".into()), &run).verdict,
            Verdict::Inconclusive
        );
        let sys = signaled(libc::SIGSYS);
        let run = observe(None, Some(&sys));
        let j = conclude(Oracle::Miss("x".into()), &run);
        assert_eq!(j.verdict, Verdict::Blocked);
        assert!(j.reason.contains("SIGSYS"), "{}", j.reason);
        let segv = signaled(libc::SIGSEGV);
        let run = observe(None, Some(&segv));
        assert_eq!(
            conclude(Oracle::Miss("x".into()), &run).verdict,
            Verdict::Inconclusive
        );
    }

    #[test]
    fn a_miss_after_timeout_or_bad_args_is_inconclusive() {
        let report = failed_report();
        let mut run = observe(Some(&report), None);
        run.timed_out = true;
        assert_eq!(
            conclude(Oracle::Miss("x".into()), &run).verdict,
            Verdict::Inconclusive
        );
        let mut steps = Steps::new("t");
        steps.bad_args("expected 1 argument");
        let bad = steps.finish();
        let run = observe(Some(&bad), None);
        let j = conclude(Oracle::Miss("x".into()), &run);
        assert_eq!(j.verdict, Verdict::Inconclusive);
        assert!(j.reason.contains("expected 1 argument"), "{}", j.reason);
    }

    #[test]
    fn a_hit_wins_even_after_a_timeout() {
        let mut run = observe(None, None);
        run.timed_out = true;
        assert_eq!(
            conclude(Oracle::Hit("victim dead".into()), &run).verdict,
            Verdict::Escaped
        );
    }

    #[test]
    fn secret_oracle_needs_the_exact_secret() {
        let report = report_with(&["nothing here", "token=0123abcd"]);
        let run = observe(Some(&report), None);
        assert!(matches!(
            secret_oracle(&run, "0123abcd", "the canary"),
            Oracle::Hit(_)
        ));
        assert!(matches!(
            secret_oracle(&run, "0123abce", "the canary"),
            Oracle::Miss(_)
        ));
        assert!(matches!(secret_oracle(&run, "", "x"), Oracle::Miss(_)));
    }

    #[test]
    fn bad_arguments_are_reported_not_panicked() {
        let mut steps = Steps::new("t");
        let words = vec!["pid".to_string()];
        let got = parse_or_report(&mut steps, &words, |a| a.get::<i32>("pid"));
        assert!(got.is_none());
        let report = steps.finish();
        assert_eq!(report.steps[0].action, "parse arguments");
        assert!(report.steps[0].data.as_deref().unwrap().contains("`pid`"));
        let mut steps = Steps::new("t");
        let words = vec!["pid=12".to_string()];
        assert_eq!(
            parse_or_report(&mut steps, &words, |a| a.get::<i32>("pid")),
            Some(12)
        );
    }

    #[test]
    fn tokens_after_prefixes() {
        let log = "a marker:old1\nb marker:new2 tail\n";
        assert_eq!(token_after(log, "marker:"), Some("new2".into()));
        assert_eq!(token_after(log, "absent:"), None);
        assert_eq!(token_after("marker:", "marker:"), None);
    }

    #[test]
    fn scratch_names_differ() {
        let a = scratch_name("breakout-x");
        assert!(a.starts_with("breakout-x-"), "{a}");
        assert_ne!(a, scratch_name("breakout-x"));
    }

    #[test]
    fn hex_round_trips() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(unhex("h", &hex(&bytes)).unwrap(), bytes);
        assert!(unhex("h", "abc").is_err());
        assert!(unhex("h", "zz").unwrap_err().contains("<h>"));
    }

    #[test]
    fn exclusive_holders_never_overlap() {
        use std::sync::atomic::AtomicUsize;
        static INSIDE: AtomicUsize = AtomicUsize::new(0);
        static OVERLAPS: AtomicUsize = AtomicUsize::new(0);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..20 {
                        let token = Exclusive::acquire();
                        if INSIDE.fetch_add(1, Ordering::SeqCst) != 0 {
                            OVERLAPS.fetch_add(1, Ordering::SeqCst);
                        }
                        std::thread::sleep(Duration::from_micros(200));
                        INSIDE.fetch_sub(1, Ordering::SeqCst);
                        drop(token);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(OVERLAPS.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn watcher_reports_what_it_saw() {
        let mut n = 0;
        let w = Watcher::start(Duration::from_millis(1), move || {
            n += 1;
            (n == 3).then(|| "third look".to_string())
        });
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(w.finish(), Some("third look".into()));
        let w = Watcher::start(Duration::from_millis(1), || None);
        assert_eq!(w.finish(), None);
    }
}
