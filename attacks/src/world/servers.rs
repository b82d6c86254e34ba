//! Listeners of the outside, each on a thread of its own that stops on Drop: a unix socket
//! (pathname or abstract) handing out a directory descriptor by SCM_RIGHTS, and a TCP service on
//! 127.0.0.1 handing out a secret. Both count the clients they served, so the outside can see
//! that it was reached.

use super::WorldError;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
use std::io::{IoSlice, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// How often a server thread looks at its stop flag while idle.
const IDLE_POLL_MS: u16 = 50;

/// A thread accepting on `listener` until stopped.
#[derive(Debug)]
struct AcceptLoop {
    stop: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl AcceptLoop {
    fn start<L, S>(
        listener: L,
        accept: impl Fn(&L) -> std::io::Result<S> + Send + 'static,
        serve: impl Fn(S) -> bool + Send + 'static,
    ) -> Self
    where
        L: AsFd + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let (stop2, served2) = (stop.clone(), served.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, PollTimeout::from(IDLE_POLL_MS)) {
                    Ok(0) | Err(Errno::EINTR) => continue,
                    Ok(_) => {}
                    Err(_) => return,
                }
                if let Ok(stream) = accept(&listener) {
                    if serve(stream) {
                        served2.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
        AcceptLoop {
            stop,
            served,
            thread: Some(thread),
        }
    }
}

impl Drop for AcceptLoop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Hands every client an O_RDONLY descriptor of a directory by SCM_RIGHTS.
#[derive(Debug)]
pub struct DirFdServer {
    /// The pathname, or `@name` for an abstract socket: what the inside gets as its argument.
    address: String,
    path: Option<PathBuf>,
    accept: AcceptLoop,
}

impl DirFdServer {
    pub(super) fn bind_path(path: &Path, dir: &Path) -> Result<Self, WorldError> {
        let listener =
            UnixListener::bind(path).map_err(|e| WorldError::io("binding unix socket", path, e))?;
        // Anyone who can reach the path may connect: only visibility (mount-ns) should stop it.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))
            .map_err(|e| WorldError::io("chmod 0777 of socket", path, e))?;
        let mut server = Self::start(listener, dir, path.display().to_string())?;
        server.path = Some(path.to_path_buf());
        Ok(server)
    }

    pub(super) fn bind_abstract(name: &str, dir: &Path) -> Result<Self, WorldError> {
        let addr = SocketAddr::from_abstract_name(name.as_bytes())
            .map_err(|e| WorldError::io("abstract socket name", format!("@{name}"), e))?;
        let listener = UnixListener::bind_addr(&addr)
            .map_err(|e| WorldError::io("binding abstract socket", format!("@{name}"), e))?;
        Self::start(listener, dir, format!("@{name}"))
    }

    fn start(listener: UnixListener, dir: &Path, address: String) -> Result<Self, WorldError> {
        let dir_fd: OwnedFd = std::fs::File::open(dir)
            .map_err(|e| WorldError::io("opening directory to hand out", dir, e))?
            .into();
        let accept = AcceptLoop::start(
            listener,
            |l: &UnixListener| l.accept().map(|(s, _)| s),
            move |stream: UnixStream| send_fd(&stream, &dir_fd),
        );
        Ok(DirFdServer {
            address,
            path: None,
            accept,
        })
    }

    /// The argument for the inside: a path, or `@name` for an abstract socket.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// How many clients received the descriptor.
    pub fn served(&self) -> u64 {
        self.accept.served.load(Ordering::Relaxed)
    }
}

impl Drop for DirFdServer {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn send_fd(stream: &UnixStream, fd: &OwnedFd) -> bool {
    let fds = [fd.as_raw_fd()];
    let iov = [IoSlice::new(b"D")];
    sendmsg::<UnixAddr>(
        stream.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .is_ok()
}

/// Writes a secret and a newline to every client on 127.0.0.1.
#[derive(Debug)]
pub struct TcpSecretServer {
    port: u16,
    accept: AcceptLoop,
}

impl TcpSecretServer {
    pub(super) fn bind(secret: &str) -> Result<Self, WorldError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .map_err(|e| WorldError::io("binding TCP", "127.0.0.1:0", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| WorldError::io("getsockname", "127.0.0.1:0", e))?
            .port();
        let line = format!("{secret}\n");
        let accept = AcceptLoop::start(
            listener,
            |l: &TcpListener| l.accept().map(|(s, _)| s),
            move |mut stream: TcpStream| stream.write_all(line.as_bytes()).is_ok(),
        );
        Ok(TcpSecretServer { port, accept })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// How many clients got the secret.
    pub fn served(&self) -> u64 {
        self.accept.served.load(Ordering::Relaxed)
    }
}
