//! mknod-device: make a device node for the kernel log and read it.

use crate::kit::{
    judge_by_secret, parse_or_report, plant_kmsg_canary, read_kmsg_canary, DeviceNode,
};
use crate::world::World;
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use nix::sys::stat::SFlag;

/// What precedes the secret in the outside's kernel-log line.
pub const PREFIX: &str = "breakout-mknod-canary:";

/// /dev/kmsg is character device 1:11 ("mem" major, kmsg minor).
const KMSG_MAJOR: u64 = 1;
const KMSG_MINOR: u64 = 11;

static META: ProbeMeta = ProbeMeta {
    id: "mknod-device",
    title: "Create a device node and read the device",
    technique: "A device node is only a name for a (major, minor) number: whoever can mknod(2) \
        can reach any driver the sandbox's /dev leaves out, such as disks, /dev/mem or the kernel \
        log. The inside makes character device 1:11 (/dev/kmsg) in the first writable directory \
        that allows devices (/tmp, /dev/shm, /dev) and reads the outside's secret from the \
        kernel log through it. mknod of devices needs \
        CAP_MKNOD in the initial user namespace; opening needs a filesystem mounted without \
        nodev; reading the log needs CAP_SYSLOG under dmesg_restrict.",
    oracle: "The inside reports the secret of the outside's kernel-log line, read through the \
        node it created.",
    layers: &[
        Layer::Caps,
        Layer::UserNs,
        Layer::FsHardening,
        Layer::MountNs,
        Layer::Uid,
        Layer::Seccomp,
        Layer::Landlock,
    ],
    references: &[
        "CDK lxcfs_rw_mknod exploit",
        "runc/Docker device cgroup and nodev mounts",
    ],
    class: ProbeClass::Plain,
};

pub struct MknodDevice;

struct State {
    secret: String,
}

impl Probe for MknodDevice {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let (tag, secret) = plant_kmsg_canary(world, META.id, PREFIX, "mknod")?;
        // /tmp and /dev/shm are usually nodev; /dev cannot be, or no device would open.
        Ok(Arrangement::new(
            vec![kv("dirs", "/tmp,/dev/shm,/dev"), kv("tag", tag)],
            State { secret },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        if let Some((dirs, tag)) = parse_or_report(&mut steps, args, |a| {
            Ok((a.str("dirs")?.to_string(), a.str("tag")?.to_string()))
        }) {
            let marker = format!("{PREFIX}{tag}:");
            KMSG_NODE.read_through(&mut steps, &dirs, |steps, mut log| {
                read_kmsg_canary(
                    steps,
                    &mut log,
                    "read the kernel log through it",
                    "read(node)",
                    &marker,
                )
            });
        }
        steps.finish()
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        judge_by_secret(
            &arrangement,
            run,
            META.id,
            |s: &State| &s.secret,
            "the kernel-log secret read through a new node",
        )
    }
}

/// The node the inside makes for the kernel log (opened O_NONBLOCK: reading stops at the end of
/// the ring instead of waiting for the next record).
static KMSG_NODE: DeviceNode = DeviceNode {
    name: "breakout-kmsg",
    kind: SFlag::S_IFCHR,
    major: KMSG_MAJOR,
    minor: KMSG_MINOR,
    create: "create a device node",
    open: "open the device",
    flags: libc::O_NONBLOCK,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_arguments_are_reported() {
        let report = MknodDevice.attempt(&["dir=/tmp".into()]);
        assert_eq!(report.steps[0].action, "parse arguments");
        assert!(report.steps[0].data.as_deref().unwrap().contains("dirs"));
    }
}
