//! `breakout new-probe ID [--oracle NAME] [--dir PARENT]`: writes a file probe that works as it
//! is (it escapes a configuration without layers), for the user to sharpen: `PARENT/ID/probe.toml`
//! and `PARENT/ID/inside.sh`. Then `breakout run --probes PARENT/ID --profile none`.
//!
//! Exit codes: 0 written, 125 bad input (one line naming what and where).

use breakout_attacks::external::{self, ExternalProbe, ORACLES};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct NewProbeArgs {
    /// The new probe's id (lower-case letters, digits and `-`).
    #[arg(required_unless_present = "list_oracles")]
    pub id: Option<String>,
    /// The built-in oracle that judges it (`breakout new-probe --list-oracles` shows them).
    #[arg(long, value_name = "NAME", default_value = "secret-file")]
    pub oracle: String,
    /// Create the probe's directory under DIR.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Print the oracles with the arguments the inside half receives, and exit.
    #[arg(long)]
    pub list_oracles: bool,
}

pub fn run(args: NewProbeArgs) -> u8 {
    if args.list_oracles {
        for o in ORACLES {
            println!("{:<14} {}\n{:<14} args: {}", o.name, o.task, "", o.args);
            if !o.params.is_empty() {
                println!("{:<14} [oracle] parameters: {}", "", o.params);
            }
        }
        return 0;
    }
    match write(&args) {
        Ok(dir) => {
            println!(
                "wrote {}/probe.toml and {}/inside.sh",
                dir.display(),
                dir.display()
            );
            println!(
                "try it: breakout run --probes {} --profile none --profile strict --no-ablation",
                dir.display()
            );
            0
        }
        Err(message) => {
            eprintln!("breakout new-probe: {message}");
            125
        }
    }
}

