//! Every way a VM run can fail, each with its own exit code for `breakout vm-run`.
//!
//! | code | error |
//! |---|---|
//! | 240 | QEMU missing (`qemu-system-x86_64` not found: install Debian package qemu-system-x86) |
//! | 241 | kernel missing or cannot be provisioned |
//! | 242 | guest image (initramfs) cannot be built |
//! | 243 | boot timeout: the command did not start in time |
//! | 244 | command timeout (`--timeout`) |
//! | 245 | kernel panic |
//! | 246 | guest out of memory |
//! | 247 | QEMU crashed or the guest died without reporting |
//! | 248 | guest init failed, or the channel lost frames (named by number, kind and size) |
//! | 249 | invalid configuration |
//! | 250 | host I/O error |
//!
//! Codes 0-239 are the command's own exit code (128+N for signal N), passed through exactly.

use crate::initramfs::ImageError;
use crate::kernel::KernelError;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

/// The last console lines, for messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsoleTail(pub Vec<String>);

impl std::fmt::Display for ConsoleTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return write!(f, "\n  (the console printed nothing)");
        }
        write!(f, "\nlast console lines:")?;
        for line in &self.0 {
            write!(f, "\n  | {line}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Error)]
pub enum VmError {
    #[error("QEMU not found: {binary} is missing (install the Debian package qemu-system-x86)")]
    QemuMissing { binary: String },
    #[error("kernel: {0}")]
    Kernel(#[from] KernelError),
    #[error("guest image: {0}")]
    Image(#[from] ImageError),
    #[error("second guest image: {0}")]
    Bundle(#[from] crate::bundle::BundleError),
    #[error("boot timeout: the command had not started after {waited:?}{tail}")]
    BootTimeout { waited: Duration, tail: ConsoleTail },
    #[error("command timeout: still running after {timeout:?}, VM killed{tail}")]
    CommandTimeout {
        timeout: Duration,
        tail: ConsoleTail,
    },
    #[error("kernel panic: {reason}{tail}")]
    KernelPanic { reason: String, tail: ConsoleTail },
    #[error("guest out of memory: {reason}{tail}")]
    GuestOom { reason: String, tail: ConsoleTail },
    #[error("QEMU crashed or the guest died without a result: {reason}{tail}")]
    QemuCrash { reason: String, tail: ConsoleTail },
    #[error("guest init failed: {reason}{tail}")]
    GuestInit { reason: String, tail: ConsoleTail },
    /// Frames that init sent did not all arrive whole: what was lost cannot be trusted to be
    /// only what the message names, so the run as a whole failed.
    #[error("the channel from the guest lost data: {lost}{tail}")]
    ChannelLoss { lost: String, tail: ConsoleTail },
    #[error("invalid VM configuration: {0}")]
    Config(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl VmError {
    /// The documented exit code of `breakout vm-run` for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            VmError::QemuMissing { .. } => 240,
            // A kernel name that does not exist is bad input, not a failure of the VM.
            VmError::Kernel(KernelError::UnknownName(_)) => 125,
            VmError::Kernel(_) => 241,
            VmError::Image(_) | VmError::Bundle(_) => 242,
            VmError::BootTimeout { .. } => 243,
            VmError::CommandTimeout { .. } => 244,
            VmError::KernelPanic { .. } => 245,
            VmError::GuestOom { .. } => 246,
            VmError::QemuCrash { .. } => 247,
            // The channel is init's: a loss is init's job undone, like a failed setup.
            VmError::GuestInit { .. } | VmError::ChannelLoss { .. } => 248,
            VmError::Config(_) => 249,
            VmError::Io { .. } => 250,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_distinct_and_above_command_codes() {
        let tail = ConsoleTail::default();
        let errors = [
            VmError::QemuMissing { binary: "q".into() },
            VmError::Kernel(KernelError::Missing(PathBuf::from("/k"))),
            VmError::Image(ImageError::NotAbsolute(PathBuf::from("x"))),
            VmError::BootTimeout {
                waited: Duration::from_secs(1),
                tail: tail.clone(),
            },
            VmError::CommandTimeout {
                timeout: Duration::from_secs(1),
                tail: tail.clone(),
            },
            VmError::KernelPanic {
                reason: "x".into(),
                tail: tail.clone(),
            },
            VmError::GuestOom {
                reason: "x".into(),
                tail: tail.clone(),
            },
            VmError::QemuCrash {
                reason: "x".into(),
                tail: tail.clone(),
            },
            VmError::GuestInit {
                reason: "x".into(),
                tail: tail.clone(),
            },
            VmError::Config("x".into()),
            VmError::Io {
                what: "x",
                path: PathBuf::new(),
                source: std::io::Error::other("x"),
            },
        ];
        let mut codes: Vec<i32> = errors.iter().map(VmError::exit_code).collect();
        assert!(codes.iter().all(|c| (240..=250).contains(c)));
        // The one shared code, as the table says.
        let loss = VmError::ChannelLoss {
            lost: "frame 3 never arrived".into(),
            tail,
        };
        assert_eq!(loss.exit_code(), 248);
        assert!(loss.to_string().contains("frame 3 never arrived"));
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), errors.len());
    }

    #[test]
    fn messages_quote_the_console_and_name_the_package() {
        let e = VmError::KernelPanic {
            reason: "sysrq triggered crash".into(),
            tail: ConsoleTail(vec!["[ 1.0] sysrq: Trigger a crash".into()]),
        };
        let msg = e.to_string();
        assert!(msg.contains("| [ 1.0] sysrq: Trigger a crash"), "{msg}");
        let q = VmError::QemuMissing {
            binary: "qemu-system-x86_64".into(),
        };
        assert!(q.to_string().contains("qemu-system-x86"));
    }
}
