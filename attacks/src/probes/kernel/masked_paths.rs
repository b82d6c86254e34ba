//! masked-paths: read kernel memory through /proc/kcore.

use crate::kit::{conclude, hex, parse_or_report, Oracle};
use crate::world::World;
use crate::{
    kv, Arrangement, InsideReport, Judgement, Layer, Limits, Probe, ProbeClass, ProbeError,
    ProbeMeta, RunObservation, Steps,
};
use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::OnceLock;

/// How many bytes of kernel text the challenge asks for.
const CHALLENGE_BYTES: usize = 16;

static META: ProbeMeta = ProbeMeta {
    id: "masked-paths",
    title: "Read kernel memory through /proc/kcore",
    technique: "Some /proc and /sys files expose the whole machine: /proc/kcore is the kernel's \
        memory as an ELF core file, /proc/timer_list and /sys/firmware show host state. Runtimes \
        mask them (bind /dev/null over them) because root in a fresh procfs can otherwise read \
        them; the kernel itself only asks CAP_SYS_RAWIO for kcore. The outside picks a random \
        kernel function and gives the inside its address; the inside finds the address in \
        kcore's program headers and reads the bytes there.",
    oracle: "The inside reports the 16 bytes of kernel text at the outside's randomly chosen \
        address, which the outside read from its own /proc/kcore.",
    layers: &[
        Layer::FsHardening,
        Layer::Caps,
        Layer::UserNs,
        Layer::Uid,
        Layer::Seccomp,
    ],
    references: &[
        "runc libcontainer/specconv maskedPaths; runc tests/integration/mask.bats",
        "CVE-2016-8867-era Docker advisories on /proc exposure",
    ],
    class: ProbeClass::Plain,
};

pub struct MaskedPaths;

struct State {
    address: u64,
    expected: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KcoreError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}: not an ELF64 core")]
    NotElf(String),
    #[error("address {0:#x} is in no PT_LOAD segment of kcore")]
    Unmapped(u64),
}

/// Reads `len` bytes of kernel memory at virtual address `address` from a kcore file.
pub fn read_kcore(path: &Path, address: u64, len: usize) -> Result<Vec<u8>, KcoreError> {
    let io_err = |source| KcoreError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = fs::File::open(path).map_err(io_err)?;
    let mut header = [0u8; 64];
    file.read_exact_at(&mut header, 0).map_err(io_err)?;
    if &header[..4] != b"\x7fELF" || header[4] != 2 {
        return Err(KcoreError::NotElf(path.display().to_string()));
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u64_at = |b: &[u8], o: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(a)
    };
    let phoff = u64_at(&header, 0x20);
    let phentsize = u16_at(&header, 0x36) as u64;
    let phnum = u16_at(&header, 0x38) as u64;
    if phentsize < 56 {
        return Err(KcoreError::NotElf(path.display().to_string()));
    }
    for i in 0..phnum {
        let mut ph = [0u8; 56];
        file.read_exact_at(&mut ph, phoff + i * phentsize)
            .map_err(io_err)?;
        let p_type = u32::from_le_bytes([ph[0], ph[1], ph[2], ph[3]]);
        let (offset, vaddr, memsz) = (u64_at(&ph, 8), u64_at(&ph, 16), u64_at(&ph, 40));
        if p_type == 1 && address >= vaddr && address + len as u64 <= vaddr.saturating_add(memsz) {
            let mut out = vec![0u8; len];
            file.read_exact_at(&mut out, offset + (address - vaddr))
                .map_err(io_err)?;
            return Ok(out);
        }
    }
    Err(KcoreError::Unmapped(address))
}

/// The kernel's text symbols, read once per process: /proc/kallsyms takes seconds to read in a
/// TCG guest, and ablation arranges this probe many times.
fn kernel_text_symbols() -> io::Result<&'static [u64]> {
    static SYMBOLS: OnceLock<Vec<u64>> = OnceLock::new();
    if let Some(s) = SYMBOLS.get() {
        return Ok(s);
    }
    let listing = fs::read_to_string("/proc/kallsyms")?;
    Ok(SYMBOLS.get_or_init(|| text_symbols(&listing)))
}

/// The addresses of kernel text symbols in a kallsyms listing (zero addresses, as shown under
/// kptr_restrict, are left out).
fn text_symbols(kallsyms: &str) -> Vec<u64> {
    kallsyms
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let addr = u64::from_str_radix(it.next()?, 16).ok()?;
            let kind = it.next()?;
            let name = it.next()?;
            // Module symbols ("[mod]") live in module memory that can go away; skip them.
            (matches!(kind, "T" | "t") && addr != 0 && it.next().is_none() && !name.is_empty())
                .then_some(addr)
        })
        .collect()
}

