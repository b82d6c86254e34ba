//! host-loopback: connect to a TCP service the outside runs on 127.0.0.1.

use crate::kit::{judge_secret, with_args, wrong_state};
use crate::world::{TcpSecretServer, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation,
};
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

pub struct HostLoopback;

static META: ProbeMeta = ProbeMeta {
    id: "host-loopback",
    title: "reach a service on the host's loopback",
    technique: "Services bound to 127.0.0.1 (databases, admin APIs, cloud metadata proxies) \
        trust that only local processes reach them. The payload connects to such a service the \
        outside runs on its loopback and reads what it hands out. A network namespace gives the \
        sandbox a loopback of its own on which nothing listens. \
        Landlock stops it only where the kernel restricts TCP connect (ABI 4, Linux 6.7; not on Debian 12's 6.1).",
    oracle: "The per-attempt secret the service writes to its clients appears in the payload's \
        report (the service also counts its clients).",
    layers: &[Layer::NetNs, Layer::Seccomp, Layer::Landlock],
    references: &["CDK metadata and loopback checks", "network_namespaces(7)"],
    class: ProbeClass::Plain,
};

struct State {
    secret: String,
    server: TcpSecretServer,
}

impl Probe for HostLoopback {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let secret = world.fresh_secret().map_err(ProbeError::world(META.id))?;
        let server = world
            .serve_secret_tcp(&secret)
            .map_err(ProbeError::world(META.id))?;
        Ok(Arrangement::new(
            vec![kv("port", server.port())],
            State { secret, server },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        with_args(META.id, args, |args, steps| {
            let port: u16 = args.get("port")?;
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let stream = steps.io(
                "connect to the host's service",
                format!("connect({addr})"),
                || TcpStream::connect_timeout(&addr, Duration::from_secs(2)),
            );
            let Some(mut stream) = stream else {
                return Ok(());
            };
            // No read timeout: the service writes its line and closes at once when its thread
            // runs, which on a loaded guest may be later than any fixed wait; the launch's
            // timeout bounds a service that never answers (inconclusive, never blocked).
            let mut text = String::new();
            if steps
                .io("read what it hands out", "read(socket)", || {
                    stream.read_to_string(&mut text)
                })
                .is_some()
            {
                steps.data(text);
            }
            Ok(())
        })
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        let Ok(state) = arrangement.state.downcast::<State>() else {
            return wrong_state(META.id);
        };
        let what = format!(
            "127.0.0.1:{} (served {} client(s))",
            state.server.port(),
            state.server.served()
        );
        judge_secret(run, &state.secret, &what)
    }
}
