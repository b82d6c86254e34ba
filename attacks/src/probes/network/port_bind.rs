//! port-bind: listen on a privileged and a high port on 0.0.0.0; the outside, in its own network
//! namespace, tries to reach the listeners while the payload runs.
//!
//! Timing (`kit::sync`): once its listeners are up the inside says "ready" over the channel and
//! serves until the outside releases it. The outside's first look after "ready" is decisive, as
//! the kernel answers a loopback connect at once: a listener in the outside's namespace is
//! accepted (and must echo this attempt's nonce), none is refused. Only a look in which every
//! port gave such an answer releases the inside; a connect or echo that timed out is looked at
//! again. Without the channel (a runtime that does not pass it on) the inside keeps its listeners
//! open for LISTEN_MS, as before.

use crate::kit::sync;
use crate::kit::{with_args, wrong_state};
use crate::world::{Look, Watcher, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

pub struct PortBind;

/// The privileged port tried (below 1024 needs CAP_NET_BIND_SERVICE).
const PRIVILEGED_PORT: u16 = 80;

/// How long the inside keeps its listeners open waiting for the outside when it has no timing
/// channel.
const LISTEN_MS: u64 = 4000;

/// How often the outside's watcher tries to connect.
const WATCH_INTERVAL: Duration = Duration::from_millis(25);

static META: ProbeMeta = ProbeMeta {
    id: "port-bind",
    title: "serve on the host's ports (privileged 80 and a high port)",
    technique: "The payload binds TCP port 80 and a high port on 0.0.0.0 and listens, as a \
        compromised service would to intercept or offer traffic on the host's addresses. Binding \
        below 1024 needs CAP_NET_BIND_SERVICE; any port works for a bare process. In a network \
        namespace of its own the listeners exist only there, out of the host's reach. \
        Landlock stops it only where the kernel restricts TCP bind (ABI 4, Linux 6.7; not on Debian 12's 6.1).",
    oracle: "The outside, in its own network namespace, connects to 127.0.0.1 on either port \
        during the run, sends a fresh nonce and gets it back from the payload, prefixed with \
        this attempt's tag (so a listener of a concurrent attempt does not count).",
    layers: &[Layer::NetNs, Layer::Seccomp, Layer::Landlock],
    references: &["CDK network_namespace check"],
    class: ProbeClass::Plain,
};

/// What the outside saw: the ports whose listener echoed the nonce, and the timing channel.
struct Seen {
    reached: Vec<u16>,
    sync: sync::Outside,
}

/// Connects to each port until finished; keeps the ports whose listener echoed the nonce, and
/// releases the inside after the first look that began after its "ready" and got a sure answer
/// from every port.
fn watch_ports(
    ports: Vec<u16>,
    expected: String,
    nonce: String,
    sync: sync::Outside,
) -> Watcher<Seen> {
    let seen = Seen {
        reached: Vec::new(),
        sync,
    };
    Watcher::start(WATCH_INTERVAL, seen, move |seen: &mut Seen| {
        // Read before the tries: only tries made after "ready" may release the inside.
        let ready = seen.sync.ready();
        let mut sure = true;
        for &port in &ports {
            if seen.reached.contains(&port) {
                continue;
            }
            match try_port(port, &nonce, &expected) {
                Try::Echoed => seen.reached.push(port),
                Try::Refused | Try::Other => {}
                Try::Unsure => sure = false,
            }
        }
        if ready && sure {
            seen.sync.release();
        }
        Look::Again
    })
}

/// What one try of a port gave.
#[derive(Debug, PartialEq, Eq)]
enum Try {
    /// The listener answered the nonce with this attempt's tag.
    Echoed,
    /// Nothing listens on the port in the outside's namespace.
    Refused,
    /// A listener answered with a whole line that is not ours (a concurrent attempt's).
    Other,
    /// No sure answer (a timeout, an early end): look again.
    Unsure,
}

/// Connects to `port`, sends `nonce` and reads the answer.
fn try_port(port: u16, nonce: &str, expected: &str) -> Try {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
        Ok(s) => s,
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Try::Refused,
        Err(_) => return Try::Unsure,
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(format!("{nonce}\n").as_bytes()).is_err() {
        return Try::Unsure;
    }
    let mut line = String::new();
    match BufReader::new(stream).read_line(&mut line) {
        Ok(_) if line.trim() == expected => Try::Echoed,
        Ok(_) if line.ends_with('\n') => Try::Other,
        _ => Try::Unsure,
    }
}

struct State {
    ports: Vec<u16>,
    watcher: Watcher<Seen>,
}

/// A free high port in the outside's namespace (bind to 0, read the number, release it).
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))?
        .local_addr()?
        .port())
}

