//! Our own seccomp profiles in TOML: a default action (errno configurable) and rules. Every
//! syscall name must be known to libseccomp: a typo is an error naming the field, never a hole.
//!
//! ```toml
//! default_action = "errno"      # allow | errno | kill-process | kill-thread | trap | log
//! default_errno = "EPERM"       # a name or a number
//! [[rule]]
//! action = "allow"
//! names = ["read", "write"]
//! [[rule]]
//! action = "allow"
//! names = ["clone"]
//! args = [{ index = 0, op = "masked-eq", value = 0x7E020000, value_two = 0 }]
//! ```

use super::policy::{Action, ArgCond, CmpOp, Condition, Rule, SeccompProfile};
use super::SeccompError;
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    default_action: String,
    default_errno: Option<ErrnoSpec>,
    #[serde(default)]
    rule: Vec<TomlRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlRule {
    action: String,
    errno: Option<ErrnoSpec>,
    names: Vec<String>,
    #[serde(default)]
    args: Vec<TomlArg>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlArg {
    index: u32,
    op: String,
    value: u64,
    #[serde(default)]
    value_two: u64,
}

#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum ErrnoSpec {
    Number(u16),
    Name(String),
}

/// Parse one of our TOML profiles. `origin` names the file in errors.
pub fn parse(text: &str, origin: &Path) -> Result<SeccompProfile, SeccompError> {
    let p: Profile = toml::from_str(text).map_err(|e| SeccompError::Syntax {
        path: origin.to_path_buf(),
        message: one_line(&e.to_string()),
    })?;
    let field_err = |field: String, message: String| SeccompError::Field {
        path: origin.to_path_buf(),
        field,
        message,
    };
    let default_action = action(&p.default_action, p.default_errno.as_ref())
        .map_err(|(f, m)| field_err(f.unwrap_or("default_action").to_string(), m))?;
    let mut rules = Vec::new();
    for (i, r) in p.rule.into_iter().enumerate() {
        let act = action(&r.action, r.errno.as_ref()).map_err(|(f, m)| {
            field_err(
                format!(
                    "rule[{i}].{}",
                    f.map(|f| f.trim_start_matches("default_"))
                        .unwrap_or("action")
                ),
                m,
            )
        })?;
        for (j, name) in r.names.iter().enumerate() {
            if libseccomp::ScmpSyscall::from_name(name).is_err() {
                return Err(field_err(
                    format!("rule[{i}].names[{j}]"),
                    format!("unknown syscall `{name}`"),
                ));
            }
        }
        let mut args = Vec::new();
        for (j, a) in r.args.iter().enumerate() {
            if a.index > 5 {
                return Err(field_err(
                    format!("rule[{i}].args[{j}].index"),
                    format!("argument index {} out of range 0..=5", a.index),
                ));
            }
            let op = cmp_op(&a.op).ok_or_else(|| {
                field_err(
                    format!("rule[{i}].args[{j}].op"),
                    format!(
                        "unknown comparison `{}` (ne, lt, le, eq, ge, gt, masked-eq)",
                        a.op
                    ),
                )
            })?;
            args.push(ArgCond {
                index: a.index,
                op,
                value: a.value,
                value_two: a.value_two,
            });
        }
        rules.push(Rule {
            names: r.names,
            action: act,
            args,
            includes: Condition::default(),
            excludes: Condition::default(),
        });
    }
    Ok(SeccompProfile {
        origin: origin.display().to_string(),
        default_action,
        extra_arches: Vec::new(),
        rules,
        warnings: Vec::new(),
    })
}

/// toml's messages span several lines with a source excerpt; keep the first line and the position.
pub(crate) fn one_line(s: &str) -> String {
    s.lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('|') && !l.contains(" | "))
        .collect::<Vec<_>>()
        .join(": ")
}

type FieldMsg = (Option<&'static str>, String);

fn action(name: &str, errno: Option<&ErrnoSpec>) -> Result<Action, FieldMsg> {
    let errno_val = match errno {
        None => libc::EPERM as u16,
        Some(ErrnoSpec::Number(n)) => *n,
        Some(ErrnoSpec::Name(n)) => errno_by_name(n)
            .ok_or_else(|| (Some("default_errno"), format!("unknown errno name `{n}`")))?,
    };
    Ok(match name {
        "allow" => Action::Allow,
        "errno" => Action::Errno(errno_val),
        "kill-process" => Action::KillProcess,
        "kill-thread" => Action::KillThread,
        "trap" => Action::Trap,
        "log" => Action::Log,
        other => {
            return Err((
                None,
                format!(
                    "unknown action `{other}` (allow, errno, kill-process, kill-thread, trap, log)"
                ),
            ))
        }
    })
}

fn cmp_op(name: &str) -> Option<CmpOp> {
    Some(match name {
        "ne" => CmpOp::Ne,
        "lt" => CmpOp::Lt,
        "le" => CmpOp::Le,
        "eq" => CmpOp::Eq,
        "ge" => CmpOp::Ge,
        "gt" => CmpOp::Gt,
        "masked-eq" => CmpOp::MaskedEq,
        _ => return None,
    })
}

/// The errno names a profile may use.
pub fn errno_by_name(name: &str) -> Option<u16> {
    let v = match name {
        "EPERM" => libc::EPERM,
        "ENOENT" => libc::ENOENT,
        "EIO" => libc::EIO,
        "EBADF" => libc::EBADF,
        "EAGAIN" => libc::EAGAIN,
        "ENOMEM" => libc::ENOMEM,
        "EACCES" => libc::EACCES,
        "EFAULT" => libc::EFAULT,
        "EBUSY" => libc::EBUSY,
        "EEXIST" => libc::EEXIST,
        "EINVAL" => libc::EINVAL,
        "ENOSPC" => libc::ENOSPC,
        "EROFS" => libc::EROFS,
        "ENOSYS" => libc::ENOSYS,
        "ENOTSUP" | "EOPNOTSUPP" => libc::EOPNOTSUPP,
        "EAFNOSUPPORT" => libc::EAFNOSUPPORT,
        "EPROTONOSUPPORT" => libc::EPROTONOSUPPORT,
        _ => return None,
    };
    Some(v as u16)
}
