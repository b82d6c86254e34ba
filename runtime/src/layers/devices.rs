//! The device policy of `fs-hardening`: which device nodes the payload may create and open,
//! whatever filesystem they sit on. On cgroup v2 the kernel asks a BPF_PROG_TYPE_CGROUP_DEVICE
//! program of the task's cgroup (and of every ancestor) at each mknod(2) and open(2) of a device;
//! a 0 is EPERM. The program allows what Docker allows by default (runc's AllowedDevices): mknod
//! of any character or block device, and read/write/mknod of null, zero, full, random, urandom,
//! tty, console, ptmx and the pts slaves. Everything else, disks first, is refused.
//!
//! The program is assembled here, about thirty instructions, rather than pulled from a BPF crate:
//! the ones that load programs (aya, libbpf-rs) bring an ELF loader or a C library for what is a
//! fixed straight-line filter, and this is a security tool whose dependencies are attack surface.
//! The shape is crun's and runc's (a prologue loading type, access, major and minor into
//! registers, one block per rule, deny at the end); the tests below check the bytes emitted and
//! run the program in a small interpreter against the device list, and the VM tests
//! (tests/cgroup_limits.rs) have the kernel's verifier load it and enforce it.

use nix::errno::Errno;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Debug, thiserror::Error)]
pub enum DevicesError {
    #[error("layer fs-hardening: the device policy needs a cgroup v2 hierarchy (a BPF device program on the sandbox's own cgroup): {0}")]
    NoCgroup2(String),
    #[error("layer fs-hardening: loading the device policy program: bpf(BPF_PROG_LOAD): {errno} ({}){log}", errno.desc())]
    Load { errno: Errno, log: String },
    #[error("layer fs-hardening: attaching the device policy to {}: bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE): {errno} ({})", path.display(), errno.desc())]
    Attach { path: PathBuf, errno: Errno },
    #[error("layer fs-hardening: opening {} for the device policy: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A device type as the kernel passes it to the program (BPF_DEVCG_DEV_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevType {
    Block = 1,
    Char = 2,
}

/// Access bits (BPF_DEVCG_ACC_*).
pub const MKNOD: u8 = 1;
pub const READ: u8 = 2;
pub const WRITE: u8 = 4;
pub const RWM: u8 = MKNOD | READ | WRITE;

/// One allow rule: `None` is the wildcard `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub kind: DevType,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

const fn char_dev(major: u32, minor: Option<u32>) -> Rule {
    Rule {
        kind: DevType::Char,
        major: Some(major),
        minor,
        access: RWM,
    }
}

/// Docker's default device rules (runc's AllowedDevices, as `docker run` applies them).
pub const DOCKER_DEFAULT: &[Rule] = &[
    // 'c *:* m', 'b *:* m': making any node is allowed; opening it is what is policed.
    Rule {
        kind: DevType::Char,
        major: None,
        minor: None,
        access: MKNOD,
    },
    Rule {
        kind: DevType::Block,
        major: None,
        minor: None,
        access: MKNOD,
    },
    char_dev(1, Some(3)), // null
    char_dev(1, Some(5)), // zero
    char_dev(1, Some(7)), // full
    char_dev(1, Some(8)), // random
    char_dev(1, Some(9)), // urandom
    char_dev(5, Some(0)), // tty
    char_dev(5, Some(1)), // console
    char_dev(5, Some(2)), // ptmx
    char_dev(136, None),  // pts slaves
];

/// Whether `rules` allow the access (the reference the program is tested against).
pub fn allows(rules: &[Rule], kind: DevType, access: u8, major: u32, minor: u32) -> bool {
    rules.iter().any(|r| {
        r.kind == kind
            && access & r.access == access
            && r.major.is_none_or(|m| m == major)
            && r.minor.is_none_or(|m| m == minor)
    })
}

