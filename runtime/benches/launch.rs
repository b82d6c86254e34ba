//! Launch cost, measured (not asserted): `/bin/true` under `strict` without cgroup-limits,
//! through the library as the harness uses it, against
//! `bwrap --unshare-all --die-with-parent --ro-bind / / --proc /proc --dev /dev /bin/true`,
//! interleaved in the same run; prints both medians and their ratio.
//!
//! `cargo bench -p breakout-runtime --bench launch [-- ROUNDS]` (root; bubblewrap installed).
//! Three series, interleaved: the library with the filter cached, bwrap, and the whole command
//! (this binary re-executed: a fresh process that loads the profile and compiles the filter).
//! The first strict launch also compiles the seccomp filter; later ones reuse the cached
//! program, as a long-running harness does. See benches/vs_bwrap.sh for the CLI against bwrap.

use breakout_runtime::{spawn, Layer, Payload, SandboxConfig};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The whole-command path, as `breakout sandbox --profile strict --disable cgroup-limits --
/// /bin/true` takes it: a fresh process loads the profile, compiles the filter, spawns, waits.
fn cli() -> ! {
    let mut cfg = SandboxConfig::builtin("strict").expect("strict");
    cfg.set_enabled(Layer::CgroupLimits, false);
    let o = spawn(&cfg, Payload::new(["/bin/true"]))
        .expect("spawn")
        .wait()
        .expect("wait");
    std::process::exit(o.status.code())
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("__cli") {
        cli();
    }
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let t = Instant::now();
    let mut cfg = SandboxConfig::builtin("strict").expect("strict");
    let load = t.elapsed();
    let t = Instant::now();
    let profile = cfg.seccomp_profile().expect("strict has seccomp");
    let resolved = profile.resolve(&breakout_runtime::seccomp::ResolveContext::native(
        cfg.effective_caps(),
    ));
    let bpf = resolved.compile().expect("compile");
    let compile = t.elapsed();
    println!(
        "load strict profile (TOML + seccomp names checked): {:.2} ms; resolve + compile seccomp ({} instructions): {:.2} ms",
        load.as_secs_f64() * 1e3,
        bpf.len(),
        compile.as_secs_f64() * 1e3
    );
    cfg.set_enabled(Layer::CgroupLimits, false);

    let ours = || {
        let t = Instant::now();
        let sb = spawn(&cfg, Payload::new(["/bin/true"])).expect("spawn");
        let o = sb.wait().expect("wait");
        assert_eq!(o.status.code(), 0, "{o:?}");
        t.elapsed()
    };
    let bwrap = || {
        let t = Instant::now();
        let s = Command::new("bwrap")
            .args([
                "--unshare-all",
                "--die-with-parent",
                "--ro-bind",
                "/",
                "/",
                "--proc",
                "/proc",
                "--dev",
                "/dev",
                "/bin/true",
            ])
            .stdin(Stdio::null())
            .status()
            .expect("bwrap (apt-get install bubblewrap)");
        assert!(s.success(), "bwrap failed: {s}");
        t.elapsed()
    };
    let whole = || {
        let t = Instant::now();
        let s = Command::new(std::env::current_exe().expect("current_exe"))
            .arg("__cli")
            .stdin(Stdio::null())
            .status()
            .expect("re-exec");
        assert!(s.success(), "whole-command launch failed: {s}");
        t.elapsed()
    };
    let first = ours();
    for _ in 0..10 {
        ours();
        bwrap();
    }
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        a.push(ours());
        b.push(bwrap());
        c.push(whole());
    }
    let (ma, mb, mc) = (median(&mut a), median(&mut b), median(&mut c));
    println!(
        "first strict launch (filter already cached above): {:.2} ms",
        first.as_secs_f64() * 1e3
    );
    println!(
        "breakout strict (no cgroup-limits), median of {rounds}: {:.2} ms",
        ma.as_secs_f64() * 1e3
    );
    println!(
        "bwrap --unshare-all ..., median of {rounds}:          {:.2} ms",
        mb.as_secs_f64() * 1e3
    );
    println!(
        "ratio breakout/bwrap (library, filter cached): {:.2}",
        ma.as_secs_f64() / mb.as_secs_f64()
    );
    println!(
        "whole command (new process: load profile, compile filter, spawn), median of {rounds}: {:.2} ms",
        mc.as_secs_f64() * 1e3
    );
    println!(
        "ratio whole command/bwrap: {:.2}",
        mc.as_secs_f64() / mb.as_secs_f64()
    );
}
