//! `breakout merge RESULTS... --out DIR`: the results.json of every shard of one run (`run
//! --shard K/N`, one per CI job) merged into the report set of the unsharded run (results.json,
//! report.html, junit.xml, report.md). Files of different selections, a shard given twice or
//! missing are refused with one line naming the files (see `exit_codes::MERGE`).

use crate::report::{self, Format};
use crate::suite::gate;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct MergeArgs {
    /// The shards' results.json files (every K of one N).
    #[arg(value_name = "RESULTS", required = true)]
    pub results: Vec<PathBuf>,
    /// Write results.json, report.html, junit.xml and report.md into DIR.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

pub fn run(args: MergeArgs) -> u8 {
    let mut files = Vec::new();
    for path in &args.results {
        match gate::load(path, "results") {
            Ok(r) => files.push((path.clone(), r)),
            Err(e) => {
                eprintln!("breakout merge: {e}");
                return 2;
            }
        }
    }
    if let Err(e) = report::check_writable_dir(&args.out) {
        eprintln!("breakout merge: --out: {e}");
        return 2;
    }
    let merged = match crate::suite::guests::merge(&files) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("breakout merge: {e}");
            return 2;
        }
    };
    let shown = match args.format {
        Format::Table => report::table::render(&merged, report::table::colour_for_stdout()),
        other => report::render(&merged, other),
    };
    print!("{shown}");
    match report::write_all(&merged, &args.out) {
        Ok(paths) => {
            eprintln!(
                "breakout merge: {} shard(s), {} results",
                files.len(),
                merged.results.len()
            );
            for p in paths {
                eprintln!("wrote {}", p.display());
            }
            0
        }
        Err(e) => {
            eprintln!("breakout merge: {e}");
            2
        }
    }
}
