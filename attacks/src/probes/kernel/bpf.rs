//! bpf: load a BPF program into the kernel.

use crate::kit::{conclude, parse_or_report, Oracle};
use crate::world::{first_hit_then_nudge, hold_until_nudged, Watcher, World};
use crate::{
    kv, ArgError, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass,
    ProbeError, ProbeMeta, RunObservation, Steps,
};
use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

const BPF_PROG_LOAD: i32 = 5;
const BPF_PROG_GET_NEXT_ID: i32 = 11;
const BPF_PROG_GET_FD_BY_ID: i32 = 13;
const BPF_OBJ_GET_INFO_BY_FD: i32 = 15;
const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;
/// BPF_OBJ_NAME_LEN, including the NUL.
const NAME_LEN: usize = 16;
/// Offset of `name` in struct bpf_prog_info.
const INFO_NAME_OFFSET: usize = 64;

/// How long the inside keeps its program loaded where it cannot hear from the outside (its
/// signal mask or name cannot be set), so the outside's watcher sees it.
const HOLD_MS: u64 = 1500;

/// The longest the inside keeps its program loaded waiting for the outside's word that it saw
/// it (the watcher nudges the inside, named after the program, on its first sight).
const SEEN_BOUND_MS: u64 = 5000;

static META: ProbeMeta = ProbeMeta {
    id: "bpf",
    title: "Load a BPF program into the kernel",
    technique: "bpf(2) loads programs that the kernel verifies and then runs in kernel context; \
        the verifier and the JIT are a large attack surface with a long list of privilege \
        escalations, and tracing programs read any kernel memory. Debian disables unprivileged \
        BPF (kernel.unprivileged_bpf_disabled=2), so loading needs CAP_BPF or CAP_SYS_ADMIN in \
        the initial user namespace. The inside loads a two-instruction socket filter under a \
        name the outside chose and keeps it loaded for a moment.",
    oracle: "While the payload runs, the outside walks the kernel's list of loaded BPF programs \
        (BPF_PROG_GET_NEXT_ID) and finds one with the per-attempt name.",
    layers: &[Layer::Caps, Layer::UserNs, Layer::Uid, Layer::Seccomp],
    references: &[
        "kernel.unprivileged_bpf_disabled; CVE-2021-3490, CVE-2022-23222 (verifier escapes)",
        "Docker's default seccomp profile blocks bpf without CAP_SYS_ADMIN",
    ],
    class: ProbeClass::Plain,
};

pub struct Bpf;

struct State {
    watcher: Option<Watcher<Option<String>>>,
    name: String,
}

/// bpf(2) with an attribute buffer.
fn bpf(cmd: i32, attr: &mut [u8]) -> Result<i64, Errno> {
    // SAFETY: attr is a writable buffer of attr.len() bytes, the size we pass; the kernel reads
    // and writes only within it.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len() as u32) };
    Errno::result(r)
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

fn get_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

/// `r0 = 0; exit`: a socket filter that drops everything.
const PROGRAM: [u8; 16] = [
    0xb7, 0, 0, 0, 0, 0, 0, 0, // BPF_ALU64 | BPF_MOV | BPF_K, r0 = 0
    0x95, 0, 0, 0, 0, 0, 0, 0, // BPF_JMP | BPF_EXIT
];

fn load_program(name: &str) -> Result<OwnedFd, Errno> {
    if name.len() >= NAME_LEN || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(Errno::EINVAL);
    }
    let license = b"GPL\0";
    let mut attr = [0u8; 128];
    put_u32(&mut attr, 0, BPF_PROG_TYPE_SOCKET_FILTER);
    put_u32(&mut attr, 4, (PROGRAM.len() / 8) as u32);
    put_u64(&mut attr, 8, PROGRAM.as_ptr() as u64);
    put_u64(&mut attr, 16, license.as_ptr() as u64);
    attr[48..48 + name.len()].copy_from_slice(name.as_bytes());
    let fd = bpf(BPF_PROG_LOAD, &mut attr)? as i32;
    // SAFETY: a fresh descriptor the kernel just returned, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The names of every BPF program loaded in the kernel (the outside's view; needs CAP_SYS_ADMIN).
fn loaded_program_names() -> Result<Vec<String>, Errno> {
    let mut names = Vec::new();
    let mut id = 0u32;
    loop {
        let mut attr = [0u8; 16];
        put_u32(&mut attr, 0, id);
        match bpf(BPF_PROG_GET_NEXT_ID, &mut attr) {
            Ok(_) => id = get_u32(&attr, 4),
            Err(Errno::ENOENT) => return Ok(names),
            Err(e) => return Err(e),
        }
        let mut attr = [0u8; 16];
        put_u32(&mut attr, 0, id);
        let fd = match bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) {
            // SAFETY: a fresh descriptor the kernel just returned, owned by nobody else.
            Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd as i32) },
            // The program went away between the two calls.
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        let mut info = [0u8; 256];
        let mut attr = [0u8; 16];
        put_u32(&mut attr, 0, fd.as_raw_fd() as u32);
        put_u32(&mut attr, 4, info.len() as u32);
        put_u64(&mut attr, 8, info.as_mut_ptr() as u64);
        bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
        let raw = &info[INFO_NAME_OFFSET..INFO_NAME_OFFSET + NAME_LEN];
        let end = raw.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        names.push(String::from_utf8_lossy(&raw[..end]).into_owned());
    }
}

