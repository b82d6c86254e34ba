//! scm-rights-import: receive a directory descriptor from an outside unix socket (pathname) and
//! read a secret through it.

use crate::kit::{judge_secret, with_args, wrong_state};
use crate::world::{write_new_file, DirFdServer, Planted, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use nix::fcntl::{openat, OFlag};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
use nix::sys::stat::Mode;
use std::io::{IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};

pub struct ScmRightsImport;

/// The name of the secret file inside the directory the server hands out.
pub(super) const SECRET_NAME: &str = "secret";

static META: ProbeMeta = ProbeMeta {
    id: "scm-rights-import",
    title: "import an outside directory descriptor over a pathname unix socket",
    technique: "An outside service listens on a unix socket in a directory outside the sandbox \
        root and hands every client a descriptor of an outside directory with SCM_RIGHTS. The \
        payload connects to the socket's path, receives the descriptor and opens the secret file \
        relative to it with openat(), reaching outside the sandbox's filesystem view. A mount \
        namespace with its own root hides the socket path; a descriptor once received is not \
        bounded by the receiver's root.",
    oracle: "The per-attempt secret from the file in the handed-out directory appears in the \
        payload's report (the server also counts the clients it served).",
    layers: &[Layer::MountNs, Layer::Seccomp, Layer::Landlock],
    references: &["unix(7) SCM_RIGHTS", "BOtB socket hunting"],
    class: ProbeClass::Plain,
};

pub(super) struct State {
    secret: String,
    server: DirFdServer,
    _dir: Planted,
}

/// A fresh directory holding the secret (0444), served by the server `serve` makes.
pub(super) fn arrange_server(
    probe: &'static str,
    world: &World,
    serve: impl FnOnce(&World, &std::path::Path) -> Result<DirFdServer, crate::world::WorldError>,
) -> Result<Arrangement, ProbeError> {
    let secret = world.fresh_secret().map_err(ProbeError::world(probe))?;
    let dir = world
        .scratch_dir("scm-dir")
        .map_err(ProbeError::world(probe))?;
    write_new_file(&dir.path().join(SECRET_NAME), &secret, 0o444)
        .map_err(ProbeError::world(probe))?;
    let server = serve(world, dir.path()).map_err(ProbeError::world(probe))?;
    let args = vec![kv("socket", server.address()), kv("file", SECRET_NAME)];
    Ok(Arrangement::new(
        args,
        State {
            secret,
            server,
            _dir: dir,
        },
    ))
}

/// Connects (a leading `@` means an abstract name), receives descriptors, reads `file` in each.
pub(super) fn attempt_import(probe: &str, words: &[String]) -> InsideReport {
    with_args(probe, words, |args, steps| {
        let socket = args.str("socket")?;
        let file = args.str("file")?;
        let stream = match socket.strip_prefix('@') {
            Some(name) => steps.io(
                "connect to the outside's abstract socket",
                format!("connect(@{name})"),
                || {
                    let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
                    UnixStream::connect_addr(&addr)
                },
            ),
            None => steps.io(
                "connect to the outside's socket",
                format!("connect({socket})"),
                || UnixStream::connect(socket),
            ),
        };
        let Some(stream) = stream else {
            return Ok(());
        };
        for fd in receive_fds(steps, &stream) {
            read_through(steps, &fd, file);
        }
        Ok(())
    })
}

fn receive_fds(steps: &mut Steps, stream: &UnixStream) -> Vec<OwnedFd> {
    let mut data = [0u8; 16];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let received = steps.call(
        "receive a descriptor",
        "recvmsg(SCM_RIGHTS)",
        || -> Result<Vec<RawFd>, nix::errno::Errno> {
            let mut iov = [IoSliceMut::new(&mut data)];
            let msg = recvmsg::<UnixAddr>(
                stream.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )?;
            let mut fds = Vec::new();
            for cmsg in msg.cmsgs()? {
                if let ControlMessageOwned::ScmRights(list) = cmsg {
                    fds.extend(list);
                }
            }
            Ok(fds)
        },
    );
    received
        .unwrap_or_default()
        .into_iter()
        // SAFETY: SCM_RIGHTS installed these descriptors in this process; nothing else owns them.
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect()
}

pub(super) fn read_through(steps: &mut Steps, dir: &OwnedFd, file: &str) {
    let raw = dir.as_raw_fd();
    let fd = steps.call(
        "open the secret relative to the received descriptor",
        format!("openat({raw}, {file}, O_RDONLY)"),
        || {
            openat(
                Some(raw),
                file,
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
        },
    );
    let Some(fd) = fd else { return };
    // SAFETY: `openat` just returned this descriptor and nothing else owns it.
    let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut content = Vec::new();
    if steps
        .io("read the secret", format!("read({fd})"), || {
            f.read_to_end(&mut content)
        })
        .is_some()
    {
        steps.data(String::from_utf8_lossy(&content).into_owned());
    }
}

pub(super) fn judge_import(
    arrangement: Arrangement,
    run: &RunObservation,
    probe: &str,
) -> Judgement {
    let Ok(state) = arrangement.state.downcast::<State>() else {
        return wrong_state(probe);
    };
    let what = format!(
        "socket {} (served {} client(s))",
        state.server.address(),
        state.server.served()
    );
    judge_secret(run, &state.secret, &what)
}

impl Probe for ScmRightsImport {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }
    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        arrange_server(META.id, world, |w, dir| w.serve_dir_fd_path(dir))
    }
    fn attempt(&self, args: &[String]) -> InsideReport {
        attempt_import(META.id, args)
    }
    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        judge_import(arrangement, run, META.id)
    }
}
