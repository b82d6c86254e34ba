//! The build's identity (`BREAKOUT_BUILD_ID`): a hash of every source the binaries are built
//! from, the lock file, the enabled features and the profile. It travels with every hand-over
//! between the binaries: `breakout` to the `breakout-harness` beside it (src/front.rs), either
//! to its sealed re-exec (runtime/src/sealed_exe.rs); the receiving side refuses to start when
//! it comes from another build (a stale binary left next to a new one).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

/// What the binaries are made of, relative to the workspace root.
const INPUTS: &[&str] = &[
    "Cargo.lock",
    "Cargo.toml",
    "runtime/src",
    "runtime/Cargo.toml",
    "attacks/src",
    "attacks/Cargo.toml",
    "harness/src",
    "harness/Cargo.toml",
    "harness/build.rs",
    "vm/src",
    "vm/Cargo.toml",
    "profiles",
];

fn files(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        let Ok(rd) = std::fs::read_dir(p) else {
            return;
        };
        for e in rd.flatten() {
            files(&e.path(), out);
        }
    } else if p.is_file() {
        out.push(p.to_path_buf());
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut all = Vec::new();
    for i in INPUTS {
        let p = root.join(i);
        println!("cargo:rerun-if-changed={}", p.display());
        files(&p, &mut all);
    }
    all.sort();
    let mut h = DefaultHasher::new();
    for f in &all {
        f.strip_prefix(&root).unwrap_or(f).hash(&mut h);
        std::fs::read(f).unwrap_or_default().hash(&mut h);
    }
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("CARGO_FEATURE_") || k == "PROFILE" || k == "TARGET")
        .collect();
    env.sort();
    env.hash(&mut h);
    println!(
        "cargo:rustc-env=BREAKOUT_BUILD_ID={}-{:016x}",
        env!("CARGO_PKG_VERSION"),
        h.finish()
    );
}
