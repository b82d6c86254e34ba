//! Splitting a plan by probe: `run --shard K/N` (one part per CI job, `breakout merge` puts them
//! back together) and `run --vms N` (the parts on N guests of one run) use the same rule.
//!
//! A probe goes with all its profiles to one part, so its positive control, its ablation runs
//! and the launches they share stay in one guest. The rule is a pure function of the selection's
//! probe list (probe number i, counted from 0, goes to part i mod N), so a results file that
//! records its selection and shard says exactly which pairs it speaks for, and every job of a
//! matrix computes the same split without talking to the others.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("--shard {0}: expected K/N with 1 <= K <= N (e.g. 1/3)")]
    Syntax(String),
    #[error("--shard {spec}: the shard number must be between 1 and {count}")]
    OutOfRange { spec: String, count: usize },
}

/// Part `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = ShardError;

    fn from_str(spec: &str) -> Result<Shard, ShardError> {
        let syntax = || ShardError::Syntax(spec.to_string());
        let (k, n) = spec.trim().split_once('/').ok_or_else(syntax)?;
        let index: usize = k.trim().parse().map_err(|_| syntax())?;
        let count: usize = n.trim().parse().map_err(|_| syntax())?;
        if count == 0 {
            return Err(syntax());
        }
        if index == 0 || index > count {
            return Err(ShardError::OutOfRange {
                spec: spec.to_string(),
                count,
            });
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether probe number `position` of the selection (from 0) belongs to this shard.
    pub fn holds(&self, position: usize) -> bool {
        position % self.count == self.index - 1
    }

    /// The probes of `selection` (in its order) this shard runs.
    pub fn probes_of(&self, selection: &[String]) -> Vec<String> {
        selection
            .iter()
            .enumerate()
            .filter(|(i, _)| self.holds(*i))
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// Every shard of `count`.
    pub fn all(count: usize) -> impl Iterator<Item = Shard> {
        (1..=count).map(move |index| Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_bad_ones_say_what_is_wrong() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        assert_eq!("1/1".parse::<Shard>().unwrap().to_string(), "1/1");
        for bad in ["", "3", "a/b", "1/", "/2", "1/0", "-1/2", "1/2/3"] {
            let err = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(err.contains("expected K/N"), "{bad}: {err}");
        }
        for bad in ["0/2", "3/2"] {
            let err = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(err.contains("between 1 and 2"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_shards_of_a_selection_are_disjoint_and_cover_it() {
        let probes: Vec<String> = (0..7).map(|i| format!("p{i}")).collect();
        let mut seen: Vec<String> = Shard::all(3).flat_map(|s| s.probes_of(&probes)).collect();
        assert_eq!(seen.len(), probes.len());
        seen.sort();
        let mut want = probes.clone();
        want.sort();
        assert_eq!(seen, want);
        assert_eq!(
            Shard { index: 1, count: 3 }.probes_of(&probes),
            ["p0", "p3", "p6"]
        );
        // More shards than probes: the last ones are empty.
        assert!(Shard { index: 9, count: 9 }.probes_of(&probes).is_empty());
    }
}
