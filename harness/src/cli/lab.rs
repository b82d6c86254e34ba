//! `breakout lab list|show|start|check ID`: the course's exercises (docs/course.md), each graded
//! by a real run in the VM.
//!
//! Exit codes: 0 listed/shown/written/passed, 1 the answer does not pass yet, 2 the run failed,
//! 125 bad input (an unknown lab, an answer that does not load) before anything boots.

use crate::report::escape::terminal;
use crate::suite::host::{Binaries, Observer, VmArgs};
use crate::suite::lab::{self, LabError, LABS};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct LabArgs {
    #[command(subcommand)]
    pub command: LabCommand,
}

#[derive(clap::Subcommand)]
pub enum LabCommand {
    /// The labs, with the concepts each teaches.
    List,
    /// A lab's task and its starting files.
    Show { id: String },
    /// Write a lab's starting files into DIR (default: ./lab-ID).
    Start {
        id: String,
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Grade your answer in DIR (default: ./lab-ID) with a run in the VM.
    Check {
        id: String,
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        vm: VmArgs,
    },
}

pub fn run(args: LabArgs) -> u8 {
    match args.command {
        LabCommand::List => {
            for l in LABS {
                println!("{:<18} {}  [{}]", l.id, l.title, l.concepts.join(", "));
            }
            0
        }
        LabCommand::Show { id } => match lab::lab(&id) {
            Ok(l) => {
                println!(
                    "{}: {}\nconcepts: {}\n\n{}\n",
                    l.id,
                    l.title,
                    l.concepts.join(", "),
                    l.task
                );
                println!("start: breakout lab start {id}; check: breakout lab check {id}\n");
                for (path, text) in l.start {
                    println!("--- {path}\n{text}");
                }
                0
            }
            Err(e) => bad(&e),
        },
        LabCommand::Start { id, dir } => {
            let l = match lab::lab(&id) {
                Ok(l) => l,
                Err(e) => return bad(&e),
            };
            let dir = dir.unwrap_or_else(|| PathBuf::from(format!("lab-{id}")));
            if dir.exists() {
                eprintln!(
                    "breakout lab: {} already exists; not overwriting it",
                    dir.display()
                );
                return 125;
            }
            for (path, text) in l.start {
                let target = dir.join(path);
                let written = target
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|_| std::fs::write(&target, text));
                if let Err(e) = written {
                    eprintln!("breakout lab: writing {}: {e}", target.display());
                    return 125;
                }
                if path.ends_with(".sh") {
                    use std::os::unix::fs::PermissionsExt;
                    let _ =
                        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755));
                }
            }
            println!(
                "wrote {}; when done: breakout lab check {id} --dir {}",
                dir.display(),
                dir.display()
            );
            0
        }
        LabCommand::Check { id, dir, vm } => {
            let l = match lab::lab(&id) {
                Ok(l) => l,
                Err(e) => return bad(&e),
            };
            let dir = dir.unwrap_or_else(|| PathBuf::from(format!("lab-{id}")));
            let binaries = match Binaries::beside_current_exe() {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("breakout lab: {e}");
                    return 2;
                }
            };
            match lab::grade_all(&[(l, dir)], &vm, &binaries, &mut Dots) {
                Ok(grades) => {
                    let mut code = 0;
                    for g in &grades {
                        print!("{}", terminal(&g.render()));
                        if !g.passed() {
                            code = 1;
                        }
                    }
                    code
                }
                Err(e @ (LabError::Run(_) | LabError::Plan(_))) => {
                    eprintln!("breakout lab: {}", terminal(&e.to_string()));
                    2
                }
                Err(e) => bad(&e),
            }
        }
    }
}

fn bad(e: &LabError) -> u8 {
    eprintln!("breakout lab: {e}");
    125
}

/// One line per result on stderr while the VM runs.
struct Dots;
impl Observer for Dots {
    fn event(&mut self, event: &crate::model::GuestEvent) {
        if let crate::model::GuestEvent::Result(r) = event {
            eprintln!("  ran {} under {}", r.probe, r.profile);
        }
    }
    fn booting(&mut self, group: &str, _attempt: usize) {
        eprintln!("  booting a VM for {group}");
    }
}