impl Probe for MaskedPaths {
    fn meta(&self) -> &'static ProbeMeta {
        &META
    }

    fn arrange(&self, world: &World, _limits: &Limits) -> Result<Arrangement, ProbeError> {
        let id = META.id;
        let symbols = kernel_text_symbols()
            .map_err(|e| ProbeError::arrange(id, "reading /proc/kallsyms", e))?;
        if symbols.is_empty() {
            return Err(ProbeError::unsupported(
                id,
                "/proc/kallsyms shows no kernel text addresses to the outside (kptr_restrict=2?)",
            ));
        }
        let salt = world.fresh_secret().map_err(ProbeError::world(id))?;
        let pick = u64::from_str_radix(&salt[..12], 16).unwrap_or(0) as usize % symbols.len();
        let address = symbols[pick];
        let bytes = match read_kcore(Path::new("/proc/kcore"), address, CHALLENGE_BYTES) {
            Ok(b) => b,
            Err(KcoreError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(ProbeError::unsupported(id, "the kernel has no /proc/kcore"))
            }
            Err(e) => {
                return Err(ProbeError::arrange(
                    id,
                    "reading the challenge from /proc/kcore",
                    io::Error::other(e),
                ))
            }
        };
        Ok(Arrangement::new(
            vec![kv("proc", "/proc"), kv("address", format!("{address:#x}"))],
            State {
                address,
                expected: hex(&bytes),
            },
        ))
    }

    fn attempt(&self, args: &[String]) -> InsideReport {
        let mut steps = Steps::new(META.id);
        if let Some((proc_dir, address)) = parse_or_report(&mut steps, args, |a| {
            Ok((a.str("proc")?.to_string(), a.hex("address")?))
        }) {
            let proc_dir = Path::new(&proc_dir);
            let kcore = proc_dir.join("kcore");
            let mut bytes = None;
            steps.io(
                "read kernel text through kcore",
                format!("open+pread({}, {address:#x})", kcore.display()),
                || {
                    let b = read_kcore(&kcore, address, CHALLENGE_BYTES).map_err(|e| match e {
                        KcoreError::Io { source, .. } => source,
                        other => io::Error::other(other),
                    })?;
                    bytes = Some(b);
                    Ok(CHALLENGE_BYTES)
                },
            );
            if let Some(b) = bytes {
                steps.data(format!("{address:#x}={}", hex(&b)));
            }
            // Evidence only: whether the other masked files show real content.
            let timer_list = proc_dir.join("timer_list");
            steps.io(
                "read another masked file",
                format!("read({})", timer_list.display()),
                || fs::read(&timer_list).map(|b| b.len()),
            );
        }
        steps.finish()
    }

    fn judge(&self, _world: &World, arrangement: Arrangement, run: &RunObservation) -> Judgement {
        let Some(state) = arrangement.state::<State>() else {
            return Judgement::inconclusive("masked-paths: arrangement state of the wrong type");
        };
        let needle = format!("{:#x}={}", state.address, state.expected);
        let oracle = match run.inside.and_then(|r| r.step_with(&needle)) {
            Some(_) => Oracle::Hit(format!(
                "the inside read the kernel text at {:#x} through kcore",
                state.address
            )),
            None => Oracle::Miss(format!(
                "the kernel text at {:#x} is not in the inside's report",
                state.address
            )),
        };
        conclude(oracle, run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_symbols_skip_hidden_and_module_addresses() {
        let listing = "ffffffff81000000 T _stext\n\
                       0000000000000000 T hidden\n\
                       ffffffff81000100 D data_sym\n\
                       ffffffffc0000000 t modfn\t[dummy]\n\
                       ffffffff81000200 t local_fn\n";
        assert_eq!(
            text_symbols(listing),
            vec![0xffffffff81000000, 0xffffffff81000200]
        );
    }

    #[test]
    fn kcore_reader_finds_the_segment() {
        // A tiny ELF64 core with one PT_LOAD segment mapping vaddr 0x1000 to file offset 120.
        let mut elf = vec![0u8; 120];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        let ph = 64;
        elf[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes());
        elf[ph + 8..ph + 16].copy_from_slice(&120u64.to_le_bytes());
        elf[ph + 16..ph + 24].copy_from_slice(&0x1000u64.to_le_bytes());
        elf[ph + 40..ph + 48].copy_from_slice(&32u64.to_le_bytes());
        elf.extend((0u8..32).collect::<Vec<_>>());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kcore");
        fs::write(&path, &elf).unwrap();
        assert_eq!(read_kcore(&path, 0x1004, 4).unwrap(), vec![4, 5, 6, 7]);
        assert!(matches!(
            read_kcore(&path, 0x2000, 4),
            Err(KcoreError::Unmapped(0x2000))
        ));
        fs::write(
            &path,
            b"not an elf file, just text padding to 64 bytes.........................",
        )
        .unwrap();
        assert!(matches!(
            read_kcore(&path, 0x1000, 4),
            Err(KcoreError::NotElf(_))
        ));
    }

    #[test]
    fn bad_arguments_are_reported() {
        let report = MaskedPaths.attempt(&["proc=/proc".into(), "address=zz".into()]);
        assert_eq!(report.steps[0].action, "parse arguments");
    }
}
