//! The guest image: an uncompressed cpio (decompression under TCG costs more than reading the
//! bytes) holding our init as /init, the binaries a run needs with the shared libraries they
//! load, busybox with its applet links, a minimal /etc and the files given with `--add`.
//!
//! Host paths keep their host path in the guest, including the host's symlinks on the way
//! (Debian's merged /usr: /lib -> usr/lib), so a binary's own view of its libraries and of
//! `argv[0]` is the same inside and out. Images are cached under the hash of everything that
//! goes in (paths, sizes, mtimes, inode numbers of the host files).

use crate::cpio::{CpioError, CpioWriter, Meta};
use crate::elf::{self, ElfError, SearchPath};
use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{self, BufWriter};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use thiserror::Error;

/// Bump when the image layout changes, so cached images are rebuilt.
const LAYOUT_VERSION: u32 = 1;

/// How many cached images to keep.
const KEEP_IMAGES: usize = 12;

#[derive(Debug, Error)]
pub enum ImageError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{0} is not an absolute path (the guest path must be absolute)")]
    NotAbsolute(PathBuf),
    #[error("symlink loop or too many links resolving {0}")]
    SymlinkLoop(PathBuf),
    #[error("guest path {path}: {reason}")]
    Conflict { path: String, reason: String },
    #[error("shared libraries: {0}")]
    Elf(#[from] ElfError),
    #[error("writing {path}: {source}")]
    Cpio { path: PathBuf, source: CpioError },
    #[error("running `{cmd}`: {reason}")]
    Tool { cmd: String, reason: String },
}

/// One host file (or directory, copied whole) placed in the guest. ELF binaries get their
/// shared libraries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GuestFile {
    pub host: PathBuf,
    pub guest: PathBuf,
}

impl GuestFile {
    /// The host file at the same path in the guest.
    pub fn same_path(host: impl Into<PathBuf>) -> Self {
        let host = host.into();
        GuestFile {
            guest: host.clone(),
            host,
        }
    }

    /// Parses `HOST[:GUEST]` as given to `--add`.
    pub fn parse(spec: &str) -> Result<Self, ImageError> {
        let (host, guest) = match spec.split_once(':') {
            Some((h, g)) => (PathBuf::from(h), PathBuf::from(g)),
            None => (PathBuf::from(spec), PathBuf::from(spec)),
        };
        let host = if host.is_absolute() {
            host
        } else {
            std::env::current_dir()
                .map_err(|source| ImageError::Io {
                    what: "reading the current directory for",
                    path: host.clone(),
                    source,
                })?
                .join(&host)
        };
        let guest = if guest.is_absolute() {
            guest
        } else if spec.contains(':') {
            return Err(ImageError::NotAbsolute(guest));
        } else {
            host.clone()
        };
        Ok(GuestFile {
            host: normalize(&host),
            guest: normalize(&guest),
        })
    }
}

/// What goes into one image.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// The guest init binary (`breakout-init`), placed at /init.
    pub init: PathBuf,
    /// busybox, placed at /bin/busybox with its applet links; None leaves it out.
    pub busybox: Option<PathBuf>,
    pub files: Vec<GuestFile>,
    /// Leave DWARF out of ELF files (see [`crate::strip`]).
    pub strip_debug: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Entry {
    Dir(u32, u32, u32),
    File { host: PathBuf, perm: u32 },
    Bytes(Vec<u8>, u32),
    Symlink(String),
    CharDev(u32, u32, u32),
}

/// The image as a sorted map from guest path (relative, no leading slash) to entry; sorted
/// order puts every directory before what it holds.
#[derive(Debug, Default)]
pub struct Image {
    entries: BTreeMap<String, Entry>,
    /// Where stripped copies of ELF files are kept; None: files go in as they are.
    strip_cache: Option<PathBuf>,
}