/// One eBPF instruction (struct bpf_insn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    /// The kernel's 8-byte encoding (x86-64 and every little-endian target: dst in the low
    /// nibble of the register byte).
    pub fn encode(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.src << 4) | (self.dst & 0x0f);
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }
}

// Opcodes: class | op | source.
const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const MOV32_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const MOV32_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

/// The program for `rules`: r2 = type, r3 = access, r4 = major, r5 = minor; one block per rule
/// that jumps to the next block on the first mismatch and returns 1 at its end; 0 after the last.
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),        // r2 = ctx->access_type
        insn(AND32_K, 2, 0, 0, 0xffff), // r2 &= 0xffff (the type)
        insn(LDX_W, 3, 1, 0, 0),        // r3 = ctx->access_type
        insn(RSH32_K, 3, 0, 0, 16),     // r3 >>= 16 (the access)
        insn(LDX_W, 4, 1, 4, 0),        // r4 = ctx->major
        insn(LDX_W, 5, 1, 8, 0),        // r5 = ctx->minor
    ];
    for r in rules {
        let mut checks: Vec<Insn> = vec![insn(JNE_K, 2, 0, 0, r.kind as i32)];
        if r.access != RWM {
            // (access & allowed) != access: the request asks for more than the rule gives.
            checks.push(insn(MOV32_X, 1, 3, 0, 0));
            checks.push(insn(AND32_K, 1, 0, 0, i32::from(r.access)));
            checks.push(insn(JNE_X, 1, 3, 0, 0));
        }
        if let Some(m) = r.major {
            checks.push(insn(JNE_K, 4, 0, 0, m as i32));
        }
        if let Some(m) = r.minor {
            checks.push(insn(JNE_K, 5, 0, 0, m as i32));
        }
        // Every jump skips the rest of the block: the checks after it and the two-instruction
        // accept.
        let n = checks.len();
        for (i, c) in checks.iter_mut().enumerate() {
            if c.code == JNE_K || c.code == JNE_X {
                c.off = (n - i - 1 + 2) as i16;
            }
        }
        p.extend(checks);
        p.push(insn(MOV32_K, 0, 0, 0, 1));
        p.push(insn(EXIT, 0, 0, 0, 0));
    }
    p.push(insn(MOV32_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Programs of descendant cgroups run as well as ours, never instead (all must allow).
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The name the program shows in the kernel's list (bpftool prog).
const PROG_NAME: &[u8] = b"breakout_dev";

/// The start of union bpf_attr for BPF_PROG_LOAD, up to expected_attach_type.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// union bpf_attr for BPF_PROG_ATTACH.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// bpf(2) with a `#[repr(C)]` attribute struct of type `T`.
///
/// # Safety
/// `T` must be a prefix of union bpf_attr for `cmd`, and every pointer in it must be valid for
/// the kernel to read (or write, for the log buffer) for the duration of the call.
unsafe fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> Result<libc::c_long, Errno> {
    let r = libc::syscall(
        libc::SYS_bpf,
        cmd,
        attr as *mut T,
        std::mem::size_of::<T>() as u32,
    );
    Errno::result(r)
}

/// How often BPF_PROG_LOAD is asked again after EAGAIN (libbpf's count).
const LOAD_ATTEMPTS: usize = 5;

/// `call` again while it fails with EAGAIN, at most `attempts` times in all: the verifier gives
/// up with EAGAIN when a signal arrives for the process while it works (a SIGCHLD, a tracer
/// detaching), which says nothing about the program.
fn retry_eagain<T>(
    attempts: usize,
    mut call: impl FnMut() -> Result<T, Errno>,
) -> Result<T, Errno> {
    let mut left = attempts.max(1);
    loop {
        left -= 1;
        match call() {
            Err(Errno::EAGAIN) if left > 0 => continue,
            other => return other,
        }
    }
}

/// Loads the program for `rules`; on a verifier refusal the error carries the kernel's log.
pub fn load(rules: &[Rule]) -> Result<OwnedFd, DevicesError> {
    let code: Vec<u8> = program(rules).iter().flat_map(Insn::encode).collect();
    let license = c"Apache-2.0";
    let mut name = [0u8; 16];
    name[..PROG_NAME.len()].copy_from_slice(PROG_NAME);
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: (code.len() / 8) as u32,
        insns: code.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        ..Default::default()
    };
    // SAFETY: ProgLoadAttr is the PROG_LOAD prefix of bpf_attr; `code` and `license` outlive
    // the call; no log buffer is given.
    match retry_eagain(LOAD_ATTEMPTS, || unsafe { bpf(BPF_PROG_LOAD, &mut attr) }) {
        // SAFETY: a fresh descriptor the kernel just returned, owned by nobody else.
        Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(Errno::EINVAL | Errno::EACCES) => {} // the verifier refused: ask again for its log
        Err(errno) => {
            return Err(DevicesError::Load {
                errno,
                log: String::new(),
            })
        }
    }
    let mut log = vec![0u8; 64 * 1024];
    attr.log_level = 1;
    attr.log_size = log.len() as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    // SAFETY: as above; `log` is writable for log_size bytes and outlives the call.
    match retry_eagain(LOAD_ATTEMPTS, || unsafe { bpf(BPF_PROG_LOAD, &mut attr) }) {
        // SAFETY: as above.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(errno) => {
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]).trim().to_string();
            Err(DevicesError::Load {
                errno,
                log: if text.is_empty() {
                    String::new()
                } else {
                    format!("; verifier: {text}")
                },
            })
        }
    }
}

