//! kernel-log: read a marker the outside wrote into the kernel log.

use crate::kit::{
    judge_by_secret, parse_or_report, plant_kmsg_canary, read_kmsg_canary, token_after,
};
use crate::world::World;
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use nix::errno::Errno;
use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// What precedes the secret in the outside's kernel-log line.
pub const PREFIX: &str = "breakout-kernel-log-canary:";

/// SYSLOG_ACTION_READ_ALL and SYSLOG_ACTION_SIZE_BUFFER of syslog(2).
const SYSLOG_ACTION_READ_ALL: i32 = 3;
const SYSLOG_ACTION_SIZE_BUFFER: i32 = 10;

static META: ProbeMeta = ProbeMeta {
    id: "kernel-log",
    title: "Read the kernel log",
    technique: "The kernel log holds what drivers, the kernel and privileged daemons write, \
        including addresses and secrets that leak into messages. The outside writes a line with \
        a fresh secret to /dev/kmsg; the inside reads the ring with syslog(SYSLOG_ACTION_READ_ALL) \
        and through /dev/kmsg. With kernel.dmesg_restrict=1 (Debian's default) both need \
        CAP_SYSLOG in the initial user namespace.",
    oracle: "The inside reports the secret of the outside's kernel-log line.",
    layers: &[
        Layer::Caps,
        Layer::UserNs,
        Layer::Uid,
        Layer::Seccomp,
        Layer::MountNs,
    ],
    references: &[
        "amicontained (syslog as a blocked syscall)",
        "kernel.dmesg_restrict (Documentation/admin-guide/sysctl/kernel.rst)",
    ],
    class: ProbeClass::Plain,
};

pub struct KernelLog;

struct State {
    secret: String,
}

impl Probe for KernelLog {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let (tag, secret) = plant_kmsg_canary(world, META.id, PREFIX, "klog")?;
        Ok(Arrangement::new(
            vec![kv("kmsg", "/dev/kmsg"), kv("tag", tag)],
            State { secret },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        if let Some((kmsg, tag)) = parse_or_report(&mut steps, args, |a| {
            Ok((a.str("kmsg")?.to_string(), a.str("tag")?.to_string()))
        }) {
            attempt(&mut steps, Path::new(&kmsg), &format!("{PREFIX}{tag}:"));
        }
        steps.finish()
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        judge_by_secret(
            &arrangement,
            run,
            META.id,
            |s: &State| &s.secret,
            "the outside's kernel-log secret",
        )
    }
}

/// Reads the ring by syslog(2) and by the device; `marker` precedes the secret.
fn attempt(steps: &mut Steps, kmsg: &Path, marker: &str) {
    // SAFETY: SIZE_BUFFER takes no buffer.
    let size = steps.call(
        "size of the log ring",
        "syslog(SYSLOG_ACTION_SIZE_BUFFER)",
        || {
            Errno::result(unsafe {
                libc::klogctl(SYSLOG_ACTION_SIZE_BUFFER, std::ptr::null_mut(), 0)
            })
        },
    );
    let size = size.filter(|&n| n > 0).unwrap_or(1 << 20) as usize;
    let mut buf = vec![0u8; size];
    let read = steps.call(
        "read the whole ring",
        "syslog(SYSLOG_ACTION_READ_ALL)",
        || {
            // SAFETY: buf is writable for buf.len() bytes, the length we pass.
            Errno::result(unsafe {
                libc::klogctl(
                    SYSLOG_ACTION_READ_ALL,
                    buf.as_mut_ptr().cast(),
                    buf.len() as i32,
                )
            })
        },
    );
    if let Some(n) = read {
        let text = String::from_utf8_lossy(&buf[..n as usize]);
        match token_after(&text, marker) {
            Some(token) => steps.data(token),
            None => steps.data("no canary line in the ring"),
        }
    }
    let opened = steps.io(
        "open the kernel log device",
        format!("open({}, O_RDONLY|O_NONBLOCK)", kmsg.display()),
        || {
            fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(kmsg)
        },
    );
    if let Some(mut file) = opened {
        read_kmsg_canary(
            steps,
            &mut file,
            "read every record",
            format!("read({})", kmsg.display()),
            marker,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_arguments_are_reported() {
        let report = KernelLog.attempt(&["/dev/kmsg".to_string()]);
        assert_eq!(report.steps[0].action, "parse arguments");
    }

    #[test]
    fn canary_token_is_extracted_from_a_ring() {
        let ring = format!(
            "<6>[1.0] x\n<12>[2.0] breakout: {PREFIX}klog-1:abc123\n<12>[2.1] breakout: {PREFIX}klog-2:def456\n"
        );
        let mine = format!("{PREFIX}klog-1:");
        assert_eq!(token_after(&ring, &mine).as_deref(), Some("abc123"));
    }
}