impl Image {
    /// The fixed skeleton: directories, /dev/console (the kernel opens it for init before
    /// devtmpfs exists), /etc, and the host's top-level symlinks (merged /usr).
    pub fn skeleton() -> Self {
        let mut img = Image::default();
        for name in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
            let host = Path::new("/").join(name);
            if let Ok(target) = fs::read_link(&host) {
                img.entries.insert(
                    name.to_string(),
                    Entry::Symlink(target.to_string_lossy().into_owned()),
                );
            }
        }
        for (dir, perm) in [
            ("dev", 0o755),
            ("proc", 0o555),
            ("sys", 0o555),
            ("run", 0o755),
            ("tmp", 0o1777),
            ("etc", 0o755),
            ("root", 0o700),
            ("srv", 0o755),
            ("mnt", 0o755),
            ("usr/bin", 0o755),
            ("usr/sbin", 0o755),
            ("bin", 0o755),
            ("sbin", 0o755),
        ] {
            img.dir(dir, perm, 0, 0);
        }
        img.dir("home/sandbox", 0o755, 1000, 1000);
        img.put("dev/console", Entry::CharDev(5, 1, 0o600));
        for (path, text) in [
            (
                "etc/passwd",
                "root:x:0:0:root:/root:/bin/sh\nsandbox:x:1000:1000:sandbox:/home/sandbox:/bin/sh\n",
            ),
            ("etc/group", "root:x:0:\nsandbox:x:1000:\n"),
            ("etc/hostname", "breakout-vm\n"),
            ("etc/hosts", "127.0.0.1 localhost breakout-vm\n::1 localhost\n"),
            (
                "etc/nsswitch.conf",
                "passwd: files\ngroup: files\nshadow: files\nhosts: files\n",
            ),
        ] {
            img.put(path, Entry::Bytes(text.as_bytes().to_vec(), 0o644));
        }
        img
    }

    /// An image for a second archive unpacked over the first: only the host's top-level
    /// symlinks (merged /usr), so paths resolve as in the first image.
    pub fn overlay() -> Self {
        let mut img = Image::default();
        for name in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
            let host = Path::new("/").join(name);
            if let Ok(target) = fs::read_link(&host) {
                img.entries.insert(
                    name.to_string(),
                    Entry::Symlink(target.to_string_lossy().into_owned()),
                );
            }
        }
        img
    }

    /// Places one host file at `guest` as it is: no shared libraries are looked up (the caller
    /// adds them, e.g. from a tree of unpacked packages).
    pub fn add_file_only(&mut self, host: &Path, guest: &Path, perm: u32) {
        self.put(
            &guest.to_string_lossy(),
            Entry::File {
                host: host.to_path_buf(),
                perm,
            },
        );
    }

    /// A symlink at `guest` pointing at `target`, as it is.
    pub fn add_symlink(&mut self, guest: &Path, target: &str) {
        self.put(&guest.to_string_lossy(), Entry::Symlink(target.to_string()));
    }

    /// A host file at its own path with the symlinks met on the way (a library the loader finds
    /// there).
    pub fn add_at_host_path(&mut self, host: &Path) -> Result<(), ImageError> {
        self.add_host_path(host, 0)
    }

    /// Builds the whole image description for a spec.
    pub fn from_spec(spec: &ImageSpec) -> Result<Self, ImageError> {
        let search = SearchPath::from_host();
        let mut img = Image::skeleton();
        if let Some(busybox) = &spec.busybox {
            img.add_busybox(busybox, &search)?;
        }
        img.add_binary_at(&spec.init, Path::new("/init"), &search)?;
        for f in &spec.files {
            img.add(f, &search)?;
        }
        Ok(img)
    }

    fn dir(&mut self, path: &str, perm: u32, uid: u32, gid: u32) {
        let path = self.resolve(path);
        self.ensure_parents(&path);
        match self.entries.get(&path) {
            Some(Entry::Dir(..)) | Some(Entry::Symlink(_)) => {}
            _ => {
                self.entries.insert(path, Entry::Dir(perm, uid, gid));
            }
        }
    }

    fn put(&mut self, path: &str, entry: Entry) {
        let path = self.resolve(path);
        self.ensure_parents(&path);
        self.entries.insert(path, entry);
    }

    fn ensure_parents(&mut self, path: &str) {
        let mut prefix = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            self.entries
                .entry(prefix.clone())
                .or_insert(Entry::Dir(0o755, 0, 0));
        }
    }

    /// Follows the image's own symlinks in the directory part of a guest path.
    fn resolve(&self, path: &str) -> String {
        let mut current = path.trim_start_matches('/').to_string();
        for _ in 0..40 {
            let parts: Vec<&str> = current.split('/').collect();
            let mut changed = false;
            for i in 0..parts.len().saturating_sub(1) {
                let prefix = parts[..=i].join("/");
                if let Some(Entry::Symlink(target)) = self.entries.get(&prefix) {
                    let base = if target.starts_with('/') {
                        PathBuf::from(target)
                    } else {
                        Path::new("/").join(parts[..i].join("/")).join(target)
                    };
                    let joined = base.join(parts[i + 1..].join("/"));
                    current = normalize(&joined)
                        .to_string_lossy()
                        .trim_start_matches('/')
                        .to_string();
                    changed = true;
                    break;
                }
            }
            if !changed {
                break;
            }
        }
        current
    }

    /// Adds one `--add` item: a file (with its libraries when it is an ELF binary) or a
    /// directory tree.
    pub fn add(&mut self, f: &GuestFile, search: &SearchPath) -> Result<(), ImageError> {
        let meta = fs::metadata(&f.host).map_err(|source| ImageError::Io {
            what: "cannot add",
            path: f.host.clone(),
            source,
        })?;
        if meta.is_dir() {
            self.add_tree(&f.host, &f.guest, search)
        } else if f.host == f.guest {
            self.add_host_path(&f.host, 0)?;
            self.add_libraries(&f.host, search)
        } else {
            self.add_binary_at(&f.host, &f.guest, search)
        }
    }

    fn add_binary_at(
        &mut self,
        host: &Path,
        guest: &Path,
        search: &SearchPath,
    ) -> Result<(), ImageError> {
        if !guest.is_absolute() {
            return Err(ImageError::NotAbsolute(guest.to_path_buf()));
        }
        let real = fs::canonicalize(host).map_err(|source| ImageError::Io {
            what: "cannot add",
            path: host.to_path_buf(),
            source,
        })?;
        let perm = file_perm(&real)?;
        self.put(
            &guest.to_string_lossy(),
            Entry::File {
                host: real.clone(),
                perm,
            },
        );
        self.add_libraries(&real, search)
    }

    fn add_libraries(&mut self, host: &Path, search: &SearchPath) -> Result<(), ImageError> {
        if !elf::is_elf(host) {
            return Ok(());
        }
        for lib in elf::needed_files(host, search)? {
            self.add_host_path(&lib, 0)?;
        }
        Ok(())
    }

    fn add_tree(
        &mut self,
        host: &Path,
        guest: &Path,
        search: &SearchPath,
    ) -> Result<(), ImageError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ImageError::Io {
                what: "cannot add",
                path,
                source,
            }
        };
        let meta = fs::symlink_metadata(host).map_err(io_err(host))?;
        let guest_str = guest.to_string_lossy().into_owned();
        if meta.file_type().is_symlink() {
            let target = fs::read_link(host).map_err(io_err(host))?;
            self.put(
                &guest_str,
                Entry::Symlink(target.to_string_lossy().into_owned()),
            );
        } else if meta.is_dir() {
            self.dir(&guest_str, meta.mode() & 0o7777, 0, 0);
            let mut children: Vec<_> = fs::read_dir(host)
                .map_err(io_err(host))?
                .collect::<Result<_, _>>()
                .map_err(io_err(host))?;
            children.sort_by_key(|e| e.file_name());
            for child in children {
                let name = child.file_name();
                self.add_tree(&host.join(&name), &guest.join(&name), search)?;
            }
        } else if meta.is_file() {
            self.put(
                &guest_str,
                Entry::File {
                    host: host.to_path_buf(),
                    perm: meta.mode() & 0o7777,
                },
            );
            self.add_libraries(host, search)?;
        }
        Ok(())
    }

    /// Places a host file at its own path, recreating every symlink met on the way.
    fn add_host_path(&mut self, path: &Path, depth: u32) -> Result<(), ImageError> {
        if depth > 40 {
            return Err(ImageError::SymlinkLoop(path.to_path_buf()));
        }
        if !path.is_absolute() {
            return Err(ImageError::NotAbsolute(path.to_path_buf()));
        }
        let parts: Vec<_> = normalize(path)
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_os_string()),
                _ => None,
            })
            .collect();
        let mut cur = PathBuf::from("/");
        for (i, part) in parts.iter().enumerate() {
            let next = cur.join(part);
            let meta = fs::symlink_metadata(&next).map_err(|source| ImageError::Io {
                what: "cannot add",
                path: next.clone(),
                source,
            })?;
            let guest = next.to_string_lossy().into_owned();
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&next).map_err(|source| ImageError::Io {
                    what: "reading link",
                    path: next.clone(),
                    source,
                })?;
                let key = self.resolve(&guest);
                match self.entries.get(&key) {
                    None => {
                        self.ensure_parents(&key);
                        self.entries
                            .insert(key, Entry::Symlink(target.to_string_lossy().into_owned()));
                    }
                    Some(Entry::Symlink(_)) => {}
                    Some(_) => {
                        return Err(ImageError::Conflict {
                            path: guest,
                            reason: format!(
                            "is a symlink on the host ({}) but already something else in the image",
                            target.display()
                        ),
                        })
                    }
                }
                let mut resolved = if target.is_absolute() {
                    target
                } else {
                    cur.join(target)
                };
                for rest in &parts[i + 1..] {
                    resolved.push(rest);
                }
                return self.add_host_path(&normalize(&resolved), depth + 1);
            }
            if i + 1 == parts.len() {
                if meta.is_dir() {
                    self.dir(&guest, meta.mode() & 0o7777, 0, 0);
                } else {
                    self.put(
                        &guest,
                        Entry::File {
                            host: next.clone(),
                            perm: meta.mode() & 0o7777,
                        },
                    );
                }
            }
            cur = next;
        }
        Ok(())
    }

    fn add_busybox(&mut self, busybox: &Path, search: &SearchPath) -> Result<(), ImageError> {
        self.add_binary_at(busybox, Path::new("/bin/busybox"), search)?;
        let out = Command::new(busybox)
            .arg("--list-full")
            .output()
            .map_err(|e| ImageError::Tool {
                cmd: format!("{} --list-full", busybox.display()),
                reason: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(ImageError::Tool {
                cmd: format!("{} --list-full", busybox.display()),
                reason: format!("exited with {}", out.status),
            });
        }
        let list = String::from_utf8_lossy(&out.stdout);
        for applet in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let key = self.resolve(applet);
            if key.ends_with("/busybox") || self.entries.contains_key(&key) {
                continue;
            }
            self.put(applet, Entry::Symlink("/bin/busybox".into()));
        }
        Ok(())
    }

    /// Hash of everything that decides the image's bytes.
    pub fn cache_key(&self) -> Result<u64, ImageError> {
        let mut h = DefaultHasher::new();
        LAYOUT_VERSION.hash(&mut h);
        self.strip_cache.is_some().hash(&mut h);
        for (path, entry) in &self.entries {
            path.hash(&mut h);
            entry.hash(&mut h);
            if let Entry::File { host, .. } = entry {
                let m = fs::metadata(host).map_err(|source| ImageError::Io {
                    what: "cannot read",
                    path: host.clone(),
                    source,
                })?;
                (m.len(), m.mtime(), m.mtime_nsec(), m.ino(), m.dev()).hash(&mut h);
            }
        }
        Ok(h.finish())
    }

    /// Guest paths in the image, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The target of a symlink in the image.
    pub fn link_target(&self, path: &str) -> Option<&str> {
        match self.entries.get(path.trim_start_matches('/')) {
            Some(Entry::Symlink(t)) => Some(t),
            _ => None,
        }
    }

    /// Writes the cpio archive.
    pub fn write(&self, out: &Path) -> Result<(), ImageError> {
        let cpio_err = |source| ImageError::Cpio {
            path: out.to_path_buf(),
            source,
        };
        let file = fs::File::create(out).map_err(|source| ImageError::Io {
            what: "cannot create",
            path: out.to_path_buf(),
            source,
        })?;
        let mut w = CpioWriter::new(BufWriter::with_capacity(1 << 20, file));
        for (path, entry) in &self.entries {
            match entry {
                Entry::Dir(perm, uid, gid) => w.dir(
                    path,
                    Meta {
                        perm: *perm,
                        uid: *uid,
                        gid: *gid,
                    },
                ),
                Entry::Symlink(target) => w.symlink(path, target, Meta::root(0o777)),
                Entry::CharDev(major, minor, perm) => {
                    w.char_device(path, *major, *minor, Meta::root(*perm))
                }
                Entry::Bytes(bytes, perm) => {
                    w.file(path, bytes.len() as u64, &mut &bytes[..], Meta::root(*perm))
                }
                Entry::File { host, perm } => {
                    let source = match &self.strip_cache {
                        Some(cache) => crate::strip::stripped_or_original(host, cache),
                        None => host.clone(),
                    };
                    let host = &source;
                    let mut f = fs::File::open(host).map_err(|source| ImageError::Io {
                        what: "cannot open",
                        path: host.clone(),
                        source,
                    })?;
                    let len = f
                        .metadata()
                        .map_err(|source| ImageError::Io {
                            what: "cannot stat",
                            path: host.clone(),
                            source,
                        })?
                        .len();
                    w.file(path, len, &mut f, Meta::root(*perm))
                }
            }
            .map_err(cpio_err)?;
        }
        w.finish().map_err(cpio_err)?;
        Ok(())
    }
}

