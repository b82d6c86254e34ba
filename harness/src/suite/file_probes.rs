//! The host and guest glue for probes from files (`attacks/src/external.rs`): the `--probes DIR`
//! flag of `run` and `compare`, the probe directories that travel into the guest image (under
//! [`GUEST_PROBES_DIR`], which sandboxes see), and their registration in the guest before the plan
//! is checked.
//!
//! The plan file does not list them: the image is the one source, so the guest registers
//! whatever lies under [`GUEST_PROBES_DIR`] and `breakout-probe` finds the same files.

use crate::suite::plan::Job;
use breakout_attacks::external::{self, ExternalError, GUEST_PROBES_DIR};
use breakout_vm::GuestFile;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct FileProbeArgs {
    /// Load probes from files: DIR holds a probe.toml, or directories that do (see
    /// docs/writing-probes.md); repeat. Without --probe, only these probes run.
    #[arg(long = "probes", value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
}

impl FileProbeArgs {
    /// Registers every file probe and returns the probe ids to run: `named` when the user named
    /// some, else the file probes (else nothing, which means every probe).
    pub fn probes_to_run(&self, named: &[String]) -> Result<Vec<String>, ExternalError> {
        let mut ids = Vec::new();
        for dir in &self.dirs {
            for p in external::register_all(dir)? {
                let id = breakout_attacks::Probe::meta(p).id.to_string();
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        Ok(if named.is_empty() {
            ids
        } else {
            named.to_vec()
        })
    }
}

/// The guest files of the file probes among `jobs`: each probe's directory, whole, at
/// `GUEST_PROBES_DIR/<id>`.
pub fn guest_files(jobs: &[Job]) -> Vec<GuestFile> {
    let mut files: Vec<GuestFile> = Vec::new();
    for job in jobs {
        if let Some(p) = external::external(&job.probe) {
            let guest = Path::new(GUEST_PROBES_DIR).join(&job.probe);
            if !files.iter().any(|f| f.guest == guest) {
                files.push(GuestFile {
                    host: std::path::absolute(p.dir()).unwrap_or_else(|_| p.dir().to_path_buf()),
                    guest,
                });
            }
        }
    }
    files
}

/// In the guest: registers every probe directory the image holds under [`GUEST_PROBES_DIR`]
/// (nothing when there is none).
pub fn register_installed() -> Result<(), ExternalError> {
    let root = Path::new(GUEST_PROBES_DIR);
    if !root.is_dir() {
        return Ok(());
    }
    match external::register_all(root) {
        Ok(_) | Err(ExternalError::NoProbes { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The file probes among the results' probes, for the report's environment block.
pub fn external_ids(jobs: &[Job]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for job in jobs {
        if external::is_external(&job.probe) && !ids.contains(&job.probe) {
            ids.push(job.probe.clone());
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn file_probes_become_the_plan_and_travel_into_the_guest() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("fp-host-test");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(
            dir.join("probe.toml"),
            "id = \"fp-host-test\"\ntitle = \"t\"\nlayers = [\"uts-ns\"]\n[oracle]\nname = \"hostname\"\n",
        )
        .unwrap();
        std::fs::write(dir.join("inside.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            dir.join("inside.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let args = FileProbeArgs {
            dirs: vec![tmp.path().to_path_buf()],
        };
        let ids = args.probes_to_run(&[]).unwrap();
        assert_eq!(ids, vec!["fp-host-test".to_string()]);
        let plan = crate::suite::plan::RunPlan::from_names(&["none".to_string()], &ids).unwrap();
        let files = guest_files(&plan.jobs);
        assert_eq!(files.len(), 1);
        assert_eq!(
            files[0].guest,
            Path::new(GUEST_PROBES_DIR).join("fp-host-test")
        );
        assert_eq!(external_ids(&plan.jobs), ids);
        let named = args.probes_to_run(&["hostname".to_string()]).unwrap();
        assert_eq!(named, vec!["hostname".to_string()]);
    }
}
