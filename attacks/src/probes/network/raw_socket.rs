//! raw-socket: sniff a marker frame the outside sends on its loopback.
//!
//! Timing (`kit::sync`): once its sockets are open the inside says "ready" over the channel and
//! sniffs until the outside releases it. The outside numbers its datagrams and releases the
//! inside once its own receiver got one sent after "ready": the kernel hands a frame to every
//! packet tap of the namespace when it is sent and to every raw socket before the UDP socket,
//! so by then that datagram waits in the queue of any sniffer in the outside's namespace, and
//! the inside reads its queues dry before it ends. Without the channel (a runtime that does not
//! pass it on) the inside sniffs for `listen_ms`, as before.

use crate::kit::sync;
use crate::kit::{judge_by_secret, parse_or_report};
use crate::world::World;
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use nix::errno::Errno;
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What precedes the secret in every datagram the outside sends.
pub const MARKER: &str = "breakout-raw-marker:";

/// How often the outside sends its datagram.
const SEND_INTERVAL: Duration = Duration::from_millis(20);

static META: ProbeMeta = ProbeMeta {
    id: "raw-socket",
    title: "Sniff the outside's loopback traffic with a packet socket",
    technique: "A packet socket (AF_PACKET, SOCK_RAW) sees every frame of an interface, whoever \
        sent it; a raw IP socket sees every datagram of its protocol. The outside keeps sending \
        UDP datagrams carrying a secret between two of its own sockets on 127.0.0.1; the inside \
        opens a packet socket on `lo` (or a raw UDP socket) and reads them. Creating either \
        needs CAP_NET_RAW in the network namespace's owner, and a network namespace of its own \
        has a loopback that carries none of the outside's traffic.",
    oracle: "The inside reports the secret carried only in the outside's datagrams.",
    layers: &[
        Layer::Caps,
        Layer::NetNs,
        Layer::UserNs,
        Layer::Uid,
        Layer::Seccomp,
    ],
    references: &[
        "CVE-2020-14386 (AF_PACKET memory corruption reachable with CAP_NET_RAW)",
        "Docker keeps CAP_NET_RAW by default (ARP/DNS spoofing inside the bridge)",
    ],
    class: ProbeClass::Plain,
};

pub struct RawSocket;

/// The outside's sender thread; stops on Drop.
struct Sender {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct State {
    _sender: Sender,
    secret: String,
}

impl Probe for RawSocket {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let id = META.id;
        let secret = world.fresh_secret().map_err(ProbeError::world(id))?;
        let receiver = UdpSocket::bind("127.0.0.1:0")
            .map_err(|e| ProbeError::arrange(id, "bind the UDP receiver on 127.0.0.1", e))?;
        let target = receiver
            .local_addr()
            .map_err(|e| ProbeError::arrange(id, "getsockname of the UDP receiver", e))?;
        let sender = UdpSocket::bind("127.0.0.1:0")
            .map_err(|e| ProbeError::arrange(id, "bind the UDP sender on 127.0.0.1", e))?;
        receiver
            .set_nonblocking(true)
            .map_err(|e| ProbeError::arrange(id, "O_NONBLOCK on the UDP receiver", e))?;
        let sent_from = sender
            .local_addr()
            .map_err(|e| ProbeError::arrange(id, "getsockname of the UDP sender", e))?;
        let (mut sync, inside) = sync::Outside::pair()
            .map_err(|e| ProbeError::arrange(id, "socketpair for the timing channel", e))?;
        let sync_arg = sync.arg();
        // The tag tells this attempt's datagrams from those of attempts running beside it; the
        // number after the secret tells the datagrams sent after the inside's "ready".
        let tag = world.unique("raw");
        let prefix = format!("{MARKER}{tag}:{secret}:");
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut sink = [0u8; 256];
            let mut seq: u64 = 0;
            // The first number sent after the inside said "ready".
            let mut after_ready: Option<u64> = None;
            while !stop2.load(Ordering::Relaxed) {
                if after_ready.is_none() && sync.ready() {
                    after_ready = Some(seq);
                }
                // Best effort: a lost datagram is followed by the next one.
                let _ = sender.send_to(format!("{prefix}{seq}").as_bytes(), target);
                seq += 1;
                while let Ok((n, from)) = receiver.recv_from(&mut sink) {
                    let got = std::str::from_utf8(&sink[..n])
                        .ok()
                        .and_then(|text| text.strip_prefix(prefix.as_str()))
                        .and_then(|number| number.parse::<u64>().ok());
                    if from == sent_from
                        && got.is_some_and(|got| after_ready.is_some_and(|first| got >= first))
                    {
                        sync.release();
                    }
                }
                // Before "ready" the wait is on the channel, so the first datagram after it
                // goes out at once.
                if after_ready.is_none() {
                    sync.wait_ready(SEND_INTERVAL.as_millis() as u16);
                } else {
                    std::thread::sleep(SEND_INTERVAL);
                }
            }
        });
        Ok(Arrangement::new(
            vec![
                kv("interface", "lo"),
                kv("listen_ms", 3000),
                kv("tag", &tag),
                sync_arg,
            ],
            State {
                _sender: Sender {
                    stop,
                    thread: Some(thread),
                },
                secret,
            },
        )
        .with_stdin(inside))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        if let Some((iface, ms, tag, synced)) = parse_or_report(&mut steps, args, |a| {
            Ok((
                a.str("interface")?.to_string(),
                a.get::<u64>("listen_ms")?,
                a.str("tag")?.to_string(),
                a.opt_str(sync::ARG).and_then(|ino| ino.parse::<u64>().ok()),
            ))
        }) {
            let marker = format!("{MARKER}{tag}:");
            attempt(
                &mut steps,
                &iface,
                Duration::from_millis(ms),
                &marker,
                synced,
            );
        }
        steps.finish()
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        judge_by_secret(
            &arrangement,
            run,
            META.id,
            |s: &State| &s.secret,
            "the secret in the outside's loopback datagrams",
        )
    }
}

