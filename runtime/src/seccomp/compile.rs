//! Compile a resolved policy to a BPF program with libseccomp, in the parent: before the fork when
//! this process has compiled the policy already (cached), else right after it, while the child
//! creates its namespaces (spawn.rs); either way the child only loads the finished program (one
//! seccomp(2) call, no library code in the child). Programs are cached per policy, so repeated
//! spawns of one profile compile once.

use super::policy::{Action, ArgCond, CmpOp, Resolved};
use super::SeccompError;
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex, OnceLock};

/// A compiled filter, ready for `seccomp(SECCOMP_SET_MODE_FILTER)`.
#[derive(Debug, Clone)]
pub struct Bpf(pub Arc<Vec<libc::sock_filter>>);

impl Bpf {
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn cache() -> &'static Mutex<HashMap<u64, Bpf>> {
    static CACHE: OnceLock<Mutex<HashMap<u64, Bpf>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

impl Resolved {
    fn cache_key(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.hash(&mut h);
        h.finish()
    }

    /// The program for this policy if this process compiled it already, without compiling.
    pub fn cached(&self) -> Option<Bpf> {
        let key = self.cache_key();
        cache().lock().ok().and_then(|c| c.get(&key).cloned())
    }

    /// The BPF program for this policy (compiled once per process and policy).
    pub fn compile(&self) -> Result<Bpf, SeccompError> {
        let key = self.cache_key();
        if let Some(bpf) = cache().lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(bpf);
        }
        let bpf = compile_uncached(self)?;
        if let Ok(mut c) = cache().lock() {
            c.insert(key, bpf.clone());
        }
        Ok(bpf)
    }
}

fn scmp_action(a: Action) -> ScmpAction {
    match a {
        Action::Allow => ScmpAction::Allow,
        Action::Errno(e) => ScmpAction::Errno(i32::from(e)),
        Action::KillProcess => ScmpAction::KillProcess,
        Action::KillThread => ScmpAction::KillThread,
        Action::Trap => ScmpAction::Trap,
        Action::Log => ScmpAction::Log,
        Action::Trace(v) => ScmpAction::Trace(v),
    }
}

fn scmp_cmp(c: &ArgCond) -> ScmpArgCompare {
    let (op, datum) = match c.op {
        CmpOp::Ne => (ScmpCompareOp::NotEqual, c.value),
        CmpOp::Lt => (ScmpCompareOp::Less, c.value),
        CmpOp::Le => (ScmpCompareOp::LessOrEqual, c.value),
        CmpOp::Eq => (ScmpCompareOp::Equal, c.value),
        CmpOp::Ge => (ScmpCompareOp::GreaterEqual, c.value),
        CmpOp::Gt => (ScmpCompareOp::Greater, c.value),
        CmpOp::MaskedEq => (ScmpCompareOp::MaskedEqual(c.value), c.value_two),
    };
    ScmpArgCompare::new(c.index, op, datum)
}

fn compile_uncached(p: &Resolved) -> Result<Bpf, SeccompError> {
    let err = |what: String, e: libseccomp::error::SeccompError| SeccompError::Compile {
        source_name: p.origin.clone(),
        what,
        message: e.to_string(),
    };
    let mut ctx = ScmpFilterContext::new_filter(scmp_action(p.default_action))
        .map_err(|e| err("the default action".into(), e))?;
    for arch in &p.extra_arches {
        let a: ScmpArch = arch
            .parse()
            .map_err(|e| err(format!("architecture {arch}"), e))?;
        ctx.add_arch(a)
            .map_err(|e| err(format!("architecture {arch}"), e))?;
    }
    for rule in &p.rules {
        // A rule that repeats the default action changes nothing (and libseccomp rejects it).
        if rule.action == p.default_action {
            continue;
        }
        // Only names from allow rules (or rules repeating the default) get here unknown: the
        // loaders refuse them in rules that deny and list them as warnings otherwise.
        let Ok(sys) = ScmpSyscall::from_name(&rule.name) else {
            continue;
        };
        let action = scmp_action(rule.action);
        let what = || format!("the rule for {}", rule.name);
        if rule.args.is_empty() {
            ctx.add_rule(action, sys).map_err(|e| err(what(), e))?;
            continue;
        }
        // As runc does: conditions on distinct arguments are ANDed in one rule; several
        // conditions on the same argument become separate rules (ORed).
        let mut seen = std::collections::BTreeSet::new();
        let repeated = rule.args.iter().any(|a| !seen.insert(a.index));
        if repeated {
            for c in &rule.args {
                ctx.add_rule_conditional(action, sys, &[scmp_cmp(c)])
                    .map_err(|e| err(what(), e))?;
            }
        } else {
            let conds: Vec<ScmpArgCompare> = rule.args.iter().map(scmp_cmp).collect();
            ctx.add_rule_conditional(action, sys, &conds)
                .map_err(|e| err(what(), e))?;
        }
    }
    let mut mem = memfd().map_err(|e| SeccompError::Compile {
        source_name: p.origin.clone(),
        what: "a memfd for the program".into(),
        message: e.to_string(),
    })?;
    ctx.export_bpf(&mut mem)
        .map_err(|e| err("the export".into(), e))?;
    let mut bytes = Vec::new();
    mem.seek(SeekFrom::Start(0))
        .and_then(|_| mem.read_to_end(&mut bytes))
        .map_err(|e| SeccompError::Compile {
            source_name: p.origin.clone(),
            what: "reading the program back".into(),
            message: e.to_string(),
        })?;
    let prog = decode(&bytes);
    // sock_fprog.len is 16 bits and the kernel refuses more than BPF_MAXINSNS: say so here,
    // naming the profile, instead of truncating the length when the filter is installed.
    if prog.len() > BPF_MAXINSNS {
        return Err(SeccompError::Compile {
            source_name: p.origin.clone(),
            what: "the program's length".into(),
            message: format!(
                "{} instructions, the kernel takes at most {BPF_MAXINSNS}",
                prog.len()
            ),
        });
    }
    Ok(Bpf(Arc::new(prog)))
}

/// The kernel's limit on one classic BPF program (include/uapi/linux/bpf_common.h).
pub const BPF_MAXINSNS: usize = 4096;

fn memfd() -> std::io::Result<std::fs::File> {
    let fd = nix::sys::memfd::memfd_create(
        c"breakout-seccomp",
        nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
    )?;
    Ok(std::fs::File::from(fd))
}

/// libseccomp writes `struct sock_filter` records in native byte order.
fn decode(bytes: &[u8]) -> Vec<libc::sock_filter> {
    bytes
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}
