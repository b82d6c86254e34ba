//! The command to run travels on the kernel command line (`breakout.argv=`, `breakout.env=`,
//! `breakout.cwd=`), which init reads from /proc/cmdline. Parameters with a dot are taken by
//! the kernel as module options and neither interpreted nor passed to init's argv/env.
//!
//! Values are percent-encoded lists: elements joined by `,`, and every byte outside
//! `[A-Za-z0-9_./:+=@-]` written as `%XX`, so no quoting rules of the kernel apply.

use thiserror::Error;

/// x86's COMMAND_LINE_SIZE is 2048 including the NUL; keep a margin for the fixed options.
pub const MAX_CMDLINE: usize = 2047;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CmdlineError {
    #[error("bad percent escape at byte {0} of {1:?}")]
    Escape(usize, String),
    #[error("decoded value is not UTF-8: {0:?}")]
    Utf8(String),
    #[error("kernel command line would be {len} bytes, the kernel takes at most {max}: shorten the arguments or environment")]
    TooLong { len: usize, max: usize },
    #[error("parameter {0} is missing from the kernel command line")]
    Missing(&'static str),
}

fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_./:+=@-".contains(&b)
}

pub fn encode_one(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if is_plain(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn decode_one(s: &str) -> Result<String, CmdlineError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| CmdlineError::Escape(i, s.to_string()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| CmdlineError::Utf8(s.to_string()))
}

pub fn encode_list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| encode_one(s))
        .collect::<Vec<_>>()
        .join(",")
}

pub fn decode_list(s: &str) -> Result<Vec<String>, CmdlineError> {
    s.split(',').map(decode_one).collect()
}

/// What init needs to know about the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestCommand {
    pub argv: Vec<String>,
    /// `KEY=VALUE` entries added to init's fixed environment.
    pub env: Vec<String>,
    pub cwd: Option<String>,
}

impl GuestCommand {
    /// The full kernel command line: fixed options, then ours.
    pub fn to_cmdline(&self, base: &str) -> Result<String, CmdlineError> {
        let mut line = format!("{base} breakout.argv={}", encode_list(&self.argv));
        if !self.env.is_empty() {
            line.push_str(&format!(" breakout.env={}", encode_list(&self.env)));
        }
        if let Some(cwd) = &self.cwd {
            line.push_str(&format!(" breakout.cwd={}", encode_one(cwd)));
        }
        if line.len() > MAX_CMDLINE {
            return Err(CmdlineError::TooLong {
                len: line.len(),
                max: MAX_CMDLINE,
            });
        }
        Ok(line)
    }

    /// Reads our parameters back from /proc/cmdline's text.
    pub fn from_cmdline(text: &str) -> Result<Self, CmdlineError> {
        let mut argv = None;
        let mut env = Vec::new();
        let mut cwd = None;
        for word in text.split_ascii_whitespace() {
            if let Some(v) = word.strip_prefix("breakout.argv=") {
                argv = Some(decode_list(v)?);
            } else if let Some(v) = word.strip_prefix("breakout.env=") {
                env = decode_list(v)?;
            } else if let Some(v) = word.strip_prefix("breakout.cwd=") {
                cwd = Some(decode_one(v)?);
            }
        }
        Ok(GuestCommand {
            argv: argv.ok_or(CmdlineError::Missing("breakout.argv"))?,
            env,
            cwd,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn awkward_arguments_round_trip() {
        let cmd = GuestCommand {
            argv: vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo \"a b\",c; exit 7 # 100% ünïcode".into(),
                "".into(),
                "x=y".into(),
            ],
            env: vec!["RUST_BACKTRACE=1".into(), "A=b c".into()],
            cwd: Some("/work dir".into()),
        };
        let line = cmd.to_cmdline("console=ttyS0 quiet").unwrap();
        assert!(!line.contains('"'));
        assert_eq!(line.split_ascii_whitespace().count(), 5);
        assert_eq!(GuestCommand::from_cmdline(&line).unwrap(), cmd);
    }

    #[test]
    fn too_long_is_a_clear_error() {
        let cmd = GuestCommand {
            argv: vec!["x".repeat(3000)],
            env: vec![],
            cwd: None,
        };
        assert!(matches!(
            cmd.to_cmdline("console=ttyS0"),
            Err(CmdlineError::TooLong { .. })
        ));
    }

    #[test]
    fn bad_escapes_and_missing_argv_are_errors() {
        assert!(matches!(decode_one("a%4"), Err(CmdlineError::Escape(1, _))));
        assert!(matches!(decode_one("%zz"), Err(CmdlineError::Escape(0, _))));
        assert!(matches!(decode_one("%ff"), Err(CmdlineError::Utf8(_))));
        assert_eq!(
            GuestCommand::from_cmdline("console=ttyS0 quiet"),
            Err(CmdlineError::Missing("breakout.argv"))
        );
    }
}