fn file_perm(path: &Path) -> Result<u32, ImageError> {
    fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .map_err(|source| ImageError::Io {
            what: "cannot stat",
            path: path.to_path_buf(),
            source,
        })
}

/// Lexical normalization: drops `.`, applies `..`.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Returns the cached image for the spec, building it when needed.
pub fn build_cached(spec: &ImageSpec, cache_dir: &Path) -> Result<PathBuf, ImageError> {
    let img = Image::from_spec(spec)?;
    write_cached(img, spec.strip_debug, cache_dir)
}

/// Writes `img` into the image cache under its hash (or finds it there).
pub fn write_cached(
    mut img: Image,
    strip_debug: bool,
    cache_dir: &Path,
) -> Result<PathBuf, ImageError> {
    if strip_debug {
        img.strip_cache = Some(cache_dir.to_path_buf());
    }
    let dir = cache_dir.join("initramfs");
    fs::create_dir_all(&dir).map_err(|source| ImageError::Io {
        what: "cannot create",
        path: dir.clone(),
        source,
    })?;
    let path = dir.join(format!("{:016x}.cpio", img.cache_key()?));
    if path.is_file() {
        // Touch it so pruning keeps what is in use.
        let _ = fs::File::open(&path).and_then(|f| f.set_modified(std::time::SystemTime::now()));
        return Ok(path);
    }
    // Unique per process and per call: threads of one process may build the same image.
    static BUILDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id(),
        BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let written = img.write(&tmp);
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, &path).map_err(|source| ImageError::Io {
        what: "cannot rename into",
        path: path.clone(),
        source,
    })?;
    prune(&dir);
    Ok(path)
}

