//! The front door: `breakout` is a small binary at a fixed address that is the runtime
//! (`breakout sandbox`) and, for every other subcommand, executes the whole tool,
//! `breakout-harness`, from beside itself with the arguments as they came.
//!
//! Why two binaries: under emulation (TCG) a process start is mostly QEMU translating the code
//! it runs, and translated code is reused only at the same address, so every start of a
//! randomised (position-independent) binary is translated afresh (scripts/build has the
//! figures). `breakout sandbox` is a launcher, timed against bubblewrap's: started from the
//! fixed-address runtime it is one such start instead of a randomised start of the whole tool
//! followed by the runtime's. The whole tool stays randomised: it parses what probes print and
//! what a guest sends back, input an attacker writes. The front parses none of that: for every
//! subcommand but `sandbox` it looks at nothing but its first argument.
//!
//! The two must come from one build: the front passes its build identity to the tool, which
//! refuses to run under a front of another build (a stale binary left beside a new one).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

/// The whole tool's file name, beside `breakout`.
pub const HARNESS_BIN: &str = "breakout-harness";

/// Set by the front (to its build identity) for the tool it executes; removed by the tool.
pub const FRONT_ENV: &str = "_BREAKOUT_FRONT_BUILD";

#[derive(Debug, thiserror::Error)]
pub enum FrontError {
    #[error("cannot find the running executable (to find {HARNESS_BIN} beside it): {0}")]
    CurrentExe(std::io::Error),
    #[error("cannot start the tool {path}: {source}; `breakout` runs every subcommand but `sandbox` from {HARNESS_BIN} beside it: build every binary together (scripts/build, or cargo build --bins)")]
    Exec {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{HARNESS_BIN} was started by a `breakout` of another build (its build {found:?}, this build {expected:?}); build every binary together (scripts/build, or cargo build --bins) or remove the stale one")]
    OtherBuild { found: String, expected: String },
}

/// Does this command line go to the runtime (`breakout sandbox ...`)?
pub fn is_sandbox(first: Option<&OsString>) -> bool {
    first.is_some_and(|a| a == "sandbox")
}

/// Execute `breakout-harness` beside this binary with this process's arguments (argv[0] as it
/// came, so usage lines still say `breakout`) and environment plus [`FRONT_ENV`]. Returns only
/// when the exec failed.
pub fn exec_harness(build_id: &str) -> FrontError {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return FrontError::CurrentExe(e),
    };
    let path = exe.with_file_name(HARNESS_BIN);
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| "breakout".into());
    let source = Command::new(&path)
        .arg0(arg0)
        .args(args)
        .env(FRONT_ENV, build_id)
        .exec();
    FrontError::Exec { path, source }
}

/// In the tool, first thing: take [`FRONT_ENV`] out of the environment (nothing started later
/// inherits it) and refuse a front of another build.
pub fn accept_front(build_id: &str) -> Result<(), FrontError> {
    let Some(found) = std::env::var_os(FRONT_ENV) else {
        return Ok(());
    };
    // Single-threaded: this runs before main starts any thread.
    std::env::remove_var(FRONT_ENV);
    if found != build_id {
        return Err(FrontError::OtherBuild {
            found: found.to_string_lossy().into_owned(),
            expected: build_id.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_sandbox_subcommand_stays_in_the_front() {
        assert!(is_sandbox(Some(&"sandbox".into())));
        for other in ["run", "--help", "--version", "sandboxes", "-h", ""] {
            assert!(!is_sandbox(Some(&other.into())), "{other}");
        }
        assert!(!is_sandbox(None));
    }
}
