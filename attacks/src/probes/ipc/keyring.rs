//! keyring: read a secret key the outside keeps in root's user keyring.

use crate::kit::{judge_secret, with_args, wrong_state};
use crate::world::{keyctl_abi as abi, UserKey, World};
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use nix::errno::Errno;
use std::ffi::CString;

pub struct Keyring;

static META: ProbeMeta = ProbeMeta {
    id: "keyring",
    title: "read a secret from the host's kernel keyring",
    technique: "The kernel keyring stores credentials (Kerberos tickets, disk and network keys) \
        per uid, and keys are addressed by a global serial number. The outside puts a secret key \
        in root's user keyring; the payload reads it with keyctl(KEYCTL_READ) by serial and by \
        searching its own user keyring. Keyrings are not namespaced by mount, pid or network \
        namespaces: only a different uid (or user namespace) or a seccomp filter on keyctl \
        stops it, which is why Docker's profile denies the keyring syscalls.",
    oracle: "The per-attempt secret held only in the key appears in the payload's report.",
    layers: &[Layer::Seccomp, Layer::Uid, Layer::UserNs],
    references: &[
        "BOtB -pwnKeyctl",
        "keyrings(7)",
        "moby default seccomp profile (keyctl, add_key, request_key)",
    ],
    class: ProbeClass::Plain,
};

struct State {
    secret: String,
    key: UserKey,
}

fn read_key(steps: &mut Steps, serial: i64, how: &str) {
    let mut buf = vec![0u8; 256];
    let n = steps.call(
        "read the key",
        format!("keyctl(KEYCTL_READ, {serial}) ({how})"),
        || {
            // SAFETY: the kernel writes at most buf.len() bytes into `buf`.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_keyctl,
                    abi::KEYCTL_READ,
                    serial,
                    buf.as_mut_ptr(),
                    buf.len(),
                )
            };
            Errno::result(n).map(|n| n as usize)
        },
    );
    if let Some(n) = n {
        steps.data(String::from_utf8_lossy(&buf[..n.min(buf.len())]).into_owned());
    }
}

impl Probe for Keyring {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let secret = world.fresh_secret().map_err(ProbeError::world(META.id))?;
        let key = world
            .user_key(&secret)
            .map_err(ProbeError::world(META.id))?;
        let args = vec![
            kv("serial", key.serial()),
            kv("description", key.description()),
        ];
        Ok(Arrangement::new(args, State { secret, key }))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        with_args(META.id, args, |args, steps| {
            let serial: i64 = args.get("serial")?;
            let description = args.str("description")?;
            read_key(steps, serial, "by serial");
            let (Ok(ktype), Ok(desc)) = (CString::new("user"), CString::new(description)) else {
                steps.bad_args("description contains a NUL byte");
                return Ok(());
            };
            let found = steps.call(
                "search my user keyring",
                format!("keyctl(KEYCTL_SEARCH, @u, user, {description})"),
                || {
                    // SAFETY: type and description are NUL-terminated and outlive the call.
                    Errno::result(unsafe {
                        libc::syscall(
                            libc::SYS_keyctl,
                            abi::KEYCTL_SEARCH,
                            abi::KEY_SPEC_USER_KEYRING,
                            ktype.as_ptr(),
                            desc.as_ptr(),
                            0,
                        )
                    })
                },
            );
            if let Some(found) = found {
                read_key(steps, found, "found by search");
            }
            Ok(())
        })
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        let Ok(state) = arrangement.state.downcast::<State>() else {
            return wrong_state(META.id);
        };
        let what = format!("root's user key {}", state.key.serial());
        judge_secret(run, &state.secret, &what)
    }
}