/// Answers the outside's connections until it releases the inside (with a timing channel) or,
/// without one, until every port was served once or LISTEN_MS are over.
fn serve(
    steps: &mut Steps,
    listeners: &[(u16, TcpListener)],
    tag: &str,
    sync: Option<sync::Inside>,
) {
    let deadline = Instant::now() + Duration::from_millis(LISTEN_MS);
    let mut served: Vec<u16> = Vec::new();
    loop {
        if sync.is_none() && served.len() == listeners.len() {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if sync.is_none() && left.is_zero() {
            steps.note(
                "wait for the outside",
                format!(
                    "no connection within {LISTEN_MS} ms on {} port(s)",
                    listeners.len() - served.len()
                ),
            );
            return;
        }
        let mut fds: Vec<PollFd> = listeners
            .iter()
            .map(|(_, l)| PollFd::new(l.as_fd(), PollFlags::POLLIN))
            .collect();
        if let Some(sync) = &sync {
            fds.push(PollFd::new(sync.as_fd(), PollFlags::POLLIN));
        }
        // With the channel the wait ends when the outside says so (the launch's timeout is the
        // backstop, and a timed-out attempt is inconclusive, never blocked).
        let timeout = match sync {
            Some(_) => PollTimeout::NONE,
            None => PollTimeout::from(u16::try_from(left.as_millis()).unwrap_or(u16::MAX)),
        };
        if poll(&mut fds, timeout).is_err() {
            continue;
        }
        let released = sync.is_some() && sync::Inside::released_by(fds[listeners.len()].revents());
        let ready: Vec<bool> = fds
            .iter()
            .take(listeners.len())
            .map(|f| f.revents().is_some_and(|r| r.contains(PollFlags::POLLIN)))
            .collect();
        for ((port, listener), ready) in listeners.iter().zip(ready) {
            if !ready || (sync.is_none() && served.contains(port)) {
                continue;
            }
            let conn = steps.io(
                "accept the outside's connection",
                format!("accept(:{port})"),
                || listener.accept().map(|(s, _)| s),
            );
            if let Some(stream) = conn {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
                let mut line = String::new();
                let mut reader = BufReader::new(&stream);
                if reader.read_line(&mut line).is_ok() {
                    let mut out = &stream;
                    let reply = format!("{tag} {}\n", line.trim());
                    let echoed = out.write_all(reply.as_bytes()).is_ok();
                    steps.note(
                        "echo the outside's nonce",
                        format!("port {port}: echoed={echoed}"),
                    );
                }
                if !served.contains(port) {
                    served.push(*port);
                }
            }
        }
        if released {
            steps.note(
                "wait for the outside",
                format!(
                    "released by the outside; {} of {} port(s) reached",
                    served.len(),
                    listeners.len()
                ),
            );
            return;
        }
    }
}

impl Probe for PortBind {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let nonce = world.fresh_secret().map_err(ProbeError::world(META.id))?;
        let high = free_port().map_err(|source| ProbeError::Arrange {
            probe: META.id,
            step: "finding a free high port".into(),
            source,
        })?;
        let tag = world.unique("port-bind");
        let ports = vec![PRIVILEGED_PORT, high];
        let mut args = vec![
            kv(
                "ports",
                ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            kv("tag", &tag),
        ];
        let (outside, inside) = sync::Outside::pair()
            .map_err(|e| ProbeError::arrange(META.id, "socketpair for the timing channel", e))?;
        args.push(outside.arg());
        let watcher = watch_ports(ports.clone(), format!("{tag} {nonce}"), nonce, outside);
        Ok(Arrangement::new(args, State { ports, watcher }).with_stdin(inside))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        with_args(META.id, args, |args, steps| {
            let mut ports = Vec::new();
            for word in args.str("ports")?.split(',') {
                ports.push(word.parse::<u16>().map_err(|e| crate::ArgError::Invalid {
                    key: "ports".into(),
                    value: word.into(),
                    reason: e.to_string(),
                })?);
            }
            let tag = args.str("tag")?;
            let synced = args
                .opt_str(sync::ARG)
                .and_then(|ino| ino.parse::<u64>().ok());
            let mut listeners = Vec::new();
            for port in ports {
                let bound = steps.io(
                    "listen on the host's port",
                    format!("bind(0.0.0.0:{port}) + listen"),
                    || TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)),
                );
                if let Some(l) = bound {
                    listeners.push((port, l));
                }
            }
            if !listeners.is_empty() {
                // "ready" only once every listener that could be made is up.
                let sync = synced.and_then(sync::Inside::announce);
                if synced.is_some() && sync.is_none() {
                    steps.note(
                        "wait for the outside",
                        format!(
                            "the timing channel did not reach the payload: a window of {LISTEN_MS} ms"
                        ),
                    );
                }
                serve(steps, &listeners, tag, sync);
            }
            Ok(())
        })
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        let Ok(state) = arrangement.state.downcast::<State>() else {
            return wrong_state(META.id);
        };
        let State { ports, watcher } = *state;
        let Some(Seen { reached, .. }) = watcher.finish() else {
            return Judgement::inconclusive(
                "the outside's watcher of the ports failed; it cannot vouch for what it saw",
            );
        };
        if reached.is_empty() {
            let evidence = run
                .inside
                .map(|r| r.failures())
                .unwrap_or_else(|| "no inside report".into());
            Judgement::blocked(format!(
                "the outside reached no listener on 127.0.0.1 ports {ports:?}; {evidence}"
            ))
        } else {
            Judgement::escaped(format!(
                "the outside reached the payload's listener on 127.0.0.1 port(s) {reached:?} (nonce echoed)"
            ))
        }
    }
}
