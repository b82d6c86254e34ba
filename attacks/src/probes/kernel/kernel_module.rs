//! kernel-module: load a kernel module.

use crate::kit::{conclude, io_keep, parse_or_report, Oracle};
use crate::world::{ExclusiveGuard, World, EXCLUSIVE_WAIT};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use nix::kmod::{delete_module, finit_module, init_module, DeleteModuleFlags, ModuleInitFlags};
use std::ffi::CString;
use std::fs;
use std::path::{Path, PathBuf};

/// Overrides the module file (default: the running kernel's dummy.ko).
pub const MODULE_ENV: &str = "BREAKOUT_TEST_MODULE";

/// The default module, relative to /lib/modules/<release>: the dummy network driver, which
/// with numdummies=0 creates nothing at all.
const DEFAULT_MODULE: &str = "kernel/drivers/net/dummy.ko";
const DEFAULT_PARAMS: &str = "numdummies=0";

static META: ProbeMeta = ProbeMeta {
    id: "kernel-module",
    title: "Load a kernel module",
    technique: "A loaded module is kernel code: whoever can call init_module(2) or \
        finit_module(2) owns the machine, whatever namespaces it sits in. The kernel asks for \
        CAP_SYS_MODULE in the initial user namespace and nothing else (module signatures are \
        only enforced when the kernel is built or booted to). The inside loads a real, inert \
        module file the outside points it to (the dummy network driver with numdummies=0); the \
        outside unloads it again.",
    oracle: "The module appears in the outside's /proc/modules after the attempt (the outside \
        then removes it).",
    layers: &[Layer::Caps, Layer::UserNs, Layer::Uid, Layer::Seccomp],
    references: &[
        "deepce and amicontained (CAP_SYS_MODULE checks)",
        "init_module(2)",
    ],
    class: ProbeClass::Plain,
};

pub struct KernelModule;

/// Unloads the module on Drop if it is loaded (also when judge never runs).
struct State {
    name: String,
    /// Released after Drop unloaded the module: one attempt at a time, so no attempt sees
    /// another's load.
    _exclusive: ExclusiveGuard,
}

impl Drop for State {
    fn drop(&mut self) {
        if is_loaded(&self.name).unwrap_or(false) {
            if let Err(e) = unload(&self.name) {
                eprintln!(
                    "breakout: kernel-module: could not unload {}: {e}",
                    self.name
                );
            }
        }
    }
}

fn unload(name: &str) -> Result<(), nix::Error> {
    let c = CString::new(name).map_err(|_| nix::Error::EINVAL)?;
    delete_module(&c, DeleteModuleFlags::O_NONBLOCK)
}

/// Whether /proc/modules lists `name`.
fn is_loaded(name: &str) -> std::io::Result<bool> {
    Ok(listed(&fs::read_to_string("/proc/modules")?, name))
}

fn listed(proc_modules: &str, name: &str) -> bool {
    proc_modules
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

/// The module name the kernel uses for a file: its stem with '-' as '_'.
fn module_name(path: &Path) -> Option<String> {
    let stem = path.file_name()?.to_str()?.split('.').next()?;
    (!stem.is_empty()).then(|| stem.replace('-', "_"))
}

impl Probe for KernelModule {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let id = META.id;
        let exclusive = world
            .exclusive("the module list", EXCLUSIVE_WAIT)
            .map_err(ProbeError::world(META.id))?;
        let (path, params) = match std::env::var_os(MODULE_ENV) {
            Some(p) => (PathBuf::from(p), String::new()),
            None => {
                let release = nix::sys::utsname::uname()
                    .map_err(|e| ProbeError::arrange(id, "uname", e.into()))?
                    .release()
                    .to_string_lossy()
                    .into_owned();
                (
                    Path::new("/lib/modules").join(release).join(DEFAULT_MODULE),
                    DEFAULT_PARAMS.to_string(),
                )
            }
        };
        if !path.is_file() {
            return Err(ProbeError::unsupported(
                id,
                format!(
                    "no module file at {} (add it to the guest, e.g. `breakout vm-run --add {}`, \
                     or name one in {MODULE_ENV})",
                    path.display(),
                    path.display()
                ),
            ));
        }
        let name = module_name(&path).ok_or_else(|| {
            ProbeError::unsupported(id, format!("no module name in {}", path.display()))
        })?;
        if is_loaded(&name).map_err(|e| ProbeError::arrange(id, "reading /proc/modules", e))? {
            return Err(ProbeError::unsupported(
                id,
                format!("module {name} is loaded already, so a load proves nothing"),
            ));
        }
        Ok(Arrangement::new(
            vec![kv("module", path.display()), kv("params", params)],
            State {
                name,
                _exclusive: exclusive,
            },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        if let Some((module, params)) = parse_or_report(&mut steps, args, |a| {
            Ok((
                PathBuf::from(a.str("module")?),
                a.opt_str("params").unwrap_or("").to_string(),
            ))
        }) {
            attempt(&mut steps, &module, &params);
        }
        steps.finish()
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        let Some(state) = arrangement.state::<State>() else {
            return Judgement::inconclusive("kernel-module: arrangement state of the wrong type");
        };
        let oracle = match is_loaded(&state.name) {
            Ok(true) => match unload(&state.name) {
                Ok(()) => Oracle::Hit(format!("module {} was loaded (unloaded again)", state.name)),
                Err(e) => Oracle::Hit(format!(
                    "module {} was loaded; unloading it failed: {e}",
                    state.name
                )),
            },
            Ok(false) => Oracle::Miss(format!("module {} not in /proc/modules", state.name)),
            Err(e) => Oracle::Undecided(format!("reading /proc/modules failed: {e}")),
        };
        conclude(oracle, run)
    }
}

fn attempt(steps: &mut Steps, module: &Path, params: &str) {
    let Ok(c_params) = CString::new(params) else {
        steps.bad_args("argument `params` contains a NUL byte");
        return;
    };
    let file = steps.io(
        "open the module file",
        format!("open({})", module.display()),
        || fs::File::open(module),
    );
    let Some(file) = file else { return };
    let loaded = steps
        .call(
            "load the module",
            format!("finit_module({}, {params:?})", module.display()),
            || finit_module(&file, &c_params, ModuleInitFlags::empty()),
        )
        .is_some();
    if loaded {
        return;
    }
    // finit_module may be filtered where init_module is not: try the older call too.
    let image = io_keep(
        steps,
        "read the module image",
        format!("read({})", module.display()),
        || fs::read(module),
    );
    if let Some(bytes) = image {
        steps.call(
            "load the module from memory",
            format!("init_module({} bytes, {params:?})", bytes.len()),
            || init_module(&bytes, &c_params),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_follow_the_kernel() {
        assert_eq!(
            module_name(Path::new("/x/dummy.ko")).as_deref(),
            Some("dummy")
        );
        assert_eq!(
            module_name(Path::new("/x/crc-itu-t.ko.xz")).as_deref(),
            Some("crc_itu_t")
        );
        assert_eq!(module_name(Path::new("/")), None);
    }

    #[test]
    fn proc_modules_is_matched_by_first_field() {
        let text = "dummy 16384 0 - Live 0x0\nnot_dummy 1 0 - Live 0x0\n";
        assert!(listed(text, "dummy"));
        assert!(!listed(text, "dumm"));
        assert!(!listed("", "dummy"));
    }

    #[test]
    fn bad_arguments_are_reported() {
        let report = KernelModule.attempt(&["params=x".into()]);
        assert_eq!(report.steps[0].action, "parse arguments");
        assert!(report.steps[0].data.as_deref().unwrap().contains("module"));
    }
}
