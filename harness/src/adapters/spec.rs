//! Runtime specs as the user writes them wherever a profile name is accepted: `oci:PATH`,
//! `oci+runc:PATH`, `oci+runsc:PATH`, `cmd:'WRAPPER ARGS'`, `podman:'FLAGS'`, or a runtime's
//! short name (`crun`, `bwrap`, ...). Checked on the host before anything boots: the file
//! parses, the wrapper exists. A runtime breakout knows but that is not installed is no error:
//! its cells are `skipped`, naming the package to install.

use super::{registry, ExternalSpec};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("{spec}: cannot read {path}: {message}")]
    Read {
        spec: String,
        path: PathBuf,
        message: String,
    },
    #[error("{spec}: {path} is not valid JSON: {message}")]
    Json {
        spec: String,
        path: PathBuf,
        message: String,
    },
    #[error("{spec}: {path}: {message}")]
    Config {
        spec: String,
        path: PathBuf,
        message: String,
    },
    #[error("{spec}: `{runtime}` is not an OCI runtime breakout knows ({known})")]
    UnknownOciRuntime {
        spec: String,
        runtime: String,
        known: String,
    },
    #[error("{spec}: {message}")]
    Words { spec: String, message: String },
    #[error("{spec}: the wrapper `{program}` is not installed (not found{where_})")]
    ToolMissing {
        spec: String,
        program: String,
        where_: String,
    },
    #[error("{spec}: unknown kind `{kind}:` (runtime specs: oci:PATH, oci+RUNTIME:PATH, cmd:'WRAPPER ARGS', podman:'FLAGS')")]
    UnknownKind { spec: String, kind: String },
}

/// The spec a configuration name stands for; None when it is not a runtime spec (a profile).
pub fn parse(name: &str) -> Result<Option<ExternalSpec>, SpecError> {
    if let Some(runtime) = registry::by_name(name) {
        return Ok(Some(runtime.spec()));
    }
    let Some((kind, rest)) = name.split_once(':') else {
        return Ok(None);
    };
    if let Some(runtime) = kind
        .strip_prefix("oci+")
        .or((kind == "oci").then_some("crun"))
    {
        return oci(name, runtime, rest).map(Some);
    }
    match kind {
        "cmd" => cmd(name, rest).map(Some),
        "podman" => Ok(Some(ExternalSpec::Podman {
            flags: split_words(rest).map_err(|message| SpecError::Words {
                spec: name.to_string(),
                message,
            })?,
        })),
        _ => Err(SpecError::UnknownKind {
            spec: name.to_string(),
            kind: kind.to_string(),
        }),
    }
}

fn oci(spec: &str, runtime: &str, path: &str) -> Result<ExternalSpec, SpecError> {
    let known: Vec<&str> = registry::RUNTIMES
        .iter()
        .filter(|r| matches!(r.kind, registry::Kind::Oci { .. }))
        .map(|r| r.name)
        .collect();
    if !known.contains(&runtime) {
        return Err(SpecError::UnknownOciRuntime {
            spec: spec.to_string(),
            runtime: runtime.to_string(),
            known: known.join(", "),
        });
    }
    let path = PathBuf::from(path);
    let text = std::fs::read_to_string(&path).map_err(|e| SpecError::Read {
        spec: spec.to_string(),
        path: path.clone(),
        message: e.to_string(),
    })?;
    let config: serde_json::Value = serde_json::from_str(&text).map_err(|e| SpecError::Json {
        spec: spec.to_string(),
        path: path.clone(),
        message: e.to_string(),
    })?;
    check_config(&config, runtime).map_err(|message| SpecError::Config {
        spec: spec.to_string(),
        path: path.clone(),
        message,
    })?;
    Ok(ExternalSpec::Oci {
        runtime: runtime.to_string(),
        source: path.display().to_string(),
        config,
    })
}