fn socket(domain: i32, ty: i32, protocol: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: socket(2) takes plain integers; a non-negative result is a fresh descriptor we own.
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, protocol) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn attempt(steps: &mut Steps, iface: &str, listen: Duration, marker: &str, synced: Option<u64>) {
    let eth_p_all = (libc::ETH_P_ALL as u16).to_be() as i32;
    let mut sockets: Vec<(OwnedFd, &str)> = Vec::new();
    let packet = steps.call(
        "open a packet socket",
        "socket(AF_PACKET, SOCK_RAW, ETH_P_ALL)",
        || socket(libc::AF_PACKET, libc::SOCK_RAW, eth_p_all),
    );
    if let Some(fd) = packet {
        let index = steps.call(
            "find the interface",
            format!("if_nametoindex({iface})"),
            || nix::net::if_::if_nametoindex(iface),
        );
        if let Some(index) = index {
            let bound = steps.call(
                "bind to the interface",
                format!("bind(AF_PACKET, ifindex {index})"),
                || {
                    // SAFETY: sockaddr_ll is plain data; zero is a valid starting value.
                    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                    addr.sll_family = libc::AF_PACKET as u16;
                    addr.sll_protocol = eth_p_all as u16;
                    addr.sll_ifindex = index as i32;
                    // SAFETY: addr is a valid sockaddr_ll of the size passed.
                    let r = unsafe {
                        libc::bind(
                            fd.as_raw_fd(),
                            (&addr as *const libc::sockaddr_ll).cast(),
                            std::mem::size_of::<libc::sockaddr_ll>() as u32,
                        )
                    };
                    Errno::result(r)
                },
            );
            if bound.is_some() {
                sockets.push((fd, "sniff frames on the interface"));
            }
        }
    }
    // A raw IP socket sees every UDP datagram the host receives.
    if let Some(fd) = steps.call(
        "open a raw UDP socket",
        "socket(AF_INET, SOCK_RAW, IPPROTO_UDP)",
        || socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_UDP),
    ) {
        sockets.push((fd, "sniff UDP datagrams"));
    }
    if sockets.is_empty() {
        return;
    }
    // "ready" only once every socket that could be opened listens.
    let sync = synced.and_then(sync::Inside::announce);
    if synced.is_some() && sync.is_none() {
        steps.note(
            "wait for the outside",
            format!(
                "the timing channel did not reach the payload: a window of {} ms",
                listen.as_millis()
            ),
        );
    }
    sniff(steps, &sockets, listen, marker, sync);
}

/// What one socket saw while listening.
#[derive(Default)]
struct Seen {
    frames: u64,
    found: Option<String>,
    error: Option<Errno>,
}

