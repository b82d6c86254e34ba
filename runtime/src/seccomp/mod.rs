//! The seccomp layer's policy: profiles in two formats (our TOML allowlists and Docker/OCI JSON,
//! loaded as they are), resolved against the sandbox's kept capabilities, the native architecture
//! and the running kernel, then compiled once to BPF with libseccomp (cached per policy).

pub mod allowlist;
pub mod compile;
pub mod oci;
pub mod policy;

pub use compile::Bpf;
pub use policy::{Action, ArgCond, CmpOp, ResolveContext, Resolved, Rule, SeccompProfile};

use std::path::{Path, PathBuf};

/// What can go wrong loading or compiling a seccomp profile. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("{}: cannot read seccomp profile: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: malformed seccomp profile: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("{}: field `{field}`: {message}", path.display())]
    Field {
        path: PathBuf,
        field: String,
        message: String,
    },
    #[error("{}: unknown builtin seccomp profile `{name}` (builtin: strict, docker-default)", path.display())]
    UnknownBuiltin { path: PathBuf, name: String },
    #[error("seccomp profile {source_name}: libseccomp refused {what}: {message}")]
    Compile {
        source_name: String,
        what: String,
        message: String,
    },
}

/// The seccomp profiles embedded in the binary, so it works anywhere (also in the VM).
const BUILTIN: &[(&str, &str)] = &[
    (
        "strict",
        include_str!("../../../profiles/seccomp/strict.toml"),
    ),
    (
        "docker-default",
        include_str!("../../../profiles/seccomp/docker-default.json"),
    ),
];

/// Load a seccomp profile: a builtin name (`strict`, `docker-default`) or a path to a `.json`
/// (Docker/OCI) or `.toml` (our allowlist) file. `base` resolves relative paths.
pub fn load(spec: &str, base: Option<&Path>) -> Result<SeccompProfile, SeccompError> {
    if let Some((name, text)) = BUILTIN.iter().find(|(n, _)| *n == spec) {
        let origin = PathBuf::from(format!("<builtin seccomp profile {name}>"));
        return parse(text, &origin, name.ends_with("default"));
    }
    if !spec.contains('/') && !spec.contains('.') {
        return Err(SeccompError::UnknownBuiltin {
            path: base.map(Path::to_path_buf).unwrap_or_default(),
            name: spec.to_string(),
        });
    }
    let path = match base {
        Some(dir) if Path::new(spec).is_relative() => dir.join(spec),
        _ => PathBuf::from(spec),
    };
    let text = std::fs::read_to_string(&path).map_err(|source| SeccompError::Read {
        path: path.clone(),
        source,
    })?;
    let json = path.extension().is_some_and(|e| e == "json");
    parse(&text, &path, json)
}

/// toml's messages span several lines; keep one.
pub fn allowlist_one_line(s: &str) -> String {
    allowlist::one_line(s)
}

fn parse(text: &str, origin: &Path, json: bool) -> Result<SeccompProfile, SeccompError> {
    if json {
        oci::parse(text, origin)
    } else {
        allowlist::parse(text, origin)
    }
}
