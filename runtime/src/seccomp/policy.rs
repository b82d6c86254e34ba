//! The format-independent policy: rules with Docker-style conditions (kept capabilities,
//! architecture, minimum kernel), and their resolution for one sandbox.

use std::collections::BTreeSet;

/// What the filter does with a matching syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Allow,
    Errno(u16),
    KillProcess,
    KillThread,
    Trap,
    Log,
    Trace(u16),
}

impl Action {
    /// True when the syscall goes through (logged or not).
    pub fn permits(self) -> bool {
        matches!(self, Action::Allow | Action::Log)
    }
}

/// Comparison of one syscall argument, as in libseccomp and the OCI spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & value) == value_two`
    MaskedEq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArgCond {
    pub index: u32,
    pub op: CmpOp,
    pub value: u64,
    pub value_two: u64,
}

/// When a rule applies (Docker's `includes` / `excludes`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Condition {
    /// Capability names (`CAP_SYS_ADMIN`).
    pub caps: Vec<String>,
    /// Go architecture names (`amd64`, `x32`, `arm64`).
    pub arches: Vec<String>,
    /// `(major, minor)`.
    pub min_kernel: Option<(u32, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub names: Vec<String>,
    pub action: Action,
    pub args: Vec<ArgCond>,
    pub includes: Condition,
    pub excludes: Condition,
}

/// A loaded profile, not yet resolved against a sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompProfile {
    /// Where it came from, for messages.
    pub origin: String,
    pub default_action: Action,
    /// libseccomp architecture tokens (`SCMP_ARCH_X86`) to add beside the native one.
    pub extra_arches: Vec<String>,
    pub rules: Vec<Rule>,
    /// Loaded but worth a line on stderr (allow rules naming calls this libseccomp lacks).
    pub warnings: Vec<String>,
}

/// What a profile is resolved against.
#[derive(Debug, Clone)]
pub struct ResolveContext {
    /// The capabilities the payload keeps (`CAP_...`).
    pub caps: BTreeSet<String>,
    /// Native Go architecture name (`amd64`).
    pub arch: String,
    /// Running kernel `(major, minor)`.
    pub kernel: (u32, u32),
}

impl ResolveContext {
    /// The running machine, with the given kept capabilities.
    pub fn native(caps: BTreeSet<String>) -> Self {
        ResolveContext {
            caps,
            arch: native_go_arch().to_string(),
            kernel: running_kernel(),
        }
    }
}

/// One rule for one syscall name, all conditions decided.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResolvedRule {
    pub name: String,
    pub action: Action,
    pub args: Vec<ArgCond>,
}

/// A policy ready to compile: what the filter of one sandbox says.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Resolved {
    pub origin: String,
    pub default_action: Action,
    pub extra_arches: Vec<String>,
    pub rules: Vec<ResolvedRule>,
}

impl SeccompProfile {
    /// Keep the rules whose includes hold and whose excludes do not (Docker's semantics:
    /// every included capability must be kept, any excluded one kept drops the rule).
    pub fn resolve(&self, ctx: &ResolveContext) -> Resolved {
        let mut rules = Vec::new();
        for rule in &self.rules {
            if !applies(rule, ctx) {
                continue;
            }
            for name in &rule.names {
                rules.push(ResolvedRule {
                    name: name.clone(),
                    action: rule.action,
                    args: rule.args.clone(),
                });
            }
        }
        Resolved {
            origin: self.origin.clone(),
            default_action: self.default_action,
            extra_arches: self.extra_arches.clone(),
            rules,
        }
    }
}

fn applies(rule: &Rule, ctx: &ResolveContext) -> bool {
    let inc = &rule.includes;
    if !inc.caps.iter().all(|c| ctx.caps.contains(c)) {
        return false;
    }
    if !inc.arches.is_empty() && !inc.arches.contains(&ctx.arch) {
        return false;
    }
    if inc.min_kernel.is_some_and(|min| ctx.kernel < min) {
        return false;
    }
    let exc = &rule.excludes;
    if exc.caps.iter().any(|c| ctx.caps.contains(c)) {
        return false;
    }
    if exc.arches.contains(&ctx.arch) {
        return false;
    }
    true
}

impl Resolved {
    /// Does this filter deny `syscall` whatever its arguments? `None` when the answer depends
    /// on the arguments.
    pub fn denies(&self, syscall: &str) -> Option<bool> {
        let rules: Vec<&ResolvedRule> = self.rules.iter().filter(|r| r.name == syscall).collect();
        if rules.is_empty() {
            return Some(!self.default_action.permits());
        }
        if rules.iter().any(|r| !r.args.is_empty()) {
            return None;
        }
        // Unconditional rules for one name all carry the same verdict in sane profiles; if they
        // disagree the first added wins in libseccomp, so report that one.
        Some(!rules[0].action.permits())
    }
}

/// Go's name for the architecture this binary runs on (what Docker profiles use).
pub fn native_go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// libseccomp's token for the native architecture (`SCMP_ARCH_X86_64`), to read Docker archMaps.
pub fn native_scmp_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "SCMP_ARCH_X86_64",
        "x86" => "SCMP_ARCH_X86",
        "aarch64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "powerpc64" => "SCMP_ARCH_PPC64LE",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "loongarch64" => "SCMP_ARCH_LOONGARCH64",
        _ => "SCMP_ARCH_NATIVE",
    }
}

/// `(major, minor)` of the running kernel; (0, 0) if uname is unreadable, which makes every
/// minKernel rule inapplicable (the safe direction: fewer syscalls allowed).
pub fn running_kernel() -> (u32, u32) {
    match nix::sys::utsname::uname() {
        Ok(u) => parse_kernel_version(&u.release().to_string_lossy()).unwrap_or((0, 0)),
        Err(_) => (0, 0),
    }
}

/// "6.1.0-18-cloud-amd64" -> (6, 1).
pub fn parse_kernel_version(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}
