//! The probe kit: what the probes share on top of the world ([`crate::world`], what the outside
//! plants and watches). One module per job:
//! - [`inside`]: the inside half's arguments and steps;
//! - [`judge`]: oracles, verdicts, and the one judgement of a planted secret;
//! - [`canary`]: planting a per-attempt secret and finding it again;
//! - [`sysctl`]: kernel settings read, written and restored;
//! - [`devices`]: reaching a device through a node the inside makes;
//! - [`handle`]: file handles (name_to_handle_at, open_by_handle_at, overlayfs's wrapping);
//! - [`scratch`]: scratch names, the guest's busybox, hex arguments;
//! - [`sync`]: a channel between outside and inside that carries timing, never a verdict.
//!
//! The kit sits above the world and below the probes: it may use `crate::world`, never
//! `crate::probes`. Machine-wide state is locked through [`crate::world::World::exclusive`], and
//! a thread that watches while the payload runs is a [`crate::world::Watcher`].

pub(crate) mod canary;
pub(crate) mod devices;
pub(crate) mod handle;
pub(crate) mod inside;
pub(crate) mod judge;
pub(crate) mod scratch;
pub(crate) mod sync;
pub(crate) mod sysctl;
#[cfg(test)]
pub(crate) mod testing;

pub(crate) use canary::{plant_canary_file, plant_kmsg_canary, read_kmsg_canary, token_after};
pub(crate) use devices::DeviceNode;
pub(crate) use inside::{io_keep, parse_or_report, read_step, through_root, with_args};
pub(crate) use judge::{
    conclude, judge_by_secret, judge_secret, secret_oracle, wrong_state, Oracle,
};
pub(crate) use scratch::{busybox, hex, scratch_name, unhex};
pub(crate) use sysctl::SysctlRestore;
