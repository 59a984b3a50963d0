//! A read-only view of the parts of `/sys` and `/dev` that the block-device graph reads, so that
//! the graph ([`crate::blockdev`]) runs the same on a live system
//! ([`crate::linux::sysroot::RootDir`]) and on a recorded tree ([`Recorded`], the unit tests'
//! input, core/testdata/sysfs).
//!
//! Paths are absolute (`/sys/class/block/vda/dev`) and relative to the view's root.

use crate::mountinfo::Dev;

/// Why a view could not answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeError {
    /// No such file, directory or link.
    NotFound,
    /// The path exists but is not a block device node.
    NotBlockDevice,
    /// A path, a link target or a file is longer than the buffers allow.
    TooLong,
    /// Symbolic links nested too deeply (a loop).
    TooManyLinks,
    /// Text that should be `MAJ:MIN` is not.
    Malformed,
    /// Any other error of the system (an errno value).
    Os(i32),
}

/// Paths the views build (`/sys/class/block/NAME/device/serial` and the like).
pub type PathBuf = heapless::String<256>;

/// What the graph reads. Every method follows symbolic links except where it says not.
pub trait SysTree {
    /// The contents of the file at `path`, read into `buf` (truncated to its size).
    fn read<'b>(&self, path: &str, buf: &'b mut [u8]) -> Result<&'b [u8], TreeError>;
    /// Calls `f` with the name of every entry of the directory at `path` (not `.`, `..`).
    fn list(&self, path: &str, f: &mut dyn FnMut(&str)) -> Result<(), TreeError>;
    /// The target of the symbolic link at `path` (its last component is not followed).
    fn read_link<'b>(&self, path: &str, buf: &'b mut [u8]) -> Result<&'b str, TreeError>;
    /// The device number of the block device node at `path` (stat's `st_rdev`).
    fn block_dev(&self, path: &str) -> Result<Dev, TreeError>;
    /// The device of the filesystem holding the file at `path` (stat's `st_dev`).
    fn file_dev(&self, path: &str) -> Result<Dev, TreeError>;
}

/// Parses `MAJ:MIN` (a trailing newline allowed).
pub fn parse_dev(text: &[u8]) -> Option<Dev> {
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    let colon = text.iter().position(|&b| b == b':')?;
    let num = |s: &[u8]| -> Option<u32> {
        if s.is_empty() {
            return None;
        }
        s.iter().try_fold(0u32, |acc, &b| {
            if b.is_ascii_digit() {
                acc.checked_mul(10)?.checked_add(u32::from(b - b'0'))
            } else {
                None
            }
        })
    };
    Some(Dev {
        major: num(&text[..colon])?,
        minor: num(&text[colon + 1..])?,
    })
}

/// A tree recorded by core/testdata/sysfs/capture.sh: one entry a line, TAB-separated:
/// `D PATH` (directory), `F PATH TEXT` (file; `\\`, `\t`, `\n` escaped), `L PATH TARGET`
/// (symbolic link), `B PATH MAJ:MIN` (block device node), `S PATH MAJ:MIN` (a file's `st_dev`).
/// Lines starting with `#` are comments. Lookups scan the text: no index, no allocation.
#[derive(Clone, Copy, Debug)]
pub struct Recorded<'a> {
    text: &'a str,
}

/// Most symbolic links followed in one lookup (as the kernel's 40).
const MAX_LINKS: usize = 40;

impl<'a> Recorded<'a> {
    /// A view of a recording's text.
    pub fn new(text: &'a str) -> Self {
        Recorded { text }
    }

