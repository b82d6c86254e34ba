//! block-device: make a node for a disk of the outside and read the disk.
//!
//! mknod-device reads the kernel log through a new node, which also needs CAP_SYSLOG (the log is
//! restricted): a profile that drops that capability blocks it whether or not the sandbox
//! polices devices. A disk needs nothing but the open, so this probe asks only the question
//! "can the payload reach a device its /dev leaves out?" (Docker answers it with its device
//! cgroup, bubblewrap with nodev mounts).

use crate::kit::{judge_by_secret, parse_or_report, DeviceNode};
use crate::world::{LoopDevice, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use nix::sys::stat::SFlag;
use std::fs;
use std::io::Read;

/// What precedes the secret on the outside's disk.
pub const PREFIX: &str = "breakout-block-device:";

/// Bytes the inside reads from the start of the disk.
const READ_LEN: usize = 512;

/// Where the inside tries to make its node: every directory a sandbox commonly lets it write.
const DIRS: &str = "/dev,/tmp,/dev/shm,/,/run,/var/tmp";

static META: ProbeMeta = ProbeMeta {
    id: "block-device",
    title: "Make a node for a disk of the outside and read it",
    technique: "A device node is only a name for a (type, major, minor) number, and the disk \
        behind it is the outside's whatever namespace the sandbox is in. The outside binds a \
        loop device to a file of its own holding a fresh secret and passes its number; the \
        inside makes a block node with that number in every writable directory it finds (/dev, \
        /tmp, /dev/shm, the root, ...), opens it and reads the disk. Making the node needs \
        CAP_MKNOD in the initial user namespace; opening it needs a filesystem mounted without \
        nodev and a device policy (Docker's device cgroup, a BPF device program on cgroup v2) \
        that allows the device. On a real host the same steps read /dev/sda (8:0).",
    oracle: "The inside reports the secret written on the outside's disk, read through the node \
        it made.",
    layers: &[
        Layer::Caps,
        Layer::UserNs,
        Layer::Uid,
        Layer::MountNs,
        Layer::FsHardening,
        Layer::Seccomp,
        // Landlock's make_block right: a domain refuses mknod of a block device.
        Layer::Landlock,
    ],
    references: &[
        "Docker device cgroup (runc AllowedDevices)",
        "bubblewrap: nodev on every mount but --dev-bind",
        "CDK lxcfs_rw_mknod exploit",
    ],
    class: ProbeClass::Plain,
};

pub struct BlockDevice;

struct State {
    secret: String,
    /// Detached (and its file removed) when the arrangement is dropped after judge.
    _disk: LoopDevice,
}

impl Probe for BlockDevice {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let secret = world.fresh_secret().map_err(ProbeError::world(META.id))?;
        // One sector: the loop device's size is the file's, rounded down to 512 bytes.
        let mut content = format!("{PREFIX}{secret}\n");
        content.extend(std::iter::repeat_n('\0', READ_LEN - content.len()));
        let disk = world
            .loop_device(META.id, &content)
            .map_err(ProbeError::world(META.id))?;
        Ok(Arrangement::new(
            vec![
                kv("major", disk.major()),
                kv("minor", disk.minor()),
                kv("dirs", DIRS),
            ],
            State {
                secret,
                _disk: disk,
            },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        if let Some((major, minor, dirs)) = parse_or_report(&mut steps, args, |a| {
            Ok((
                a.get::<u64>("major")?,
                a.get::<u64>("minor")?,
                a.str("dirs")?.to_string(),
            ))
        }) {
            disk_node(major, minor).read_through(&mut steps, &dirs, read_disk);
        }
        steps.finish()
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        judge_by_secret(
            &arrangement,
            run,
            META.id,
            |s: &State| &s.secret,
            "the secret on the outside's disk",
        )
    }
}

/// The node the inside makes for the outside's disk.
fn disk_node(major: u64, minor: u64) -> DeviceNode {
    DeviceNode {
        name: "breakout-disk",
        kind: SFlag::S_IFBLK,
        major,
        minor,
        create: "create a block device node",
        open: "open the disk",
        flags: 0,
    }
}

/// Reads the start of the disk; its text becomes the step's data.
fn read_disk(steps: &mut Steps, mut disk: fs::File) {
    let mut buf = [0u8; READ_LEN];
    let mut got = 0;
    steps.io("read the disk", "read(node, 512)", || {
        got = disk.read(&mut buf)?;
        Ok(got)
    });
    if got > 0 {
        let text = String::from_utf8_lossy(&buf[..got]);
        steps.data(text.trim_end_matches('\0').trim().to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_arguments_are_reported() {
        let report = BlockDevice.attempt(&["major=7".into(), "dirs=/tmp".into()]);
        assert_eq!(report.steps[0].action, "parse arguments");
        assert!(report.steps[0].data.as_deref().unwrap().contains("minor"));
    }

    #[test]
    fn a_node_that_cannot_be_made_is_no_escape() {
        // A directory that does not exist: mknod fails, nothing is opened.
        let report = BlockDevice.attempt(&[
            "major=7".into(),
            "minor=0".into(),
            "dirs=/nonexistent-breakout-dir".into(),
        ]);
        assert_eq!(report.steps.len(), 1, "{:?}", report.steps);
        assert!(report.steps[0].errno.is_some());
    }
}