/// The shape the items are read from: what the runtime would reject later, said now.
fn check_config(config: &serde_json::Value, runtime: &str) -> Result<(), String> {
    if !config.is_object() {
        return Err("the top level is not a JSON object".to_string());
    }
    if let Some(ns) = config.pointer("/linux/namespaces") {
        let list = ns.as_array().ok_or("linux.namespaces is not an array")?;
        for (i, n) in list.iter().enumerate() {
            let kind = n
                .get("type")
                .and_then(|t| t.as_str())
                .ok_or_else(|| format!("linux.namespaces[{i}] has no string `type`"))?;
            const KNOWN: [&str; 8] = [
                "pid", "network", "ipc", "uts", "mount", "cgroup", "user", "time",
            ];
            if !KNOWN.contains(&kind) {
                return Err(format!(
                    "linux.namespaces[{i}]: unknown type `{kind}` ({})",
                    KNOWN.join(", ")
                ));
            }
        }
    }
    for set in [
        "bounding",
        "effective",
        "permitted",
        "inheritable",
        "ambient",
    ] {
        if let Some(list) = config.pointer(&format!("/process/capabilities/{set}")) {
            let all = super::cmd::all_caps();
            let known = super::oci::runtime_caps(runtime);
            for cap in list
                .as_array()
                .ok_or(format!("process.capabilities.{set} is not an array"))?
            {
                let name = cap.as_str().unwrap_or("");
                if !all.iter().any(|c| c == name) {
                    return Err(format!(
                        "process.capabilities.{set}: unknown capability {cap}"
                    ));
                }
                if !known.iter().any(|c| c == name) {
                    return Err(format!(
                        "process.capabilities.{set}: {runtime} does not know {name} (it knows \
                         capabilities up to {}; a config naming a later one does not start)",
                        known.last().map(String::as_str).unwrap_or("none")
                    ));
                }
            }
        }
    }
    if let Some(seccomp) = config.pointer("/linux/seccomp") {
        if !seccomp.is_null()
            && seccomp
                .get("defaultAction")
                .and_then(|a| a.as_str())
                .is_none()
        {
            return Err("linux.seccomp has no string `defaultAction`".to_string());
        }
    }
    Ok(())
}

fn cmd(spec: &str, rest: &str) -> Result<ExternalSpec, SpecError> {
    let mut argv = split_words(rest).map_err(|message| SpecError::Words {
        spec: spec.to_string(),
        message,
    })?;
    let Some(program) = argv.first().cloned() else {
        return Err(SpecError::Words {
            spec: spec.to_string(),
            message: "no wrapper named (cmd:'WRAPPER ARGS', e.g. cmd:'bwrap --unshare-pid --ro-bind / / --proc /proc --dev /dev')"
                .to_string(),
        });
    };
    argv[0] = match resolve(&program) {
        Some(path) => path.display().to_string(),
        // A runtime breakout knows: its cells are skipped, naming the package.
        None => match registry::for_binary(&program) {
            Some(rt) => rt.binary.to_string(),
            None => {
                return Err(SpecError::ToolMissing {
                    spec: spec.to_string(),
                    program: program.clone(),
                    where_: if program.contains('/') {
                        String::new()
                    } else {
                        " in PATH".to_string()
                    },
                })
            }
        },
    };
    super::cmd::check(&argv).map_err(|message| SpecError::Words {
        spec: spec.to_string(),
        message,
    })?;
    Ok(ExternalSpec::Cmd { argv })
}

/// The absolute path of a program: as given when it has a slash, else found in PATH.
fn resolve(program: &str) -> Option<PathBuf> {
    let is_exec = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = std::path::absolute(program).ok()?;
        return is_exec(&path).then_some(path);
    }
    let search = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&search)
        .map(|dir| dir.join(program))
        .find(|p| is_exec(p))
}

