//! `breakout vm-run`: run one command in a disposable VM; its output streams back, its exit
//! code becomes ours. Works as a cargo runner:
//! `CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="/path/to/breakout vm-run --"`.

use crate::report::escape::terminal;
use breakout_vm::{Accel, GuestFile, Stream, VmConfig, VmSink};
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// Host environment variables passed on to the command (test harness settings).
const PASSED_ENV: &[&str] = &[
    "RUST_BACKTRACE",
    "RUST_LIB_BACKTRACE",
    "RUST_LOG",
    "RUST_MIN_STACK",
    "RUST_TEST_THREADS",
    "RUST_TEST_NOCAPTURE",
    "RUST_TEST_TIME_UNIT",
    "RUST_TEST_TIME_INTEGRATION",
];

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: the command's own (128+N for signal N), or on a VM \
failure: 240 QEMU missing, 241 kernel, 242 guest image, 243 boot timeout, 244 command \
timeout, 245 kernel panic, 246 guest out of memory, 247 QEMU crash, 248 guest init failed or result frames lost, \
249 invalid configuration, 250 host I/O error."
)]
pub struct VmRunArgs {
    /// Put a host file or directory in the guest: HOST (same path) or HOST:GUEST. ELF
    /// binaries bring their shared libraries.
    #[arg(long = "add", value_name = "PATH")]
    pub add: Vec<String>,
    /// Kill the VM when the command runs longer than this many seconds.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub timeout: Option<Duration>,
    /// Limit for booting up to the command's start, in seconds.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value = "60")]
    pub boot_timeout: Duration,
    /// Guest memory in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    pub memory: u32,
    /// Guest CPUs.
    #[arg(long, default_value_t = 2)]
    pub cpus: u32,
    /// auto (KVM when a real boot works here, else TCG), kvm or tcg.
    #[arg(long, default_value = "auto")]
    pub accel: Accel,
    /// The kernel: debian-12 (the default, Linux 6.1), debian-13 (Linux 6.12), both Debian cloud
    /// kernels fetched once into the cache, or the path of a bzImage.
    #[arg(long, value_name = "PATH")]
    pub kernel: Option<PathBuf>,
    /// Set KEY=VALUE in the command's environment (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Append the structured result lines (JSON) to this file instead of printing them to
    /// stderr with a "result: " prefix.
    #[arg(long, value_name = "FILE")]
    pub results: Option<PathBuf>,
    /// Keep DWARF debug information in the guest's binaries (larger image, slower boot;
    /// by default it is left out and only symbols stay).
    #[arg(long)]
    pub keep_debug: bool,
    /// Show kernel messages and where the time went, on stderr.
    #[arg(long, short)]
    pub verbose: bool,
    /// The command and its arguments; a path to a host file is put in the guest at the same
    /// path, with its libraries.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !secs.is_finite() || secs <= 0.0 || secs > 1e7 {
        return Err(format!("{s} seconds is out of range (0, 10000000]"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

struct Terminal {
    results: Option<File>,
    verbose: bool,
    failed_write: Option<String>,
}

impl VmSink for Terminal {
    fn output(&mut self, stream: Stream, bytes: &[u8]) {
        // A closed stdout (e.g. piped into `head`) must not stop the VM run itself.
        let _ = match stream {
            Stream::Stdout => {
                let mut o = std::io::stdout().lock();
                o.write_all(bytes).and_then(|()| o.flush())
            }
            Stream::Stderr => std::io::stderr().lock().write_all(bytes),
        };
    }

    fn result_line(&mut self, line: &str) {
        match &mut self.results {
            Some(f) => {
                if let Err(e) = writeln!(f, "{line}") {
                    self.failed_write.get_or_insert_with(|| e.to_string());
                }
            }
            None => eprintln!("result: {}", terminal(line)),
        }
    }

    fn console_line(&mut self, line: &str) {
        if self.verbose {
            // Console text and log records: root in the guest can write both.
            eprintln!("guest kernel: {}", terminal(line));
        }
    }
}

pub fn run(args: VmRunArgs) -> i32 {
    let mut files = Vec::new();
    for spec in &args.add {
        match GuestFile::parse(spec) {
            Ok(f) => files.push(f),
            Err(e) => {
                eprintln!("breakout vm-run: --add {spec}: {e}");
                return 249;
            }
        }
    }
    let mut env: Vec<(String, String)> = PASSED_ENV
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    env.extend(args.env.iter().cloned());
    let results = match &args.results {
        Some(p) => match File::options().create(true).append(true).open(p) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("breakout vm-run: --results {}: {e}", p.display());
                return 250;
            }
        },
        None => None,
    };
    let cfg = VmConfig {
        kernel: args.kernel.clone(),
        accel: args.accel,
        memory_mib: args.memory,
        cpus: args.cpus,
        timeout: args.timeout,
        boot_timeout: args.boot_timeout,
        files,
        env,
        cwd: std::env::current_dir().ok(),
        strip_debug: !args.keep_debug,
        ..VmConfig::default()
    };
    // Say what the kernel lacks (when its config is known) before the command's output.
    match breakout_vm::resolve_kernel(&cfg).and_then(|k| {
        k.missing_options()
            .map(|m| (k, m))
            .map_err(breakout_vm::VmError::from)
    }) {
        Ok((kernel, missing)) if !missing.is_empty() => eprintln!(
            "breakout vm-run: warning: kernel {} lacks {}",
            kernel.image.display(),
            missing.join(", ")
        ),
        Ok(_) => {}
        Err(e) => {
            eprintln!("breakout vm-run: {e}");
            return e.exit_code();
        }
    }
    let mut sink = Terminal {
        results,
        verbose: args.verbose,
        failed_write: None,
    };
    match breakout_vm::run(&cfg, &args.command, &mut sink) {
        Ok(outcome) => {
            if args.verbose {
                let t = outcome.timings;
                eprintln!(
                    "vm-run: accel {}; prepare {:?}, qemu start {:?}, kernel {:?}, init {:?}, \
                     command start {:?}, command {:?}, shutdown {:?}, total {:?}",
                    outcome.accel,
                    t.prepare,
                    t.qemu_start,
                    t.kernel,
                    t.init,
                    t.command_start,
                    t.command,
                    t.shutdown,
                    t.total
                );
            }
            if let Some(e) = sink.failed_write {
                eprintln!("breakout vm-run: writing results: {e}");
                return 250;
            }
            outcome.exit_code
        }
        Err(e) => {
            // It may quote the guest's console.
            eprintln!("breakout vm-run: {}", terminal(&e.to_string()));
            e.exit_code()
        }
    }
}
