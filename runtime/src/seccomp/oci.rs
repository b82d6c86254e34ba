//! Docker / OCI JSON seccomp profiles, loaded as they are: defaultAction, defaultErrnoRet,
//! archMap, syscalls[].names/action/errnoRet/args and includes/excludes (caps, arches,
//! minKernel). A syscall name libseccomp does not know is an error in a rule that denies (a typo
//! such as `ptarce` would silently take a call out of a deny list) and a warning in a rule that
//! allows, where it is skipped as Docker does (its profile names calls older kernels lack).

use super::policy::{
    native_scmp_arch, parse_kernel_version, Action, ArgCond, CmpOp, Condition, Rule, SeccompProfile,
};
use super::SeccompError;
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    default_errno_ret: Option<u32>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMap>>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    syscalls: Option<Vec<Syscall>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Syscall {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    name: Option<String>,
    action: String,
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<Arg>>,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// Parse a Docker/OCI profile. `origin` names the file in errors.
pub fn parse(text: &str, origin: &Path) -> Result<SeccompProfile, SeccompError> {
    let p: Profile = serde_json::from_str(text).map_err(|e| SeccompError::Syntax {
        path: origin.to_path_buf(),
        message: e.to_string(),
    })?;
    let field_err = |field: String, message: String| SeccompError::Field {
        path: origin.to_path_buf(),
        field,
        message,
    };
    let default_errno = p.default_errno_ret.unwrap_or(libc::EPERM as u32);
    let default_action = action(&p.default_action, Some(default_errno))
        .map_err(|m| field_err("defaultAction".into(), m))?;

    let native = native_scmp_arch();
    let mut extra_arches = Vec::new();
    for m in p.arch_map.iter().flatten() {
        if m.architecture == native {
            extra_arches.extend(m.sub_architectures.iter().flatten().cloned());
        }
    }
    // The older `architectures` list: every listed arch goes in (libseccomp ignores duplicates).
    for a in p.architectures.iter().flatten() {
        if a != native && !extra_arches.contains(a) {
            extra_arches.push(a.clone());
        }
    }
    for (i, a) in extra_arches.iter().enumerate() {
        a.parse::<libseccomp::ScmpArch>().map_err(|_| {
            field_err(
                format!("archMap (arch {i})"),
                format!("unknown architecture `{a}`"),
            )
        })?;
    }

    let mut rules = Vec::new();
    let mut warnings = Vec::new();
    for (i, s) in p.syscalls.into_iter().flatten().enumerate() {
        let mut names = s.names;
        names.extend(s.name);
        let act = action(&s.action, Some(s.errno_ret.unwrap_or(libc::EPERM as u32)))
            .map_err(|m| field_err(format!("syscalls[{i}].action"), m))?;
        let unknown: Vec<&String> = names
            .iter()
            .filter(|n| libseccomp::ScmpSyscall::from_name(n).is_err())
            .collect();
        if !unknown.is_empty() {
            // A rule that repeats the default action changes nothing, so losing a name from
            // it weakens nothing either.
            if act.permits() || act == default_action {
                warnings.push(format!(
                    "{}: syscalls[{i}] ({}): libseccomp does not know {}, skipped",
                    origin.display(),
                    s.action,
                    unknown
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            } else {
                let j = names.iter().position(|n| n == unknown[0]).unwrap_or(0);
                return Err(field_err(
                    format!("syscalls[{i}].names[{j}]"),
                    format!(
                        "unknown syscall `{}` in a rule with action {}: a name the filter cannot match would silently leave the call out of the rule",
                        unknown[0], s.action
                    ),
                ));
            }
        }
        let mut args = Vec::new();
        for (j, a) in s.args.into_iter().flatten().enumerate() {
            let op =
                cmp_op(&a.op).map_err(|m| field_err(format!("syscalls[{i}].args[{j}].op"), m))?;
            if a.index > 5 {
                return Err(field_err(
                    format!("syscalls[{i}].args[{j}].index"),
                    format!("argument index {} out of range 0..=5", a.index),
                ));
            }
            args.push(ArgCond {
                index: a.index,
                op,
                value: a.value,
                value_two: a.value_two,
            });
        }
        let includes = condition(s.includes.unwrap_or_default())
            .map_err(|m| field_err(format!("syscalls[{i}].includes.minKernel"), m))?;
        let excludes = condition(s.excludes.unwrap_or_default())
            .map_err(|m| field_err(format!("syscalls[{i}].excludes.minKernel"), m))?;
        rules.push(Rule {
            names,
            action: act,
            args,
            includes,
            excludes,
        });
    }
    Ok(SeccompProfile {
        origin: origin.display().to_string(),
        default_action,
        extra_arches,
        rules,
        warnings,
    })
}

fn condition(f: Filter) -> Result<Condition, String> {
    let min_kernel = match f.min_kernel {
        Some(v) => {
            Some(parse_kernel_version(&v).ok_or_else(|| format!("bad kernel version `{v}`"))?)
        }
        None => None,
    };
    Ok(Condition {
        caps: f.caps.unwrap_or_default(),
        arches: f.arches.unwrap_or_default(),
        min_kernel,
    })
}

fn action(name: &str, errno: Option<u32>) -> Result<Action, String> {
    let ret = errno.unwrap_or(libc::EPERM as u32);
    let ret16 = u16::try_from(ret).map_err(|_| format!("errno {ret} out of range"))?;
    Ok(match name {
        "SCMP_ACT_ALLOW" => Action::Allow,
        "SCMP_ACT_ERRNO" => Action::Errno(ret16),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
        "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
        "SCMP_ACT_TRAP" => Action::Trap,
        "SCMP_ACT_LOG" => Action::Log,
        "SCMP_ACT_TRACE" => Action::Trace(ret16),
        other => return Err(format!("unsupported action `{other}`")),
    })
}

fn cmp_op(name: &str) -> Result<CmpOp, String> {
    Ok(match name {
        "SCMP_CMP_NE" => CmpOp::Ne,
        "SCMP_CMP_LT" => CmpOp::Lt,
        "SCMP_CMP_LE" => CmpOp::Le,
        "SCMP_CMP_EQ" => CmpOp::Eq,
        "SCMP_CMP_GE" => CmpOp::Ge,
        "SCMP_CMP_GT" => CmpOp::Gt,
        "SCMP_CMP_MASKED_EQ" => CmpOp::MaskedEq,
        other => return Err(format!("unknown comparison `{other}`")),
    })
}