    /// The entry of kind `kind` at exactly `path`: its third field (empty for `D`).
    fn entry(&self, kind: &str, path: &str) -> Option<&'a str> {
        self.text.lines().find_map(|line| {
            let mut f = line.splitn(3, '\t');
            if f.next()? != kind || f.next()? != path {
                return None;
            }
            Some(f.next().unwrap_or(""))
        })
    }

    fn exists(&self, path: &str) -> bool {
        ["D", "F", "L", "B"]
            .iter()
            .any(|k| self.entry(k, path).is_some())
            || self.has_children(path)
    }

    fn has_children(&self, dir: &str) -> bool {
        self.text.lines().any(|line| {
            let mut f = line.splitn(3, '\t');
            let _ = f.next();
            f.next()
                .and_then(|p| p.strip_prefix(dir))
                .is_some_and(|rest| rest.starts_with('/'))
        })
    }

    /// `path` with its symbolic links resolved (the last one only if `follow_last`).
    pub fn resolve(&self, path: &str, follow_last: bool) -> Result<PathBuf, TreeError> {
        let mut cur = PathBuf::new();
        let mut pending: heapless::String<512> = heapless::String::new();
        pending.push_str(path).map_err(|_| TreeError::TooLong)?;
        let mut links = 0;
        while !pending.is_empty() {
            let trimmed = pending.trim_start_matches('/');
            let (comp, rest) = match trimmed.find('/') {
                Some(i) => (&trimmed[..i], &trimmed[i..]),
                None => (trimmed, ""),
            };
            let mut comp_buf: heapless::String<256> = heapless::String::new();
            comp_buf.push_str(comp).map_err(|_| TreeError::TooLong)?;
            let mut rest_buf: heapless::String<512> = heapless::String::new();
            rest_buf.push_str(rest).map_err(|_| TreeError::TooLong)?;
            pending = rest_buf;
            match comp_buf.as_str() {
                "" | "." => continue,
                ".." => {
                    pop(&mut cur);
                    continue;
                }
                c => {
                    cur.push('/').map_err(|_| TreeError::TooLong)?;
                    cur.push_str(c).map_err(|_| TreeError::TooLong)?;
                }
            }
            let last = pending.trim_matches('/').is_empty();
            if last && !follow_last {
                break;
            }
            if let Some(target) = self.entry("L", &cur) {
                links += 1;
                if links > MAX_LINKS {
                    return Err(TreeError::TooManyLinks);
                }
                if target.starts_with('/') {
                    cur.clear();
                } else {
                    pop(&mut cur);
                }
                let mut next: heapless::String<512> = heapless::String::new();
                next.push_str(target).map_err(|_| TreeError::TooLong)?;
                next.push_str(&pending).map_err(|_| TreeError::TooLong)?;
                pending = next;
            }
        }
        if cur.is_empty() {
            cur.push('/').map_err(|_| TreeError::TooLong)?;
        }
        Ok(cur)
    }
}

fn pop(p: &mut PathBuf) {
    match p.rfind('/') {
        Some(i) => p.truncate(i),
        None => p.clear(),
    }
}

/// Undoes the recording's escapes into `buf`.
fn unescape<'b>(text: &str, buf: &'b mut [u8]) -> Result<&'b [u8], TreeError> {
    let mut n = 0;
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        let out = if b == b'\\' {
            match bytes.next() {
                Some(b'n') => b'\n',
                Some(b't') => b'\t',
                Some(b'\\') => b'\\',
                _ => return Err(TreeError::Malformed),
            }
        } else {
            b
        };
        if n == buf.len() {
            break;
        }
        buf[n] = out;
        n += 1;
    }
    Ok(&buf[..n])
}

impl SysTree for Recorded<'_> {
    fn read<'b>(&self, path: &str, buf: &'b mut [u8]) -> Result<&'b [u8], TreeError> {
        let p = self.resolve(path, true)?;
        let text = self.entry("F", &p).ok_or(TreeError::NotFound)?;
        unescape(text, buf)
    }

    fn list(&self, path: &str, f: &mut dyn FnMut(&str)) -> Result<(), TreeError> {
        let dir = self.resolve(path, true)?;
        if self.entry("D", &dir).is_none() && !self.has_children(&dir) {
            return Err(TreeError::NotFound);
        }
        // Each direct child once: report a name at its first line only.
        for (i, line) in self.text.lines().enumerate() {
            let Some(name) = child_name(line, &dir) else {
                continue;
            };
            let first = self
                .text
                .lines()
                .take(i)
                .all(|l| child_name(l, &dir) != Some(name));
            if first {
                f(name);
            }
        }
        Ok(())
    }

    fn read_link<'b>(&self, path: &str, buf: &'b mut [u8]) -> Result<&'b str, TreeError> {
        let p = self.resolve(path, false)?;
        let target = self.entry("L", &p).ok_or(TreeError::NotFound)?;
        let out = buf.get_mut(..target.len()).ok_or(TreeError::TooLong)?;
        out.copy_from_slice(target.as_bytes());
        core::str::from_utf8(out).map_err(|_| TreeError::Malformed)
    }

    fn block_dev(&self, path: &str) -> Result<Dev, TreeError> {
        let p = self.resolve(path, true)?;
        match self.entry("B", &p) {
            Some(d) => parse_dev(d.as_bytes()).ok_or(TreeError::Malformed),
            None if self.exists(&p) => Err(TreeError::NotBlockDevice),
            None => Err(TreeError::NotFound),
        }
    }

    fn file_dev(&self, path: &str) -> Result<Dev, TreeError> {
        let p = self.resolve(path, true)?;
        let d = self.entry("S", &p).ok_or(TreeError::NotFound)?;
        parse_dev(d.as_bytes()).ok_or(TreeError::Malformed)
    }
}

