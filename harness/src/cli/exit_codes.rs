//! The exit codes of every subcommand, in one place: `--help` prints them (clap's
//! `after_help`) and a test keeps README.md's table equal to them.
//!
//! 2 is bad input for the commands that judge (run, gate, compare, explain), as for clap's own
//! usage errors; `sandbox` and `vm-run` pass a command's status through, so their own failures
//! use codes a command rarely does (125, 240-250).

/// (subcommand, one line per code as `CODE  meaning`).
pub const ALL: [(&str, &[&str]); 9] = [
    ("run", RUN),
    ("gate", GATE),
    ("merge", MERGE),
    ("compare", COMPARE),
    ("explain", EXPLAIN),
    ("list", LIST),
    ("vm-run", VM_RUN),
    ("sandbox", SANDBOX),
    ("learn", LEARN),
];

pub const RUN: &[&str] = &[
    "0    the run completed (escapes are findings, not failures)",
    "1    a regression against --baseline (see `breakout gate`)",
    "2    bad input, an unwritable --out or --write-baseline, or a failed run (checked before the VM boots where possible; a result channel written to by something other than the orchestrator fails the run)",
    "3    a positive control failed: a probe did not escape a configuration without layers",
];

pub const GATE: &[&str] = &[
    "0    no regression",
    "1    a regression (or another kernel release with --strict-kernel)",
    "2    a file cannot be read or is not a results file, the results record no selection (without --scope-from-contents) or hold a result outside it, their result channel was tampered with, or the run failed",
];

pub const MERGE: &[&str] = &[
    "0    merged and written",
    "2    a file cannot be read, the files are not every shard of one run (other selections, a shard twice or missing), or --out cannot be written",
];

pub const COMPARE: &[&str] = &[
    "0    the comparison ran (escapes are findings)",
    "2    bad input or a failed run",
    "3    a positive control failed: a probe did not escape a configuration without layers",
];

pub const EXPLAIN: &[&str] = &[
    "0    explained",
    "2    unknown probe or layer, or an unreadable --results file",
];

pub const LIST: &[&str] = &["0    listed", "1    a built-in profile fails to load"];

pub const VM_RUN: &[&str] = &[
    "N        the command's own exit status",
    "240-250  the VM's own failures: 240 QEMU missing, 241 kernel, 242 image, 243 boot timeout, 244 command timeout, 245 kernel panic, 246 guest out of memory, 247 QEMU crashed, 248 guest init, 249 invalid configuration, 250 host I/O",
];

pub const SANDBOX: &[&str] = &[
    "N      the command's own exit status (128+N when killed by signal N)",
    "125    the runtime failed or bad input",
    "126    the command cannot be executed",
    "127    the command was not found",
];

pub const LEARN: &[&str] = &[
    "0        the profile was written",
    "1        the recording is incomplete (a call may be missing): no profile",
    "125      bad input: an unwritable --out, a command that does not exist in the guest or fails under `none`, a call the format cannot express",
    "240-250  the VM's own failures (as vm-run)",
];

/// The `after_help` text for a subcommand.
pub fn help(codes: &[&str]) -> String {
    let mut text = String::from("Exit codes:\n");
    for line in codes {
        text.push_str("  ");
        text.push_str(line);
        text.push('\n');
    }
    text
}
