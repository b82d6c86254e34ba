//! The environment block every report carries: the verdicts depend on the kernel, its LSMs, the
//! CPU mitigations and a handful of sysctls, so a result is meaningless without them.

use crate::model::Environment;
use std::fmt::Write;

/// The one-line headline: kernel release, arch, CPUs, accelerator.
pub fn headline(env: &Environment) -> String {
    let kernel = if env.kernel_release.is_empty() {
        &env.kernel
    } else {
        &env.kernel_release
    };
    format!(
        "kernel {} {}, {} CPU{}, accel {}",
        or_unknown(kernel),
        or_unknown(&env.arch),
        env.cpus,
        if env.cpus == 1 { "" } else { "s" },
        or_unknown(&env.accel)
    )
}

/// LSMs joined, or "none".
pub fn lsms(env: &Environment) -> String {
    if env.lsms.is_empty() {
        "none".to_string()
    } else {
        env.lsms.join(",")
    }
}

/// "name=value" for every sysctl, in name order.
pub fn sysctls(env: &Environment) -> String {
    env.sysctls
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a /sys/devices/system/cpu/vulnerabilities entry leaves the CPU exposed.
pub fn is_vulnerable(status: &str) -> bool {
    status.starts_with("Vulnerable")
}

/// "N vulnerable (a, b), M mitigated or not affected".
pub fn vulnerabilities_summary(env: &Environment) -> String {
    if env.vulnerabilities.is_empty() {
        return "not reported by the kernel".to_string();
    }
    let vulnerable: Vec<&str> = env
        .vulnerabilities
        .iter()
        .filter(|(_, status)| is_vulnerable(status))
        .map(|(name, _)| name.as_str())
        .collect();
    let others = env.vulnerabilities.len() - vulnerable.len();
    if vulnerable.is_empty() {
        format!("none vulnerable, {others} mitigated or not affected")
    } else {
        format!(
            "{} vulnerable ({}), {others} mitigated or not affected",
            vulnerable.len(),
            vulnerable.join(", ")
        )
    }
}

/// The block the terminal and Markdown renderers print.
pub fn text_block(env: &Environment) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "environment: {}", headline(env));
    let _ = writeln!(out, "  LSMs: {}", lsms(env));
    let _ = writeln!(out, "  sysctls: {}", sysctls(env));
    let _ = writeln!(
        out,
        "  CPU vulnerabilities: {}",
        vulnerabilities_summary(env)
    );
    if !env.external_probes.is_empty() {
        let _ = writeln!(
            out,
            "  external probes (from files): {}",
            env.external_probes.join(", ")
        );
    }
    out
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() {
        "unknown"
    } else {
        s
    }
}