/// The image QEMU boots when a second archive goes with the first: the two concatenated (the
/// kernel unpacks one newc archive after another, later entries over earlier ones), cached under
/// both names. The first image stays as it is, so a run without the second boots what it booted
/// before.
pub fn concatenated(first: &Path, second: &Path, cache_dir: &Path) -> Result<PathBuf, ImageError> {
    let dir = cache_dir.join("initramfs");
    let stem = |p: &Path| {
        p.file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    };
    let path = dir.join(format!("{}+{}.cpio", stem(first), stem(second)));
    if path.is_file() {
        let _ = fs::File::open(&path).and_then(|f| f.set_modified(std::time::SystemTime::now()));
        return Ok(path);
    }
    static JOINS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id(),
        JOINS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let io = |what: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| ImageError::Io {
            what,
            path: p,
            source,
        }
    };
    let result = (|| {
        let mut out = BufWriter::with_capacity(
            1 << 20,
            fs::File::create(&tmp).map_err(io("cannot create", &tmp))?,
        );
        for part in [first, second] {
            let mut f = fs::File::open(part).map_err(io("cannot open", part))?;
            let n = io::copy(&mut f, &mut out).map_err(io("cannot copy", part))?;
            // The kernel skips zeros between archives and wants the next header 4-aligned.
            let pad = (4 - n % 4) % 4;
            io::Write::write_all(&mut out, &[0u8; 4][..pad as usize])
                .map_err(io("cannot write", &tmp))?;
        }
        io::Write::flush(&mut out).map_err(io("cannot write", &tmp))?;
        fs::rename(&tmp, &path).map_err(io("cannot rename into", &path))
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    prune(&dir);
    Ok(path)
}

/// Keeps the most recently used images only; failures here only cost disk space.
fn prune(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let mut images: Vec<(std::time::SystemTime, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cpio"))
        .filter_map(|p| Some((fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    images.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (_, p) in images.into_iter().skip(KEEP_IMAGES) {
        let _ = fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_usr_links_are_kept_and_libs_land_at_their_real_path() {
        let mut img = Image::skeleton();
        let search = SearchPath::from_host();
        img.add(&GuestFile::same_path("/bin/bash"), &search)
            .unwrap();
        let paths: Vec<&str> = img.paths().collect();
        if fs::read_link("/lib").is_ok() {
            assert_eq!(img.link_target("lib"), Some("usr/lib"));
            assert!(
                paths.contains(&"usr/lib/x86_64-linux-gnu/libc.so.6"),
                "{paths:?}"
            );
        }
        assert!(paths.contains(&"usr/bin/bash") || paths.contains(&"bin/bash"));
        assert!(
            img.link_target(&img.resolve("lib64/ld-linux-x86-64.so.2"))
                .is_some(),
            "{paths:?}"
        );
    }

    #[test]
    fn busybox_applets_link_to_busybox_and_our_files_win() {
        let spec = ImageSpec {
            init: PathBuf::from("/bin/bash"),
            busybox: Some(PathBuf::from("/bin/busybox")),
            files: vec![GuestFile {
                host: PathBuf::from("/bin/bash"),
                guest: PathBuf::from("/bin/sh"),
            }],
            strip_debug: false,
        };
        let img = Image::from_spec(&spec).unwrap();
        let bin = img.resolve("bin/busybox");
        assert!(img.paths().any(|p| p == bin));
        assert_eq!(
            img.link_target(&img.resolve("bin/ls")),
            Some("/bin/busybox")
        );
        let sh = img.resolve("bin/sh");
        assert!(matches!(img.entries.get(&sh), Some(Entry::File { .. })));
        assert!(matches!(img.entries.get("init"), Some(Entry::File { .. })));
        assert!(matches!(
            img.entries.get("dev/console"),
            Some(Entry::CharDev(5, 1, _))
        ));
    }

    #[test]
    fn parents_come_before_children_in_the_archive() {
        let img = Image::from_spec(&ImageSpec {
            init: PathBuf::from("/bin/bash"),
            busybox: None,
            files: vec![],
            strip_debug: false,
        })
        .unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for p in img.paths() {
            if let Some((parent, _)) = p.rsplit_once('/') {
                assert!(seen.contains(parent), "{p} before {parent}");
            }
            seen.insert(p.to_string());
        }
    }

    #[test]
    fn cache_key_follows_content_changes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("data");
        fs::write(&f, b"one").unwrap();
        let spec = ImageSpec {
            init: PathBuf::from("/bin/bash"),
            busybox: None,
            files: vec![GuestFile::same_path(&f)],
            strip_debug: false,
        };
        let k1 = Image::from_spec(&spec).unwrap().cache_key().unwrap();
        assert_eq!(k1, Image::from_spec(&spec).unwrap().cache_key().unwrap());
        fs::write(&f, b"two!").unwrap();
        let k2 = Image::from_spec(&spec).unwrap().cache_key().unwrap();
        assert_ne!(k1, k2);
    }

    #[test]
    fn missing_added_file_names_the_path() {
        let err = Image::from_spec(&ImageSpec {
            init: PathBuf::from("/bin/bash"),
            busybox: None,
            files: vec![GuestFile::same_path("/nonexistent/thing")],
            strip_debug: false,
        })
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/thing"), "{err}");
    }

    #[test]
    fn add_spec_parsing() {
        let f = GuestFile::parse("/a/b:/c/d").unwrap();
        assert_eq!(f.host, Path::new("/a/b"));
        assert_eq!(f.guest, Path::new("/c/d"));
        assert_eq!(GuestFile::parse("/x").unwrap().guest, Path::new("/x"));
        assert!(matches!(
            GuestFile::parse("/x:rel"),
            Err(ImageError::NotAbsolute(_))
        ));
    }
}
