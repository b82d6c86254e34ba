//! abstract-socket: connect to an outside listener in the abstract unix socket namespace.

use crate::kit::{io_keep, judge_by_secret, parse_or_report};
use crate::world::World;
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the listener thread looks at its stop flag.
const IDLE: Duration = Duration::from_millis(20);

static META: ProbeMeta = ProbeMeta {
    id: "abstract-socket",
    title: "Reach an outside service on an abstract unix socket",
    technique: "Abstract unix sockets (a name starting with a NUL byte, shown as @name) live in \
        the network namespace, not in the filesystem: no mount namespace, file permission or \
        read-only root hides them, and the kernel checks no credentials on connect. Services \
        that trust local peers (containerd-shim's API in CVE-2020-15257) are reachable by anyone \
        in the same network namespace. The outside serves a secret on @name; the inside connects. \
        Landlock stops it only where the kernel scopes abstract unix sockets (ABI 6, Linux 6.12; not on Debian 12's 6.1).",
    oracle: "The inside reports the secret the outside's listener hands to whoever connects.",
    layers: &[Layer::NetNs, Layer::Seccomp, Layer::Landlock],
    references: &[
        "CVE-2020-15257 (containerd-shim abstract socket)",
        "unix(7): abstract socket namespace",
    ],
    class: ProbeClass::Plain,
};

pub struct AbstractSocket;

/// The outside's listener; stops on Drop.
struct Listener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct State {
    _listener: Listener,
    secret: String,
}

impl Probe for AbstractSocket {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let id = META.id;
        let secret = world.fresh_secret().map_err(ProbeError::world(id))?;
        let salt = world.fresh_secret().map_err(ProbeError::world(id))?;
        let name = format!("breakout-{}-{}", world.unique("abstract"), &salt[..8]);
        let addr = SocketAddr::from_abstract_name(name.as_bytes())
            .map_err(|e| ProbeError::arrange(id, "abstract socket address", e))?;
        let listener = UnixListener::bind_addr(&addr)
            .map_err(|e| ProbeError::arrange(id, format!("bind @{name}"), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| ProbeError::arrange(id, "O_NONBLOCK on the listener", e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let line = format!("{secret}\n");
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        // Best effort: a client that hangs up early simply gets nothing.
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.write_all(line.as_bytes());
                    }
                    Err(_) => std::thread::sleep(IDLE),
                }
            }
        });
        Ok(Arrangement::new(
            vec![kv("name", format!("@{name}"))],
            State {
                _listener: Listener {
                    stop,
                    thread: Some(thread),
                },
                secret,
            },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        let name = parse_or_report(&mut steps, args, |a| {
            let name = a.str("name")?;
            name.strip_prefix('@')
                .map(str::to_string)
                .ok_or_else(|| crate::ArgError::Invalid {
                    key: "name".into(),
                    value: name.into(),
                    reason: "an abstract socket name starts with @".into(),
                })
        });
        if let Some(name) = name {
            let stream = io_keep(
                &mut steps,
                "connect to the outside's abstract socket",
                format!("connect(@{name})"),
                || {
                    let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
                    // No read timeout: the listener's thread answers and closes when it runs,
                    // which on a loaded guest may be later than any fixed wait; the launch's
                    // timeout bounds a listener that never answers (inconclusive).
                    UnixStream::connect_addr(&addr)
                },
            );
            if let Some(mut stream) = stream {
                let mut text = String::new();
                if steps
                    .io("read what the service says", "read(socket)", || {
                        stream.read_to_string(&mut text)
                    })
                    .is_some()
                {
                    steps.data(text.trim().to_string());
                }
            }
        }
        steps.finish()
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        judge_by_secret(
            &arrangement,
            run,
            META.id,
            |s: &State| &s.secret,
            "the abstract socket's secret",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::testing::{judge_needs_the_secret, temp_world};

    #[test]
    fn judge_escapes_only_with_the_secret() {
        let (_dir, world) = temp_world();
        judge_needs_the_secret(&AbstractSocket, &world, |s: &State| s.secret.clone());
    }

    #[test]
    fn a_name_without_at_is_rejected() {
        let report = AbstractSocket.attempt(&["name=plain".into()]);
        assert_eq!(report.steps[0].action, "parse arguments");
        assert!(report.steps[0]
            .data
            .as_deref()
            .unwrap()
            .contains("starts with @"));
    }
}
