//! breakout-vm: a disposable QEMU VM that runs a command and brings back its output, its exit
//! code and structured results on a channel of their own.
//!
//! Host side: [`run`] with a [`VmConfig`] and a [`VmSink`]:
//!
//! ```no_run
//! use breakout_vm::{CollectSink, GuestFile, VmConfig};
//! let cfg = VmConfig {
//!     files: vec![GuestFile::same_path("/usr/local/bin/tool")],
//!     timeout: Some(std::time::Duration::from_secs(600)),
//!     ..VmConfig::default()
//! };
//! let mut sink = CollectSink::default();
//! match breakout_vm::run(&cfg, &["/usr/local/bin/tool".into(), "--flag".into()], &mut sink) {
//!     Ok(outcome) => println!("exit {} after {:?}", outcome.exit_code, outcome.timings.total),
//!     Err(e) => eprintln!("{e} (exit code {})", e.exit_code()),
//! }
//! ```
//!
//! Guest side: [`guest::results`] for programs inside the VM, and [`init`], the guest's
//! PID 1 (binary `breakout-init`, found next to the running executable or via
//! `BREAKOUT_INIT`). The wire between them is described in [`channel`], the exit codes in
//! [`error`].

pub mod accel;
pub mod bundle;
pub mod channel;
pub mod cmdline;
pub mod console;
pub mod cpio;
pub mod elf;
pub mod error;
pub mod guest;
pub mod init;
pub mod initramfs;
pub mod kernel;
pub mod qemu;
mod run;
pub mod strip;

pub use error::{ConsoleTail, VmError};
pub use initramfs::GuestFile;
pub use kernel::Kernel;
pub use qemu::Accel;
pub use run::{
    boot, cache_dir, find_init, resolve_kernel, run, BootTimings, CollectSink, NullSink, Stream,
    VmConfig, VmOutcome, VmSink,
};