/// Writes the skeleton; the error is one line.
pub fn write(args: &NewProbeArgs) -> Result<PathBuf, String> {
    let id = args.id.as_deref().unwrap_or_default();
    if !external::valid_id(id) {
        return Err(format!(
            "`{id}` is not a probe id (lower-case letters, digits and `-`, starting with a letter)"
        ));
    }
    if breakout_attacks::all_builtin()
        .iter()
        .any(|p| p.meta().id == id)
    {
        return Err(format!(
            "`{id}` is the id of a built-in probe; choose another"
        ));
    }
    let Some(doc) = ORACLES.iter().find(|o| o.name == args.oracle) else {
        return Err(format!(
            "--oracle: unknown oracle `{}` (known: {})",
            args.oracle,
            external::oracle_names().join(", ")
        ));
    };
    let dir = args.dir.join(id);
    if dir.exists() {
        return Err(format!(
            "{} already exists; not overwriting it",
            dir.display()
        ));
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let layers: Vec<String> = external::default_layers(doc.name)
        .iter()
        .map(|l| format!("\"{}\"", l.name()))
        .collect();
    let manifest = format!(
        r#"# A file probe: see docs/writing-probes.md.
id = "{id}"
title = "TODO: one line, what the probe attempts"
technique = """
TODO: two or three sentences for a student: what the attempt does and why it works on a bare
Linux process."""
references = []
# The layers that could stop it: ablation tests exactly these (`breakout list layers`).
layers = [{layers}]
# Seconds the inside half may run before it is killed.
timeout = 15
# The inside half: any executable in this directory.
inside = "inside.sh"

[oracle]
# How the outside proves an escape. The inside half receives: {args}
# and must: {task}.
name = "{oracle}"
"#,
        layers = layers.join(", "),
        args = doc.args,
        task = doc.task,
        oracle = doc.name,
    );
    let script = format!(
        r#"#!/bin/sh
# Inside half of {id}: runs inside the sandbox with key=value arguments ({args}).
# Everything it prints is evidence for the report; the verdict is the outside oracle's
# ({oracle}). Print `what you tried = ERRNO` (for example `kill(12) = EPERM`) for a refused
# step: it shows up in the `blocked` reason.
for arg in "$@"; do export "$arg"; done

{body}
"#,
        args = doc.args,
        oracle = doc.name,
        body = body(doc.name),
    );
    let toml_path = dir.join("probe.toml");
    std::fs::write(&toml_path, manifest)
        .map_err(|e| format!("writing {}: {e}", toml_path.display()))?;
    let inside = dir.join("inside.sh");
    std::fs::write(&inside, script).map_err(|e| format!("writing {}: {e}", inside.display()))?;
    std::fs::set_permissions(&inside, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod 755 {}: {e}", inside.display()))?;
    // What we wrote must load: the same checks as `--probes`.
    ExternalProbe::load(&dir).map_err(|e| format!("the skeleton does not load: {e}"))?;
    Ok(dir)
}

/// The shell body that escapes a configuration without layers, per oracle.
fn body(oracle: &str) -> &'static str {
    match oracle {
        "secret-file" => r#"cat "$path" || echo "open($path) = EACCES""#,
        "victim-memory" => {
            r#"# The secret sits at $addr in the victim's heap: read it through /proc/PID/mem.
dd if="/proc/$pid/mem" bs=1 skip="$((addr))" count="$len" 2>/dev/null || echo "read(/proc/$pid/mem) = EACCES"
echo"#
        }
        "victim-killed" => r#"kill -9 "$pid" || echo "kill($pid, SIGKILL) = EPERM""#,
        "listener" => {
            r#"nc -w 2 127.0.0.1 "$port" </dev/null || echo "connect(127.0.0.1:$port) = ECONNREFUSED""#
        }
        "hostname" => r#"hostname "$name" || echo "sethostname($name) = EPERM""#,
        "clock" => {
            r#"date -s "@$(( $(date +%s) + offset_s ))" || echo "clock_settime(+$offset_s s) = EPERM""#
        }
        "kernel-log" => r#"dmesg | grep -F "$tag:" || echo "syslog(READ_ALL) = EPERM""#,
        "file-outside" => {
            r#"printf '%s\n' "$content" > "$path" || echo "open($path, O_CREAT) = EACCES""#
        }
        "sysctl" => r#"printf '%s\n' "$value" > "$path" || echo "write($path) = EROFS""#,
        "cgroup-pids" => {
            r#"# Start $count processes at once; the outside samples the cgroup's process count.
# Each is a forked shell blocked opening a fifo (a fork without an exec is quick even in a slow VM).
fifo=$(mktemp -u /tmp/pids-XXXXXX)
mkfifo "$fifo" || echo "mkfifo($fifo) = EACCES"
i=0
while [ "$i" -lt "$count" ]; do
    ( read -r _ < "$fifo" ) 2>/dev/null &
    i=$((i + 1))
done
sleep "$((hold_ms / 1000 + 1))"
: > "$fifo"   # opening it for writing releases them all
wait
rm -f "$fifo""#
        }
        "cgroup-memory" => {
            r#"# dd's buffer is $bytes long and is filled in one read: that is the memory held.
dd if=/dev/zero of=/dev/null bs="$bytes" count=1 || echo "malloc($bytes) = ENOMEM"
sleep "$((hold_ms / 1000))""#
        }
        _ => "echo 'TODO: the attempt'",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_oracle_gets_a_skeleton_that_loads() {
        let tmp = tempfile::tempdir().unwrap();
        for o in ORACLES {
            let args = NewProbeArgs {
                id: Some(format!("new-{}", o.name)),
                oracle: o.name.to_string(),
                dir: tmp.path().to_path_buf(),
                list_oracles: false,
            };
            let dir = write(&args).unwrap();
            assert!(dir.join(external::MANIFEST).is_file());
            let p = ExternalProbe::load(&dir).unwrap();
            assert_eq!(p.oracle_name(), o.name);
            assert!(
                !breakout_attacks::Probe::meta(&p).layers.is_empty(),
                "{}",
                o.name
            );
        }
    }

    #[test]
    fn bad_input_is_one_line() {
        let tmp = tempfile::tempdir().unwrap();
        let mut args = NewProbeArgs {
            id: Some("x1".into()),
            oracle: "nope".into(),
            dir: tmp.path().to_path_buf(),
            list_oracles: false,
        };
        let e = write(&args).unwrap_err();
        assert!(e.starts_with("--oracle: unknown oracle `nope`"), "{e}");
        args.oracle = "hostname".into();
        args.id = Some("hostname".into());
        assert!(write(&args).unwrap_err().contains("built-in"));
        args.id = Some("Bad_Id".into());
        assert!(write(&args).unwrap_err().contains("not a probe id"));
        args.id = Some("twice".into());
        write(&args).unwrap();
        assert!(write(&args).unwrap_err().contains("already exists"));
    }
}