/// The loaded program for `rules`, loaded (and verified) once per process: a runtime that
/// starts many sandboxes attaches the same program to each leaf instead of running the
/// verifier per launch. The descriptor is close-on-exec (every bpf(2) descriptor is), and the
/// supervisor closes the runtime's close-on-exec descriptors first thing.
fn loaded(rules: &[Rule]) -> Result<Arc<OwnedFd>, DevicesError> {
    /// Loaded programs by their encoded instructions.
    type Loaded = HashMap<Vec<[u8; 8]>, Arc<OwnedFd>>;
    static PROGS: OnceLock<Mutex<Loaded>> = OnceLock::new();
    let key: Vec<[u8; 8]> = program(rules).iter().map(Insn::encode).collect();
    let progs = PROGS.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(fd) = progs.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return Ok(fd);
    }
    let fd = Arc::new(load(rules)?);
    if let Ok(mut m) = progs.lock() {
        m.insert(key, fd.clone());
    }
    Ok(fd)
}

/// Attaches the program for `rules` to the cgroup v2 directory `cgroup` (loading it on the
/// first call). The kernel keeps it attached until the cgroup is removed.
pub fn install(cgroup: &Path, rules: &[Rule]) -> Result<(), DevicesError> {
    let prog = loaded(rules)?;
    let dir = std::fs::File::open(cgroup).map_err(|source| DevicesError::Open {
        path: cgroup.to_path_buf(),
        source,
    })?;
    let mut attr = AttachAttr {
        target_fd: dir.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    // SAFETY: AttachAttr is the PROG_ATTACH prefix of bpf_attr and holds no pointers; both
    // descriptors are open for the call.
    unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }.map_err(|errno| DevicesError::Attach {
        path: cgroup.to_path_buf(),
        errno,
    })?;
    Ok(())
}

