//! The registry: ids unique and well-formed, metadata complete, lookup by id.

use breakout_attacks::{all_probes, probe, Layer, ProbeClass};
use std::collections::BTreeSet;

#[test]
fn probe_ids_are_unique_and_kebab_case() {
    let mut seen = BTreeSet::new();
    for p in all_probes() {
        let id = p.meta().id;
        assert!(seen.insert(id), "duplicate probe id `{id}`");
        assert!(
            !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !id.starts_with('-')
                && !id.ends_with('-'),
            "probe id `{id}` is not kebab-case"
        );
    }
}

#[test]
fn every_probe_has_complete_metadata() {
    for p in all_probes() {
        let m = p.meta();
        assert!(m.title.len() >= 10, "{}: title too short", m.id);
        assert!(
            m.technique.split(". ").count() >= 2 && m.technique.len() >= 80,
            "{}: technique must be two or three sentences for a student",
            m.id
        );
        assert!(m.oracle.len() >= 20, "{}: oracle missing", m.id);
        assert!(!m.layers.is_empty(), "{}: no layer could stop it?", m.id);
        let unique: BTreeSet<Layer> = m.layers.iter().copied().collect();
        assert_eq!(unique.len(), m.layers.len(), "{}: layer listed twice", m.id);
        assert!(!m.references.is_empty(), "{}: no references", m.id);
        assert!(
            m.references.iter().all(|r| !r.trim().is_empty()),
            "{}: empty reference",
            m.id
        );
    }
}

#[test]
fn resource_probes_name_a_limit_layer() {
    for p in all_probes() {
        let m = p.meta();
        if m.class == ProbeClass::Resource {
            assert!(
                m.layers
                    .iter()
                    .any(|l| matches!(l, Layer::CgroupLimits | Layer::Rlimits)),
                "{}: a resource probe must be stoppable by cgroup-limits or rlimits",
                m.id
            );
        }
    }
}

#[test]
fn lookup_by_id() {
    for p in all_probes() {
        let found = probe(p.meta().id).expect("registered probe found by id");
        assert_eq!(found.meta().id, p.meta().id);
    }
    assert!(probe("no-such-probe").is_none());
}

#[test]
fn the_owners_seven_are_registered() {
    for id in [
        "ptrace-outside",
        "scm-rights-import",
        "signal-outside",
        "setns-outside",
        "fork-bomb",
        "memory-hog",
        "port-bind",
    ] {
        assert!(probe(id).is_some(), "owner's probe `{id}` missing");
    }
}

#[test]
fn every_layer_is_a_candidate_of_some_probe() {
    let named: BTreeSet<Layer> = all_probes()
        .iter()
        .flat_map(|p| p.meta().layers.iter().copied())
        .collect();
    let missing: Vec<Layer> = Layer::ALL
        .iter()
        .copied()
        .filter(|l| !named.contains(l))
        .collect();
    assert!(missing.is_empty(), "no probe names layer(s) {missing:?}");
}
