//! The engine of a run: the plan ([`plan`]), the host side that boots the VMs and collects the
//! results ([`host`]), the orchestrator inside the guest ([`guest`]) with the launcher on our
//! runtime ([`launcher`]), attribution by ablation ([`attribution`]), the environment block
//! ([`environment`]), file probes ([`file_probes`]), the regression gate ([`gate`]) and the labs'
//! grading ([`lab`]), and the recordings behind `breakout learn` ([`learn`]).

pub mod attribution;
pub mod environment;
pub mod file_probes;
pub mod gate;
pub mod guest;
pub mod guest_workloads;
pub mod guests;
pub mod host;
pub mod lab;
pub mod launcher;
pub mod learn;
pub mod plan;
pub mod shard;
