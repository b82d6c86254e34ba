//! The inside half's wrapper: runs the file probe's executable in the sandbox and turns what it
//! prints into the steps of the report.

use crate::{InsideReport, Steps};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The inside half's wrapper (runs in the sandbox, inside `breakout-probe ID ARGS`): runs the
/// executable with the arguments, every stdout line becomes a step (evidence for the oracle; a
/// line ending in ` = ENAME` is a failed step with that errno), then one step with its exit.
pub fn run_inside_half(
    id: &str,
    program: &Path,
    args: &[String],
    timeout: Duration,
) -> InsideReport {
    let mut steps = Steps::new(id);
    let shown = format!("execve({}, ...)", program.display());
    let child = crate::kit::io_keep(&mut steps, "start the inside half", shown, || {
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
    });
    let Some(mut child) = child else {
        return steps.finish();
    };
    let stdout = crate::pipe::drain(child.stdout.take());
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => break None,
        }
    };
    let out = stdout.collect();
    for line in String::from_utf8_lossy(&out).lines() {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        record_line(&mut steps, line);
    }
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(s) if timed_out => {
            steps.note(
                "the inside half ran past its timeout",
                format!("killed after {} s", timeout.as_secs()),
            );
            if let Some(sig) = s.signal() {
                steps.signal(sig);
            }
        }
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => {
                steps.call("the inside half exited", format!("exit({code})"), || {
                    Ok(i64::from(code))
                });
            }
            (None, Some(sig)) => {
                steps.note("the inside half was killed", format!("signal {sig}"));
                steps.signal(sig);
            }
            (None, None) => steps.note("the inside half ended", "no exit status"),
        },
        None => steps.note("the inside half ended", "waiting for it failed"),
    }
    steps.finish()
}

/// One line of the inside half's stdout as a step.
fn record_line(steps: &mut Steps, line: &str) {
    if let Some((what, errno)) = line.rsplit_once(" = ") {
        if let Some(n) = errno_number(errno.trim()) {
            let what = what.trim().to_string();
            steps.call::<()>("the inside half reported", what, || {
                Err(nix::errno::Errno::from_raw(n))
            });
            return;
        }
    }
    // A successful step named after where the line came from, so a reason that quotes the step
    // reads "came back from `write(stdout)`".
    steps.call("the inside half printed", "write(stdout)", || Ok(0i64));
    steps.data(line.to_string());
}

/// The number of an errno name (`EPERM`), for the names a script is likely to print.
fn errno_number(name: &str) -> Option<i32> {
    let table: BTreeMap<&str, i32> = [
        ("EPERM", libc::EPERM),
        ("ENOENT", libc::ENOENT),
        ("ESRCH", libc::ESRCH),
        ("EINTR", libc::EINTR),
        ("EIO", libc::EIO),
        ("E2BIG", libc::E2BIG),
        ("EBADF", libc::EBADF),
        ("ECHILD", libc::ECHILD),
        ("EAGAIN", libc::EAGAIN),
        ("ENOMEM", libc::ENOMEM),
        ("EACCES", libc::EACCES),
        ("EFAULT", libc::EFAULT),
        ("EBUSY", libc::EBUSY),
        ("EEXIST", libc::EEXIST),
        ("ENODEV", libc::ENODEV),
        ("ENOTDIR", libc::ENOTDIR),
        ("EISDIR", libc::EISDIR),
        ("EINVAL", libc::EINVAL),
        ("EMFILE", libc::EMFILE),
        ("ENOSPC", libc::ENOSPC),
        ("EROFS", libc::EROFS),
        ("ENOSYS", libc::ENOSYS),
        ("ENOTSUP", libc::ENOTSUP),
        ("EOPNOTSUPP", libc::EOPNOTSUPP),
        ("ECONNREFUSED", libc::ECONNREFUSED),
        ("ENETUNREACH", libc::ENETUNREACH),
        ("ETIMEDOUT", libc::ETIMEDOUT),
    ]
    .into_iter()
    .collect();
    table.get(name).copied()
}
