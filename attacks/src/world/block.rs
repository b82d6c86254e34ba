//! Block devices of the outside world: a loop device over a file of the world's own, so that a
//! probe has a disk of the outside whose content it knows (a fresh secret) and whose device
//! number it can name. The loop driver is a module in Debian's cloud kernel; the guest image
//! keeps it (vm/src/kernel.rs) and it is loaded here on first use.

use super::{Planted, WorldError};
use nix::errno::Errno;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const LOOP_CONTROL: &str = "/dev/loop-control";
/// The module file, relative to /lib/modules/<release>.
const LOOP_MODULE: &str = "kernel/drivers/block/loop.ko";

// <linux/loop.h>
const LOOP_SET_FD: libc::c_ulong = 0x4C00;
const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;

/// Attempts racing for the same free device number retry this often.
const ATTACH_TRIES: usize = 8;

/// One loop device bound to a planted file; detached on Drop (the file is removed after).
#[derive(Debug)]
pub struct LoopDevice {
    /// Held open while bound: the device stays ours and Drop detaches through it.
    device: fs::File,
    path: PathBuf,
    major: u64,
    minor: u64,
    // Declared last: dropped after the device is detached.
    _backing: Planted,
}

impl LoopDevice {
    /// Binds a free loop device to `backing` (read-only: the backing file is opened O_RDONLY, so
    /// the device cannot be written through).
    pub(super) fn attach(backing: Planted) -> Result<LoopDevice, WorldError> {
        ensure_driver()?;
        let file = fs::File::open(backing.path())
            .map_err(|e| WorldError::io("opening the backing file", backing.path(), e))?;
        let control = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(LOOP_CONTROL)
            .map_err(|e| WorldError::io("opening", LOOP_CONTROL, e))?;
        for _ in 0..ATTACH_TRIES {
            // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device number or -1.
            let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
            if n < 0 {
                return Err(WorldError::sys("ioctl(LOOP_CTL_GET_FREE)", Errno::last()));
            }
            let path = PathBuf::from(format!("/dev/loop{n}"));
            let device = fs::OpenOptions::new()
                .read(true)
                .open(&path)
                .map_err(|e| WorldError::io("opening", &path, e))?;
            // SAFETY: LOOP_SET_FD takes a descriptor by value; `file` outlives the call and the
            // kernel takes its own reference to the file.
            let r = unsafe {
                libc::ioctl(
                    device.as_raw_fd(),
                    LOOP_SET_FD,
                    file.as_raw_fd() as libc::c_ulong,
                )
            };
            if r < 0 {
                match Errno::last() {
                    // Another attempt bound the same free device first: ask again.
                    Errno::EBUSY => continue,
                    e => {
                        return Err(WorldError::sys(
                            format!("ioctl({}, LOOP_SET_FD)", path.display()),
                            e,
                        ))
                    }
                }
            }
            let meta = device
                .metadata()
                .map_err(|e| WorldError::io("fstat of", &path, e))?;
            let rdev = meta.rdev();
            return Ok(LoopDevice {
                device,
                path,
                major: nix::sys::stat::major(rdev),
                minor: nix::sys::stat::minor(rdev),
                _backing: backing,
            });
        }
        Err(WorldError::Busy {
            resource: "a free loop device".into(),
            waited: std::time::Duration::ZERO,
        })
    }

    /// The device node's path in the outside's /dev.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn major(&self) -> u64 {
        self.major
    }

    pub fn minor(&self) -> u64 {
        self.minor
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        // SAFETY: LOOP_CLR_FD takes no argument. Best effort: a device left bound in a
        // disposable guest harms nothing, and Drop cannot report.
        let _ = unsafe { libc::ioctl(self.device.as_raw_fd(), LOOP_CLR_FD, 0) };
    }
}

/// Loads the loop driver when /dev/loop-control is missing (once; attempts in parallel wait).
fn ensure_driver() -> Result<(), WorldError> {
    static LOADING: Mutex<()> = Mutex::new(());
    let _one = LOADING
        .lock()
        .map_err(|_| WorldError::Poisoned("the loop-driver lock"))?;
    if Path::new(LOOP_CONTROL).exists() {
        return Ok(());
    }
    let release = nix::sys::utsname::uname()
        .map_err(|e| WorldError::sys("uname", e))?
        .release()
        .to_string_lossy()
        .into_owned();
    let module = Path::new("/lib/modules").join(release).join(LOOP_MODULE);
    let file = match fs::File::open(&module) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(WorldError::Unsupported(format!(
                "no loop driver: {LOOP_CONTROL} is missing and there is no {}",
                module.display()
            )))
        }
        Err(e) => return Err(WorldError::io("opening", &module, e)),
    };
    match nix::kmod::finit_module(&file, c"", nix::kmod::ModuleInitFlags::empty()) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => {
            return Err(WorldError::sys(
                format!("finit_module({})", module.display()),
                e,
            ))
        }
    }
    if Path::new(LOOP_CONTROL).exists() {
        Ok(())
    } else {
        Err(WorldError::Unsupported(format!(
            "the loop driver loaded but {LOOP_CONTROL} did not appear (no devtmpfs?)"
        )))
    }
}
