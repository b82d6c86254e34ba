//! The `breakout` commands: one module per verb, holding its arguments and its printing; the
//! work is in [`crate::suite`], the text in [`crate::describe`] and [`crate::report`]. No command
//! calls another command's module; what several share is in [`progress`].

pub mod compare;
pub mod exit_codes;
pub mod explain;
pub mod gate;
pub mod guest_exec;
pub mod lab;
pub mod learn;
pub mod list;
pub mod merge;
pub mod new_probe;
pub mod progress;
pub mod run;
pub mod sandbox;
pub mod vm_run;
