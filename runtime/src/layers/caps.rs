//! caps: bounding, permitted, effective, inheritable and ambient sets cut to the kept list (with
//! the caps crate). The bounding set goes first, while CAP_SETPCAP is still held; with the uid
//! layer on, PR_SET_KEEPCAPS lets the kept capabilities survive the uid switch and the ambient
//! set carries them across execve of an unprivileged payload.

use crate::layer::Layer;
use crate::step::{Op, Step};
use caps::{Capability, CapsHashSet};
use std::collections::BTreeSet;

/// Capabilities this kernel knows (cap_last_cap), so dropping never hits EINVAL.
fn supported() -> Vec<Capability> {
    let last: u8 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    let mut all: Vec<Capability> = caps::all()
        .into_iter()
        .filter(|c| c.index() <= last)
        .collect();
    all.sort_by_key(|c| c.index());
    all
}

fn keep_set(keep: &BTreeSet<String>) -> CapsHashSet {
    keep.iter()
        .filter_map(|c| c.parse::<Capability>().ok())
        .collect()
}

/// Before the uid switch.
pub(crate) fn bounding(keep: &BTreeSet<String>, uid_switch_follows: bool) -> Vec<Step> {
    let l = Some(Layer::Caps);
    let keep = keep_set(keep);
    let drop: Vec<Capability> = supported()
        .into_iter()
        .filter(|c| !keep.contains(c))
        .collect();
    let mut s = vec![Step::new(
        l,
        format!("prctl(PR_CAPBSET_DROP) x{} (bounding set)", drop.len()),
        Op::DropBounding(drop),
    )];
    if uid_switch_follows && !keep.is_empty() {
        s.push(Step::new(l, "prctl(PR_SET_KEEPCAPS, 1)", Op::KeepCaps));
    }
    s
}

/// After the uid switch.
pub(crate) fn sets(keep: &BTreeSet<String>) -> Vec<Step> {
    let set = keep_set(keep);
    let names: Vec<&String> = keep.iter().collect();
    vec![Step::new(
        Some(Layer::Caps),
        format!("capset(effective, permitted, inheritable, ambient = {names:?})"),
        Op::SetCaps(set),
    )]
}
