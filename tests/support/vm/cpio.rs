//! An initramfs writer: the `newc` cpio format the kernel unpacks, made in memory without any
//! root tool (device nodes and ownership are written into the archive, not created on disk).
//!
//! Host files are copied with the symlinks on their way (`/lib -> usr/lib`, the dynamic
//! loader's own link), so that a binary finds its loader and libraries at the paths it asks for.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// An archive being built; [`Cpio::finish`] gives its bytes.
#[derive(Default)]
pub struct Cpio {
    out: Vec<u8>,
    ino: u32,
    seen: BTreeSet<PathBuf>,
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

impl Cpio {
    pub fn new() -> Cpio {
        Cpio::default()
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        self.ino += 1;
        let name = name.trim_start_matches('/');
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            1, // nlink
            0, // mtime
            data.len() as u32,
            0, // dev major
            0, // dev minor
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0, // check
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        pad4(&mut self.out);
        self.out.extend_from_slice(data);
        pad4(&mut self.out);
    }

    fn once(&mut self, path: &str) -> bool {
        self.seen.insert(PathBuf::from(path))
    }

    /// A directory and its parents (mode 0755).
    pub fn dir(&mut self, path: &str) {
        let mut cur = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            cur.push('/');
            cur.push_str(part);
            if self.once(&cur.clone()) {
                self.entry(&cur.clone(), S_IFDIR | 0o755, (0, 0), b"");
            }
        }
    }

    fn parent(&mut self, path: &str) {
        if let Some(p) = Path::new(path).parent() {
            self.dir(&p.to_string_lossy());
        }
    }

    /// A regular file with these contents.
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) {
        self.parent(path);
        if self.once(path) {
            self.entry(path, S_IFREG | (mode & 0o7777), (0, 0), data);
        }
    }

    /// A symbolic link `path -> target`.
    pub fn symlink(&mut self, path: &str, target: &str) {
        self.parent(path);
        if self.once(path) {
            self.entry(path, S_IFLNK | 0o777, (0, 0), target.as_bytes());
        }
    }

    /// A character device node.
    pub fn char_dev(&mut self, path: &str, major: u32, minor: u32) {
        self.parent(path);
        if self.once(path) {
            self.entry(path, S_IFCHR | 0o600, (major, minor), b"");
        }
    }

    /// Copies the host file `path` (absolute) to the same path in the archive, with every
    /// symlink met on the way (in the directories and the file itself) recreated as a link.
    pub fn host_path(&mut self, path: &Path) -> Result<(), String> {
        self.host_path_depth(path, 0)
    }

    fn host_path_depth(&mut self, path: &Path, depth: usize) -> Result<(), String> {
        if depth > 16 {
            return Err(format!("{}: too many levels of symlinks", path.display()));
        }
        let mut cur = PathBuf::from("/");
        let comps: Vec<_> = path.components().collect();
        for (i, c) in comps.iter().enumerate() {
            let Component::Normal(part) = c else { continue };
            cur.push(part);
            let meta = fs::symlink_metadata(&cur).map_err(|e| format!("{}: {e}", cur.display()))?;
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&cur).map_err(|e| format!("{}: {e}", cur.display()))?;
                let s = cur.to_string_lossy().into_owned();
                self.symlink(&s, &target.to_string_lossy());
                // Continue with the link's target, then the rest of the path.
                let mut resolved = cur.parent().unwrap_or(Path::new("/")).join(&target);
                for rest in &comps[i + 1..] {
                    resolved.push(rest);
                }
                return self.host_path_depth(&normalize(&resolved), depth + 1);
            }
            if i + 1 == comps.len() {
                let s = cur.to_string_lossy().into_owned();
                if meta.is_dir() {
                    self.dir(&s);
                } else {
                    let data = fs::read(&cur).map_err(|e| format!("{}: {e}", cur.display()))?;
                    self.file(&s, meta.permissions().mode(), &data);
                }
            }
        }
        Ok(())
    }

    /// The archive with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), b"");
        while !self.out.len().is_multiple_of(512) {
            self.out.push(0);
        }
        self.out
    }
}

/// `a/b/../c` -> `a/c` without touching the filesystem.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(x) => out.push(x),
            _ => {}
        }
    }
    out
}
