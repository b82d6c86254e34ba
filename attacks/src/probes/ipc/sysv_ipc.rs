//! sysv-ipc: attach the outside's SysV shared memory segment and read its message queue by key.

use crate::kit::{judge_secret, with_args, wrong_state};
use crate::world::{SysvMsg, SysvShm, World, SYSV_MSG_TYPE};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use nix::errno::Errno;

pub struct SysvIpc;

static META: ProbeMeta = ProbeMeta {
    id: "sysv-ipc",
    title: "read the outside's SysV shared memory and message queue",
    technique: "SysV IPC objects are found by a numeric key, not a path: shmget(key) and \
        msgget(key) return the outside's objects to anyone whose permissions match. The payload \
        attaches the outside's shared memory segment and receives from its message queue, both \
        created by root with mode 0600 and holding a secret. An IPC namespace gives the sandbox \
        its own empty key space; a non-root uid fails the 0600 permission check.",
    oracle: "The per-attempt secret held in the segment and the queue appears in the payload's \
        report.",
    layers: &[Layer::IpcNs, Layer::Uid, Layer::UserNs, Layer::Seccomp],
    references: &["svipc(7)", "ipc_namespaces(7)"],
    class: ProbeClass::Plain,
};

struct State {
    secret: String,
    _shm: SysvShm,
    _msg: SysvMsg,
}

fn read_shm(steps: &mut Steps, key: libc::key_t) {
    // SAFETY: shmget takes plain integers.
    let id = steps.call(
        "find the segment by key",
        format!("shmget({key:#x}, 0, 0)"),
        || Errno::result(unsafe { libc::shmget(key, 0, 0) }),
    );
    let Some(id) = id else { return };
    let addr = steps.call(
        "attach it read-only",
        format!("shmat({id}, NULL, SHM_RDONLY)"),
        || {
            // SAFETY: attaching at an address the kernel picks, read-only; detached below.
            let addr = unsafe { libc::shmat(id, std::ptr::null(), libc::SHM_RDONLY) };
            if addr as isize == -1 {
                Err(Errno::last())
            } else {
                Ok(addr as usize)
            }
        },
    );
    let Some(addr) = addr else { return };
    let mut bytes = vec![0u8; 256];
    // SAFETY: the segment is at least a page (the outside made 4096 bytes), mapped readable at
    // `addr`; we copy 256 bytes out before detaching.
    unsafe { std::ptr::copy_nonoverlapping(addr as *const u8, bytes.as_mut_ptr(), bytes.len()) };
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    steps.data(String::from_utf8_lossy(&bytes[..end]).into_owned());
    // SAFETY: detaching the mapping made above; `bytes` is a copy.
    steps.call("detach", "shmdt", || {
        Errno::result(unsafe { libc::shmdt(addr as *const libc::c_void) }).map(|_| ())
    });
}

#[repr(C)]
struct MsgBuf {
    mtype: libc::c_long,
    mtext: [u8; 256],
}

fn read_msg(steps: &mut Steps, key: libc::key_t) {
    // SAFETY: msgget takes plain integers.
    let id = steps.call(
        "find the queue by key",
        format!("msgget({key:#x}, 0)"),
        || Errno::result(unsafe { libc::msgget(key, 0) }),
    );
    let Some(id) = id else { return };
    let mut buf = MsgBuf {
        mtype: 0,
        mtext: [0; 256],
    };
    let n = steps.call(
        "receive the outside's message",
        format!("msgrcv({id}, type {SYSV_MSG_TYPE}, IPC_NOWAIT)"),
        || {
            // SAFETY: `buf` is a msgbuf with 256 text bytes, the size passed.
            let n = unsafe {
                libc::msgrcv(
                    id,
                    (&mut buf as *mut MsgBuf).cast(),
                    buf.mtext.len(),
                    SYSV_MSG_TYPE,
                    libc::IPC_NOWAIT,
                )
            };
            Errno::result(n).map(|n| n as usize)
        },
    );
    if let Some(n) = n {
        steps.data(String::from_utf8_lossy(&buf.mtext[..n.min(buf.mtext.len())]).into_owned());
    }
}

impl Probe for SysvIpc {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let secret = world.fresh_secret().map_err(ProbeError::world(META.id))?;
        let shm = world
            .sysv_shm(&secret)
            .map_err(ProbeError::world(META.id))?;
        let msg = world
            .sysv_msg(&secret)
            .map_err(ProbeError::world(META.id))?;
        let args = vec![kv("shm_key", shm.key()), kv("msg_key", msg.key())];
        Ok(Arrangement::new(
            args,
            State {
                secret,
                _shm: shm,
                _msg: msg,
            },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        with_args(META.id, args, |args, steps| {
            let shm_key: libc::key_t = args.get("shm_key")?;
            let msg_key: libc::key_t = args.get("msg_key")?;
            read_shm(steps, shm_key);
            read_msg(steps, msg_key);
            Ok(())
        })
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        let Ok(state) = arrangement.state.downcast::<State>() else {
            return wrong_state(META.id);
        };
        judge_secret(run, &state.secret, "SysV segment and queue")
    }
}
