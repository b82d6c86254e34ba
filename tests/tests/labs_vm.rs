//! Every lab, graded by a real run in the VM: its reference solution (labs/ID/solution) passes,
//! and its starting point (labs/ID/start) fails with a message naming the concept. All answers
//! go into two VM runs (labs that need ablation, and the others).

use breakout_harness::suite::host::Quiet;
use breakout_harness::suite::lab::{self, Grade, LABS};
use breakout_tests::{binaries, listing_only, selected, vm_args};
use libtest_mimic::{Arguments, Failed, Trial};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A word of the hint each unsolved start must show (the concept it points at).
fn concept_word(lab: &str) -> &'static str {
    match lab {
        "pid-namespace" => "namespaces",
        "defense-in-depth" => "depth",
        "seccomp-probe" => "seccomp",
        "rlimits-root" => "uid",
        "fd-hygiene" => "fd hygiene",
        "predict-ablation" => "attribution",
        _ => "concept",
    }
}

fn main() {
    let args = Arguments::from_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../labs");
    let mut answers: Vec<(&'static lab::Lab, PathBuf, bool)> = Vec::new();
    for l in LABS {
        for (kind, solved) in [("solution", true), ("start", false)] {
            let name = format!(
                "{}::{}",
                l.id,
                if solved {
                    "solution_passes"
                } else {
                    "start_fails_with_the_concept"
                }
            );
            if selected(&args, &name) {
                answers.push((l, root.join(l.id).join(kind), solved));
            }
        }
    }
    let graded: Arc<Result<Vec<Grade>, String>> =
        Arc::new(if !answers.is_empty() && !listing_only(&args) {
            (|| {
                let vm = vm_args()?;
                let binaries = binaries().map_err(|e| e.to_string())?;
                let list: Vec<(&'static lab::Lab, PathBuf)> =
                    answers.iter().map(|(l, d, _)| (*l, d.clone())).collect();
                lab::grade_all(&list, &vm, &binaries, &mut Quiet).map_err(|e| e.to_string())
            })()
        } else {
            Err("not run".to_string())
        });
    let mut trials = Vec::new();
    for l in LABS {
        for solved in [true, false] {
            let name = format!(
                "{}::{}",
                l.id,
                if solved {
                    "solution_passes"
                } else {
                    "start_fails_with_the_concept"
                }
            );
            let graded = Arc::clone(&graded);
            let dir = root
                .join(l.id)
                .join(if solved { "solution" } else { "start" });
            let id = l.id;
            trials.push(Trial::test(name, move || -> Result<(), Failed> {
                let grades = graded
                    .as_ref()
                    .as_ref()
                    .map_err(|e| Failed::from(e.as_str()))?;
                let g = grades
                    .iter()
                    .find(|g| g.lab == id && g.answer == dir)
                    .ok_or_else(|| Failed::from("not graded"))?;
                let text = g.render();
                if solved && !g.passed() {
                    return Err(format!("the reference solution does not pass:\n{text}").into());
                }
                if !solved {
                    if g.passed() {
                        return Err(format!("the starting point passes:\n{text}").into());
                    }
                    let word = concept_word(id);
                    let failing: String = g
                        .checks
                        .iter()
                        .filter(|c| !c.passed)
                        .map(|c| c.why.clone())
                        .collect();
                    if !failing.contains(word) {
                        return Err(
                            format!("the failure does not point at `{word}`:\n{text}").into()
                        );
                    }
                }
                Ok(())
            }));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