/// Reads from every socket at once until the marker shows up on one, or until the outside
/// releases the inside (with `sync`; then every queue is read dry first) or `listen` is over
/// (without), then records one step per socket. Each socket gets the whole wait: listening one
/// after the other doubled a blocked attempt's time.
fn sniff(
    steps: &mut Steps,
    sockets: &[(OwnedFd, &str)],
    listen: Duration,
    marker: &str,
    sync: Option<sync::Inside>,
) {
    let deadline = Instant::now() + listen;
    let mut buf = vec![0u8; 65536];
    let mut seen: Vec<Seen> = sockets.iter().map(|_| Seen::default()).collect();
    // As Steps::call does before a call: a payload killed by a filter while listening still
    // names what it was doing on stderr.
    eprintln!("breakout-probe: trying poll+recv(...) until the marker shows up");
    let mut released = false;
    'listen: while sync.is_some() || Instant::now() < deadline {
        let live: Vec<usize> = (0..sockets.len())
            .filter(|&i| seen[i].error.is_none())
            .collect();
        if live.is_empty() {
            break;
        }
        let mut pfds: Vec<nix::poll::PollFd> = live
            .iter()
            .map(|&i| {
                nix::poll::PollFd::new(
                    std::os::fd::AsFd::as_fd(&sockets[i].0),
                    nix::poll::PollFlags::POLLIN,
                )
            })
            .collect();
        if let Some(sync) = &sync {
            pfds.push(nix::poll::PollFd::new(
                sync.as_fd(),
                nix::poll::PollFlags::POLLIN,
            ));
        }
        // Released: one more pass over every queue without waiting, then stop.
        let wait = if released { 0u16 } else { 100u16 };
        match nix::poll::poll(&mut pfds, nix::poll::PollTimeout::from(wait)) {
            Ok(0) if released => break,
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => {
                for &i in &live {
                    seen[i].error = Some(e);
                }
                break;
            }
        }
        if sync.is_some() && !released && sync::Inside::released_by(pfds[live.len()].revents()) {
            released = true;
        }
        let ready: Vec<usize> = live
            .iter()
            .zip(&pfds)
            .filter(|(_, p)| p.revents().is_some_and(|r| !r.is_empty()))
            .map(|(&i, _)| i)
            .collect();
        if released && ready.is_empty() {
            break;
        }
        for i in ready {
            // Read the queue dry: after the release nothing may be left in it unread.
            loop {
                // SAFETY: buf is a writable buffer of buf.len() bytes.
                let n = unsafe {
                    libc::recv(
                        sockets[i].0.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        libc::MSG_DONTWAIT,
                    )
                };
                if n < 0 {
                    match Errno::last() {
                        Errno::EAGAIN | Errno::EINTR => {}
                        e => seen[i].error = Some(e),
                    }
                    break;
                }
                seen[i].frames += 1;
                if let Some(token) = find_marker(&buf[..n as usize], marker) {
                    seen[i].found = Some(token);
                    break 'listen;
                }
            }
        }
    }
    if released {
        steps.note("wait for the outside", "released by the outside");
    }
    for ((_, action), seen) in sockets.iter().zip(seen) {
        let frames = seen.frames;
        let recorded = steps.call(
            action,
            "recv(...) until the marker shows up",
            || match seen.error {
                Some(e) => Err(e),
                None => Ok(frames),
            },
        );
        match (recorded, seen.found) {
            (Some(_), Some(token)) => steps.data(token),
            (Some(n), None) => steps.note(action, format!("{n} frames seen, no marker")),
            _ => {}
        }
    }
}

/// The 32 hex digits after `marker` in a frame, if present.
fn find_marker(frame: &[u8], marker: &str) -> Option<String> {
    let m = marker.as_bytes();
    let at = frame.windows(m.len()).position(|w| w == m)? + m.len();
    let token: String = frame[at..]
        .iter()
        .take(32)
        .take_while(|b| b.is_ascii_hexdigit())
        .map(|&b| b as char)
        .collect();
    (token.len() == 32).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_is_found_in_a_frame() {
        let secret = "0123456789abcdef0123456789abcdef";
        let mine = format!("{MARKER}raw-1:");
        let mut frame = vec![0u8; 42];
        frame.extend_from_slice(format!("{mine}{secret}").as_bytes());
        assert_eq!(find_marker(&frame, &mine).as_deref(), Some(secret));
        // Another attempt's datagram carries another tag.
        let other = format!("{MARKER}raw-2:{secret}");
        assert_eq!(find_marker(other.as_bytes(), &mine), None);
        assert_eq!(find_marker(b"no marker here", &mine), None);
        assert_eq!(find_marker(format!("{mine}0123").as_bytes(), &mine), None);
    }

    #[test]
    fn bad_arguments_are_reported() {
        let report = RawSocket.attempt(&["interface=lo".to_string(), "tag=raw-1".to_string()]);
        assert_eq!(report.steps[0].action, "parse arguments");
        assert!(report.steps[0]
            .data
            .as_deref()
            .unwrap()
            .contains("listen_ms"));
    }
}
