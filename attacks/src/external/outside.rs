//! The outside half of a file probe: the oracle named in `probe.toml` arranges the world and
//! judges, with the code the built-in probes use (a built-in probe's own outside half where the
//! oracle is one).

use super::inside::run_inside_half;
use super::manifest::{ExternalProbe, Oracle};
use crate::world::{Planted, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Limits, Probe, ProbeError, ProbeMeta, RunObservation,
};
use std::path::{Path, PathBuf};

/// The outside state of an oracle that is not a built-in probe's.
enum OwnState {
    SecretFile {
        _file: Planted,
        secret: String,
    },
    FileOutside {
        dir: Planted,
        path: PathBuf,
        nonce: String,
    },
    Sysctl {
        restore: crate::kit::SysctlRestore,
        wanted: String,
        _exclusive: crate::world::ExclusiveGuard,
    },
}

impl Probe for ExternalProbe {
    fn meta(&self) -> &'static ProbeMeta {
        self.meta
    }

    fn arrange(&self, world: &World, limits: &Limits) -> Result<Arrangement, ProbeError> {
        let id = self.meta.id;
        match &self.oracle {
            Oracle::Builtin(builtin) => match crate::probe(builtin) {
                Some(p) => p.arrange(world, limits),
                None => Err(ProbeError::Unsupported {
                    probe: id,
                    reason: format!("the built-in probe `{builtin}` behind the oracle is missing"),
                }),
            },
            Oracle::SecretFile => {
                let (file, secret) = crate::kit::plant_canary_file(world, id, "file-probe-canary")?;
                Ok(Arrangement::new(
                    vec![kv("path", file.path().display())],
                    OwnState::SecretFile {
                        _file: file,
                        secret,
                    },
                ))
            }
            Oracle::FileOutside => {
                let dir = world
                    .scratch_dir("file-outside")
                    .map_err(ProbeError::world(id))?;
                let nonce = world.fresh_secret().map_err(ProbeError::world(id))?;
                let path = dir.path().join("created-by-the-sandbox");
                Ok(Arrangement::new(
                    vec![kv("path", path.display()), kv("content", &nonce)],
                    OwnState::FileOutside { dir, path, nonce },
                ))
            }
            Oracle::Sysctl { key, value } => {
                // Machine-wide state: one attempt on this sysctl at a time (the name is the one
                // core-pattern and reboot hold for theirs), so no attempt captures another's value
                // as the original.
                let exclusive = world
                    .exclusive(&format!("sysctl {key}"), crate::world::EXCLUSIVE_WAIT)
                    .map_err(ProbeError::world(id))?;
                let nonce = world.fresh_secret().map_err(ProbeError::world(id))?;
                let path = Path::new("/proc/sys").join(key.replace('.', "/"));
                let restore = crate::kit::SysctlRestore::capture(&path).map_err(|e| {
                    ProbeError::Unsupported {
                        probe: id,
                        reason: format!("sysctl {key}: {e}"),
                    }
                })?;
                let wanted = value.replace("{nonce}", &nonce[..16]);
                Ok(Arrangement::new(
                    vec![kv("path", path.display()), kv("value", &wanted)],
                    OwnState::Sysctl {
                        restore,
                        wanted,
                        _exclusive: exclusive,
                    },
                ))
            }
        }
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        run_inside_half(self.meta.id, &self.inside, args, self.timeout)
    }

    fn judge(&self, world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        use crate::kit::{conclude, Oracle as Seen};
        if let Oracle::Builtin(builtin) = &self.oracle {
            return match crate::probe(builtin) {
                Some(p) => p.judge(world, arrangement, run),
                None => Judgement::inconclusive(format!("the built-in `{builtin}` is missing")),
            };
        }
        let Ok(state) = arrangement.state.downcast::<OwnState>() else {
            return crate::kit::wrong_state(self.meta.id);
        };
        let seen = match &*state {
            OwnState::SecretFile { secret, .. } => {
                crate::kit::secret_oracle(run, secret, "the secret file's content")
            }
            OwnState::FileOutside { path, nonce, dir } => {
                let found = std::fs::read_to_string(path);
                let listing: Vec<String> = std::fs::read_dir(dir.path())
                    .map(|d| {
                        d.filter_map(|e| e.ok())
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                match found {
                    Ok(text) if text.contains(nonce.as_str()) => Seen::Hit(format!(
                        "{} was created outside the sandbox with the nonce",
                        path.display()
                    )),
                    Ok(_) => {
                        Seen::Undecided(format!("{} exists without the nonce", path.display()))
                    }
                    Err(_) if listing.is_empty() => Seen::Miss(format!(
                        "{} was not created (its directory is empty)",
                        path.display()
                    )),
                    Err(_) => Seen::Undecided(format!(
                        "{} missing, but the directory holds {}",
                        path.display(),
                        listing.join(", ")
                    )),
                }
            }
            OwnState::Sysctl {
                restore, wanted, ..
            } => {
                match restore.current() {
                    Ok(now) => {
                        let seen = if &now == wanted {
                            Seen::Hit(format!(
                                "the sysctl became {now:?} (restored to {:?})",
                                restore.original()
                            ))
                        } else if now != restore.original() {
                            Seen::Undecided(format!("the sysctl changed to {now:?}, not to this attempt's value (restored)"))
                        } else {
                            Seen::Miss("the sysctl is unchanged".to_string())
                        };
                        if let Err(e) = restore.restore() {
                            return Judgement::inconclusive(format!(
                                "could not restore the sysctl: {e}"
                            ));
                        }
                        seen
                    }
                    Err(e) => Seen::Undecided(format!("reading the sysctl from outside: {e}")),
                }
            }
        };
        conclude(seen, run)
    }
}