/// Whether a sandbox of `cfg` gets the device policy: with fs-hardening, when the runtime runs
/// as root. An unprivileged caller has no CAP_MKNOD in the initial user namespace, so its payload
/// cannot make a device node at all (and it could not load the program either).
pub fn wanted(cfg: &crate::config::SandboxConfig) -> bool {
    cfg.enabled(crate::layer::Layer::FsHardening) && nix::unistd::geteuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// EAGAIN (a signal during verification) is asked again, up to the count; other errors and
    /// success end at once.
    #[rstest]
    #[case(&[Err(Errno::EAGAIN), Err(Errno::EAGAIN), Ok(7)], Ok(7), 3)]
    #[case(&[Err(Errno::EAGAIN); 5], Err(Errno::EAGAIN), 5)]
    #[case(&[Err(Errno::EINVAL), Ok(7)], Err(Errno::EINVAL), 1)]
    #[case(&[Ok(7)], Ok(7), 1)]
    fn eagain_is_asked_again_a_few_times(
        #[case] answers: &[Result<i32, Errno>],
        #[case] want: Result<i32, Errno>,
        #[case] calls: usize,
    ) {
        let mut made = 0;
        let got = retry_eagain(LOAD_ATTEMPTS, || {
            made += 1;
            answers[made - 1]
        });
        assert_eq!(got, want);
        assert_eq!(made, calls);
    }

    /// Runs `prog` on one device context, as the kernel would: only the instructions
    /// [`program`] emits are known; anything else panics the test.
    fn run(prog: &[Insn], kind: DevType, access: u8, major: u32, minor: u32) -> u64 {
        let ctx = [((access as u32) << 16) | kind as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (d, s) = (i.dst as usize, i.src as usize);
            pc += 1;
            match i.code {
                LDX_W => {
                    assert_eq!(s, 1, "loads only from the context");
                    r[d] = u64::from(ctx[i.off as usize / 4]);
                }
                AND32_K => r[d] = u64::from((r[d] as u32) & (i.imm as u32)),
                RSH32_K => r[d] = u64::from((r[d] as u32) >> i.imm),
                MOV32_X => r[d] = u64::from(r[s] as u32),
                MOV32_K => r[d] = u64::from(i.imm as u32),
                JNE_K if r[d] != u64::from(i.imm as u32) => pc += i.off as usize,
                JNE_X if r[d] != r[s] => pc += i.off as usize,
                JNE_K | JNE_X => {}
                EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
            assert!(pc < prog.len(), "ran off the end");
        }
    }

    #[test]
    fn prologue_and_one_block_encode_as_the_kernel_expects() {
        let p = program(&[char_dev(1, Some(3))]);
        let bytes: Vec<[u8; 8]> = p.iter().map(Insn::encode).collect();
        assert_eq!(bytes[0], [0x61, 0x12, 0, 0, 0, 0, 0, 0]); // r2 = *(u32 *)(r1 + 0)
        assert_eq!(bytes[1], [0x54, 0x02, 0, 0, 0xff, 0xff, 0, 0]); // w2 &= 0xffff
        assert_eq!(bytes[3], [0x74, 0x03, 0, 0, 16, 0, 0, 0]); // w3 >>= 16
        assert_eq!(bytes[4], [0x61, 0x14, 4, 0, 0, 0, 0, 0]); // r4 = *(u32 *)(r1 + 4)
        assert_eq!(bytes[5], [0x61, 0x15, 8, 0, 0, 0, 0, 0]); // r5 = *(u32 *)(r1 + 8)
                                                              // if r2 != 2 (char) goto +4; if r4 != 1 goto +3; if r5 != 3 goto +2; w0 = 1; exit
        assert_eq!(bytes[6], [0x55, 0x02, 4, 0, 2, 0, 0, 0]);
        assert_eq!(bytes[7], [0x55, 0x04, 3, 0, 1, 0, 0, 0]);
        assert_eq!(bytes[8], [0x55, 0x05, 2, 0, 3, 0, 0, 0]);
        assert_eq!(bytes[9], [0xb4, 0x00, 0, 0, 1, 0, 0, 0]);
        assert_eq!(bytes[10], [0x95, 0, 0, 0, 0, 0, 0, 0]);
        // the deny at the end
        assert_eq!(bytes[11], [0xb4, 0x00, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes[12], [0x95, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes.len(), 13);
    }

    #[test]
    fn an_access_check_is_emitted_only_when_the_rule_is_not_rwm() {
        let p = program(&DOCKER_DEFAULT[..1]); // c *:* m
                                               // type check, then w1 = w3; w1 &= 1; if r1 != r3 goto +2
        assert_eq!(p[6], insn(JNE_K, 2, 0, 5, 2));
        assert_eq!(p[7], insn(MOV32_X, 1, 3, 0, 0));
        assert_eq!(p[8], insn(AND32_K, 1, 0, 0, 1));
        assert_eq!(p[9], insn(JNE_X, 1, 3, 2, 0));
        assert_eq!(p[10], insn(MOV32_K, 0, 0, 0, 1));
    }

    #[rstest]
    #[case::null_read(DevType::Char, READ, 1, 3, true)]
    #[case::null_rw(DevType::Char, READ | WRITE, 1, 3, true)]
    #[case::zero(DevType::Char, READ, 1, 5, true)]
    #[case::full(DevType::Char, WRITE, 1, 7, true)]
    #[case::random(DevType::Char, READ, 1, 8, true)]
    #[case::urandom(DevType::Char, READ, 1, 9, true)]
    #[case::tty(DevType::Char, READ | WRITE, 5, 0, true)]
    #[case::console(DevType::Char, READ | WRITE, 5, 1, true)]
    #[case::ptmx(DevType::Char, READ | WRITE, 5, 2, true)]
    #[case::pts(DevType::Char, READ | WRITE, 136, 7, true)]
    #[case::mknod_any_char(DevType::Char, MKNOD, 10, 232, true)]
    #[case::mknod_any_block(DevType::Block, MKNOD, 8, 0, true)]
    #[case::kvm(DevType::Char, READ | WRITE, 10, 232, false)]
    #[case::fuse(DevType::Char, READ | WRITE, 10, 229, false)]
    #[case::kmsg(DevType::Char, READ, 1, 11, false)]
    #[case::mem(DevType::Char, READ, 1, 1, false)]
    #[case::tty1(DevType::Char, WRITE, 4, 1, false)]
    #[case::loop_control(DevType::Char, READ, 10, 237, false)]
    #[case::sda(DevType::Block, READ, 8, 0, false)]
    #[case::loop0(DevType::Block, READ, 7, 0, false)]
    #[case::block_null_numbers(DevType::Block, READ, 1, 3, false)]
    #[case::mknod_and_read_disk(DevType::Block, MKNOD | READ, 8, 0, false)]
    fn docker_default_list(
        #[case] kind: DevType,
        #[case] access: u8,
        #[case] major: u32,
        #[case] minor: u32,
        #[case] allowed: bool,
    ) {
        assert_eq!(allows(DOCKER_DEFAULT, kind, access, major, minor), allowed);
        let got = run(&program(DOCKER_DEFAULT), kind, access, major, minor);
        assert_eq!(got, u64::from(allowed), "program disagrees with the list");
    }

    #[test]
    fn the_program_agrees_with_the_list_everywhere_it_matters() {
        let p = program(DOCKER_DEFAULT);
        for kind in [DevType::Block, DevType::Char] {
            for access in 1..=RWM {
                for major in [0, 1, 4, 5, 7, 8, 10, 136, 137, 4095] {
                    for minor in [0, 1, 2, 3, 5, 7, 8, 9, 11, 200, 1 << 19] {
                        assert_eq!(
                            run(&p, kind, access, major, minor),
                            u64::from(allows(DOCKER_DEFAULT, kind, access, major, minor)),
                            "{kind:?} access {access} {major}:{minor}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn an_empty_list_denies_everything() {
        let p = program(&[]);
        assert_eq!(p.len(), 8);
        assert_eq!(run(&p, DevType::Char, READ, 1, 3), 0);
    }
}
