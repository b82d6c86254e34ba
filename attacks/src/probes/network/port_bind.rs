//! port-bind: listen on a privileged and a high port on 0.0.0.0; the outside, in its own network
//! namespace, tries to reach the listeners while the payload runs.

use crate::kit::{with_args, wrong_state};
use crate::world::{Look, Watcher, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

pub struct PortBind;

/// The privileged port tried (below 1024 needs CAP_NET_BIND_SERVICE).
const PRIVILEGED_PORT: u16 = 80;

/// How long the inside keeps its listeners open waiting for the outside.
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

/// Connects to each port until finished; keeps the ports whose listener echoed the nonce.
fn watch_ports(ports: Vec<u16>, expected: String, nonce: String) -> Watcher<Vec<u16>> {
    Watcher::start(WATCH_INTERVAL, Vec::new(), move |reached: &mut Vec<u16>| {
        for &port in &ports {
            if !reached.contains(&port) && echoes(port, &nonce, &expected) {
                reached.push(port);
            }
        }
        Look::Again
    })
}

/// True when the listener on `port` answers `nonce` with `expected`.
fn echoes(port: u16, nonce: &str, expected: &str) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(format!("{nonce}\n").as_bytes()).is_err() {
        return false;
    }
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.trim() == expected
}

struct State {
    ports: Vec<u16>,
    watcher: Watcher<Vec<u16>>,
}

/// A free high port in the outside's namespace (bind to 0, read the number, release it).
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))?
        .local_addr()?
        .port())
}

fn serve(steps: &mut Steps, listeners: &[(u16, TcpListener)], tag: &str) {
    let deadline = Instant::now() + Duration::from_millis(LISTEN_MS);
    let mut served: Vec<u16> = Vec::new();
    while served.len() < listeners.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
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
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        if poll(&mut fds, PollTimeout::from(ms)).is_err() {
            continue;
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| r.contains(PollFlags::POLLIN)))
            .collect();
        for ((port, listener), ready) in listeners.iter().zip(ready) {
            if !ready || served.contains(port) {
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
                served.push(*port);
            }
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
        let args = vec![
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
        let watcher = watch_ports(ports.clone(), format!("{tag} {nonce}"), nonce);
        Ok(Arrangement::new(args, State { ports, watcher }))
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
                serve(steps, &listeners, tag);
            }
            Ok(())
        })
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        let Ok(state) = arrangement.state.downcast::<State>() else {
            return wrong_state(META.id);
        };
        let State { ports, watcher } = *state;
        let reached = watcher.finish().unwrap_or_default();
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
