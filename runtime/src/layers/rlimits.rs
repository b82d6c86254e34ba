//! rlimits: setrlimit for each configured resource (soft = hard, so the payload cannot raise it).

use crate::config::SandboxConfig;
use crate::layer::Layer;
use crate::step::{Op, Step};
use nix::sys::resource::Resource;

pub fn resource(name: &str) -> Option<Resource> {
    Some(match name {
        "as" => Resource::RLIMIT_AS,
        "core" => Resource::RLIMIT_CORE,
        "cpu" => Resource::RLIMIT_CPU,
        "data" => Resource::RLIMIT_DATA,
        "fsize" => Resource::RLIMIT_FSIZE,
        "memlock" => Resource::RLIMIT_MEMLOCK,
        "msgqueue" => Resource::RLIMIT_MSGQUEUE,
        "nice" => Resource::RLIMIT_NICE,
        "nofile" => Resource::RLIMIT_NOFILE,
        "nproc" => Resource::RLIMIT_NPROC,
        "rtprio" => Resource::RLIMIT_RTPRIO,
        "sigpending" => Resource::RLIMIT_SIGPENDING,
        "stack" => Resource::RLIMIT_STACK,
        _ => return None,
    })
}

pub(crate) fn steps(cfg: &SandboxConfig) -> Vec<Step> {
    cfg.rlimits
        .iter()
        .filter_map(|(name, v)| {
            resource(name).map(|r| {
                Step::new(
                    Some(Layer::Rlimits),
                    format!("setrlimit(RLIMIT_{}, {v})", name.to_uppercase()),
                    Op::SetRlimit {
                        resource: r,
                        value: *v,
                    },
                )
            })
        })
        .collect()
}