/// Words as a POSIX shell splits them: blanks separate, '...' and "..." quote, \ escapes.
pub fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated ' quote".to_string()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated \" quote".to_string()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated \" quote".to_string()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("a trailing \\ escapes nothing".to_string()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    // `cmd:'bwrap --unshare-pid'` reaches us with its quotes when it was quoted twice (in a
    // script, or in a shell that passed the quotes on): the one quoted word is the command line.
    if let [only] = words.as_slice() {
        if only.contains(char::is_whitespace) {
            return split_words(&only.clone());
        }
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split_words(r#"bwrap --setenv A 'b c' "d \"e\"" f\ g"#).unwrap(),
            ["bwrap", "--setenv", "A", "b c", "d \"e\"", "f g"]
        );
        assert_eq!(split_words("'open").unwrap_err(), "unterminated ' quote");
    }

    #[test]
    fn short_names_and_profiles() {
        assert!(matches!(parse("crun"), Ok(Some(ExternalSpec::Oci { .. }))));
        assert!(matches!(parse("bwrap"), Ok(Some(ExternalSpec::Cmd { .. }))));
        assert_eq!(parse("strict"), Ok(None));
        assert_eq!(parse("profiles/x.toml"), Ok(None));
        assert!(parse("docker:x")
            .unwrap_err()
            .to_string()
            .contains("unknown kind `docker:`"));
    }

    #[test]
    fn bad_configs_are_named_with_the_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, "{\n  \"linux\": {\n    \"namespaces\": [\n  }\n}\n").unwrap();
        let spec = format!("oci:{}", path.display());
        let err = parse(&spec).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{spec}: {} is not valid JSON:", path.display()))
                && err.contains("line 4 column 3"),
            "{err}"
        );
        std::fs::write(&path, r#"{"linux": {"namespaces": [{"type": "pids"}]}}"#).unwrap();
        let err = parse(&spec).unwrap_err().to_string();
        assert!(
            err.contains("linux.namespaces[0]: unknown type `pids`"),
            "{err}"
        );
        let err = parse("oci+docker:/x.json").unwrap_err().to_string();
        // The registry's OCI runtimes, in its order, and not its wrappers or podman.
        let oci: Vec<&str> = registry::RUNTIMES
            .iter()
            .filter(|r| matches!(r.kind, registry::Kind::Oci { .. }))
            .map(|r| r.name)
            .collect();
        assert!(
            err.contains(&format!(
                "`docker` is not an OCI runtime breakout knows ({})",
                oci.join(", ")
            )) && err.contains("crun")
                && !err.contains("bwrap")
                && !err.contains("podman"),
            "{err}"
        );
        let err = parse("oci:/nonexistent/config.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot read /nonexistent/config.json"),
            "{err}"
        );
    }

    #[test]
    fn a_wrapper_that_would_exit_before_the_probe_is_refused() {
        let err = parse("cmd:bwrap --unshare-pdi --ro-bind / /")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "cmd:bwrap --unshare-pdi --ro-bind / /: bwrap has no option `--unshare-pdi` \
             (bubblewrap 0.8's options; did you mean --unshare-pid?)"
        );
        let err = parse("cmd:bwrap --unshare-pid --ro-bind /")
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("bwrap option `--ro-bind` takes 2 arguments but the line ends first (the probe is appended at the end, so it would become the argument)"),
            "{err}"
        );
        assert!(parse("cmd:bwrap --unshare-all --ro-bind / / --proc /proc").is_ok());
        // firejail's list is not its whole: an option it does not list is kept.
        assert!(parse("cmd:firejail --quiet --whatever").is_ok());
    }

    #[test]
    fn a_missing_wrapper_is_an_error_a_known_runtime_is_not() {
        let err = parse("cmd:'no-such-jail --x'").unwrap_err().to_string();
        assert_eq!(
            err,
            "cmd:'no-such-jail --x': the wrapper `no-such-jail` is not installed (not found in PATH)"
        );
        // firejail may be missing here: it is still a spec, its cells are skipped.
        let spec = parse("cmd:firejail --noroot").unwrap().unwrap();
        assert_eq!(
            spec,
            ExternalSpec::Cmd {
                argv: vec![
                    resolve("firejail")
                        .map(|p| p.display().to_string())
                        .unwrap_or("/usr/bin/firejail".to_string()),
                    "--noroot".to_string()
                ]
            }
        );
    }
}