impl Probe for Bpf {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let id = META.id;
        let salt = world.fresh_secret().map_err(ProbeError::world(id))?;
        let name = format!("bo_{}", &salt[..12]);
        // Fail now, not in judge, if the outside cannot list programs.
        loaded_program_names().map_err(|e| {
            ProbeError::arrange(id, "listing BPF programs (BPF_PROG_GET_NEXT_ID)", e.into())
        })?;
        let wanted = name.clone();
        // The inside waits under the program's name (15 bytes, as a comm may be): unique to
        // the attempt.
        let comm = CString::new(name.clone())
            .map_err(|e| ProbeError::arrange(id, "naming the attempt", std::io::Error::other(e)))?;
        let watcher = first_hit_then_nudge(Duration::from_millis(10), comm, move || {
            loaded_program_names()
                .ok()?
                .into_iter()
                .find(|n| *n == wanted)
        });
        Ok(Arrangement::new(
            vec![
                kv("name", &name),
                kv("hold_ms", HOLD_MS),
                kv("bound_ms", SEEN_BOUND_MS),
            ],
            State {
                watcher: Some(watcher),
                name,
            },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        let parsed = parse_or_report(&mut steps, args, |a| {
            let name = a.str("name")?;
            if name.len() >= NAME_LEN {
                return Err(ArgError::Invalid {
                    key: "name".into(),
                    value: name.into(),
                    reason: format!("longer than {} bytes", NAME_LEN - 1),
                });
            }
            Ok((
                name.to_string(),
                a.get::<u64>("hold_ms")?,
                a.get::<u64>("bound_ms")?,
            ))
        });
        if let Some((name, hold, bound)) = parsed {
            let fd = steps.call(
                "load a socket filter program",
                format!("bpf(BPF_PROG_LOAD, SOCKET_FILTER, name {name})"),
                || load_program(&name),
            );
            if let Some(fd) = fd {
                // Loaded until the outside has seen it (it nudges us), or `hold` where we
                // cannot hear from it.
                let hold = Duration::from_millis(hold);
                match CString::new(name) {
                    Ok(comm) => {
                        hold_until_nudged(&comm, hold, Duration::from_millis(bound));
                    }
                    Err(_) => std::thread::sleep(hold),
                }
                drop(fd);
            }
        }
        steps.finish()
    }

    fn judge(
        &self,
        _world: &World,
        mut arrangement: Arrangement,
        run: &RunObservation,
    ) -> Judgement {
        let Some(state) = arrangement.state.downcast_mut::<State>() else {
            return Judgement::inconclusive("bpf: arrangement state of the wrong type");
        };
        let seen = state.watcher.take().and_then(|w| w.finish().flatten());
        let oracle = match seen {
            Some(name) => Oracle::Hit(format!(
                "a BPF program named {name} was loaded in the kernel"
            )),
            None => Oracle::Miss(format!("no BPF program named {} appeared", state.name)),
        };
        conclude(oracle, run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_refused_before_any_syscall() {
        assert_eq!(
            load_program("much_too_long_name").unwrap_err(),
            Errno::EINVAL
        );
        assert_eq!(load_program("bad name").unwrap_err(), Errno::EINVAL);
        let report = Bpf.attempt(&["name=abcdefghijklmnopq".into(), "hold_ms=1".into()]);
        assert_eq!(report.steps[0].action, "parse arguments");
    }
}