/// The name of the direct child of `dir` that `line` records (or lies below), if any.
fn child_name<'l>(line: &'l str, dir: &str) -> Option<&'l str> {
    let mut f = line.splitn(3, '\t');
    let kind = f.next()?;
    if kind.starts_with('#') || kind == "S" {
        return None;
    }
    let rest = f.next()?.strip_prefix(dir)?.strip_prefix('/')?;
    let name = rest.split('/').next()?;
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TREE: &str = "# a comment\n\
        D\t/sys/class/block\n\
        L\t/sys/class/block/vda\t../../devices/v/block/vda\n\
        L\t/sys/class/block/vda1\t../../devices/v/block/vda/vda1\n\
        D\t/sys/devices/v/block/vda\n\
        F\t/sys/devices/v/block/vda/dev\t254:0\n\
        F\t/sys/devices/v/block/vda/odd\ta\\tb\\\\c\\nd\n\
        F\t/sys/devices/v/block/vda/vda1/dev\t254:1\n\
        L\t/sys/devices/v/block/vda/device\t../../../v\n\
        F\t/sys/devices/v/serial\tS1\n\
        L\t/sys/loop\t/sys/loop2\n\
        L\t/sys/loop2\t/sys/loop\n\
        B\t/dev/vda\t254:0\n\
        L\t/dev/disk/by-id/virtio-S1\t../../vda\n\
        S\t/mnt/a.img\t254:1\n";

    #[test]
    fn resolves_links_in_every_component() {
        let t = Recorded::new(TREE);
        let mut b = [0u8; 64];
        assert_eq!(
            t.read("/sys/class/block/vda/dev", &mut b),
            Ok(&b"254:0"[..])
        );
        assert_eq!(
            t.read("/sys/class/block/vda1/dev", &mut b),
            Ok(&b"254:1"[..])
        );
        assert_eq!(
            t.read("/sys/class/block/vda/device/serial", &mut b),
            Ok(&b"S1"[..])
        );
        assert_eq!(
            t.read("/sys/class/block/vda/odd", &mut b),
            Ok(&b"a\tb\\c\nd"[..])
        );
        assert_eq!(
            t.read("/sys/class/block/vdb/dev", &mut b),
            Err(TreeError::NotFound)
        );
        assert_eq!(t.read("/sys/loop/x", &mut b), Err(TreeError::TooManyLinks));
        assert_eq!(
            t.read_link("/sys/class/block/vda1", &mut b),
            Ok("../../devices/v/block/vda/vda1")
        );
    }

    #[test]
    fn lists_each_child_once() {
        let t = Recorded::new(TREE);
        let mut names: heapless::Vec<heapless::String<16>, 8> = heapless::Vec::new();
        t.list("/sys/class/block/vda", &mut |n| {
            let _ = names.push(heapless::String::try_from(n).unwrap_or_default());
        })
        .unwrap();
        let names: heapless::Vec<&str, 8> = names.iter().map(|s| s.as_str()).collect();
        assert_eq!(&names[..], &["dev", "odd", "vda1", "device"]);
        assert_eq!(
            t.list("/sys/nothing", &mut |_| {}),
            Err(TreeError::NotFound)
        );
    }

    #[test]
    fn device_nodes_and_file_devices() {
        let t = Recorded::new(TREE);
        let vda = Dev {
            major: 254,
            minor: 0,
        };
        assert_eq!(t.block_dev("/dev/vda"), Ok(vda));
        assert_eq!(t.block_dev("/dev/disk/by-id/virtio-S1"), Ok(vda));
        assert_eq!(t.block_dev("/dev/disk"), Err(TreeError::NotBlockDevice));
        assert_eq!(t.block_dev("/dev/vdz"), Err(TreeError::NotFound));
        assert_eq!(t.file_dev("/mnt/a.img").map(|d| d.minor), Ok(1));
    }

    #[test]
    fn parses_dev_text() {
        assert_eq!(parse_dev(b"7:3\n"), Some(Dev { major: 7, minor: 3 }));
        for bad in [
            &b""[..],
            b":",
            b"7:",
            b":3",
            b"a:b",
            b"7:3:1",
            b"99999999999:1",
        ] {
            assert_eq!(parse_dev(bad), None, "{bad:?}");
        }
    }
}
