//! A borrowed, zero-copy parser of `/proc/self/mountinfo`.
//!
//! The format is described in proc(5) under "/proc/pid/mountinfo". Each line describes one
//! mount, with fields separated by single spaces:
//!
//! ```text
//! 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//! (1)(2) (3)   (4)   (5)      (6)      (7)   (8) (9)   (10)         (11)
//! ```
//!
//! 1. the mount ID;
//! 2. the parent mount's ID;
//! 3. `major:minor`, the `st_dev` of the filesystem;
//! 4. the root of the mount within the filesystem;
//! 5. the mount point, relative to the process's root directory;
//! 6. per-mount options;
//! 7. zero or more optional fields (`shared:N`, `master:N`, `propagate_from:N`, `unbindable`);
//! 8. a lone `-` separator;
//! 9. the filesystem type;
//! 10. the mount source (may be empty, or `none`);
//! 11. per-superblock options.
//!
//! The kernel escapes space, tab, newline and backslash in paths, sources and types as octal
//! `\ooo` sequences (`\040`, `\011`, `\012`, `\134`). Fields that may carry such escapes are
//! returned as [`Escaped`], which decodes lazily and never allocates.
//!
//! Parsing is strict (a line that does not have the shape above is an error, never a guess),
//! never panics, and never allocates: everything borrows from the input text.

use core::fmt;
use core::iter::FusedIterator;

/// A device number, `major:minor`, as in field 3 of a mountinfo line (the `st_dev` of every
/// file on the filesystem, i.e. the identity of its superblock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dev {
    /// The major number.
    pub major: u32,
    /// The minor number.
    pub minor: u32,
}

impl fmt::Display for Dev {
    /// Formats as `major:minor`, e.g. `7:0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// A mountinfo field with its octal escapes (`\040` space, `\011` tab, `\012` newline, `\134`
/// backslash, any `\ooo`) not yet decoded.
///
/// A backslash that is not followed by three octal digits encoding a byte (`\000` to `\377`)
/// is kept literally. Equality (`==`) compares the raw, escaped bytes; use
/// [`Escaped::eq_decoded`] to compare with a decoded path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Escaped<'a>(pub &'a [u8]);

impl<'a> Escaped<'a> {
    /// The raw bytes, escapes included, exactly as they appear in mountinfo.
    pub fn raw(&self) -> &'a [u8] {
        self.0
    }

    /// An iterator over the decoded bytes.
    pub fn bytes(&self) -> EscapedBytes<'a> {
        EscapedBytes { rest: self.0 }
    }

    /// The number of bytes after decoding.
    pub fn decoded_len(&self) -> usize {
        self.bytes().count()
    }

    /// Decodes into `out` and returns the filled part, or `None` if `out` is too small.
    pub fn decode_into<'b>(&self, out: &'b mut [u8]) -> Option<&'b [u8]> {
        let mut n = 0;
        for b in self.bytes() {
            *out.get_mut(n)? = b;
            n += 1;
        }
        out.get(..n)
    }

    /// Whether the decoded bytes equal `other`.
    pub fn eq_decoded(&self, other: &[u8]) -> bool {
        self.bytes().eq(other.iter().copied())
    }

    /// Whether the decoded bytes start with `prefix`.
    pub fn starts_with_decoded(&self, prefix: &[u8]) -> bool {
        let mut decoded = self.bytes();
        prefix.iter().all(|&p| decoded.next() == Some(p))
    }
}

impl fmt::Display for Escaped<'_> {
    /// Writes the decoded bytes; valid UTF-8 is written as is, every byte that is not part of
    /// a valid UTF-8 sequence is written as `\xNN`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut it = self.bytes();
        let mut buf = [0u8; 4];
        let mut n = 0usize;
        loop {
            while n < buf.len() {
                match it.next() {
                    Some(b) => {
                        if let Some(slot) = buf.get_mut(n) {
                            *slot = b;
                        }
                        n += 1;
                    }
                    None => break,
                }
            }
            let Some(&lead) = buf.first().filter(|_| n > 0) else {
                return Ok(());
            };
            let want = utf8_len(lead);
            let mut used = 0;
            if want != 0 && want <= n {
                if let Some(Ok(s)) = buf.get(..want).map(core::str::from_utf8) {
                    f.write_str(s)?;
                    used = want;
                }
            }
            if used == 0 {
                write!(f, "\\x{lead:02x}")?;
                used = 1;
            }
            buf.copy_within(used..n, 0);
            n -= used;
        }
    }
}

/// The length of the UTF-8 sequence a lead byte announces, or 0 for a byte that cannot start
/// one.
fn utf8_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => 0,
    }
}

/// The decoded bytes of an [`Escaped`] field; see [`Escaped::bytes`].
#[derive(Clone, Debug)]
pub struct EscapedBytes<'a> {
    rest: &'a [u8],
}

/// The value of a `\ooo` escape at the start of `s` (a backslash and three octal digits, at
/// most `\377`), if there is one.
fn octal_escape(s: &[u8]) -> Option<u8> {
    match s {
        [b'\\', a @ b'0'..=b'3', b @ b'0'..=b'7', c @ b'0'..=b'7', ..] => {
            Some(((a - b'0') << 6) | ((b - b'0') << 3) | (c - b'0'))
        }
        _ => None,
    }
}

impl Iterator for EscapedBytes<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        if let Some(b) = octal_escape(self.rest) {
            self.rest = self.rest.get(4..).unwrap_or_default();
            return Some(b);
        }
        let (&b, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(b)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = self.rest.len();
        (len.div_ceil(4), Some(len))
    }
}

impl FusedIterator for EscapedBytes<'_> {}

/// One line of mountinfo, borrowed from the text it was parsed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MountEntry<'a> {
    /// Field 1: the unique ID of the mount (may be reused after unmount).
    pub mount_id: u32,
    /// Field 2: the ID of the parent mount. For the root mount of a namespace or a chroot it
    /// is usually the ID of a mount that is not listed.
    pub parent_id: u32,
    /// Field 3: `major:minor`, the `st_dev` of the filesystem.
    pub dev: Dev,
    /// Field 4: the path within the filesystem that forms the root of this mount (`/` unless
    /// it is a bind mount of a subdirectory or a subvolume).
    pub root: Escaped<'a>,
    /// Field 5: the mount point, relative to the reading process's root directory.
    pub mount_point: Escaped<'a>,
    /// Field 6: per-mount options, comma separated (`rw`/`ro`, `nosuid`, `relatime`, ...).
    pub mount_options: &'a [u8],
    /// Field 7: the raw optional fields, space separated, possibly empty. See
    /// [`MountEntry::optional`].
    pub optional_fields: &'a [u8],
    /// Field 9: the filesystem type, `type` or `type.subtype` (e.g. `ext4`, `fuse.sshfs`).
    pub fs_type: Escaped<'a>,
    /// Field 10: the mount source (a device path, `none`, a free-form name, or empty).
    pub source: Escaped<'a>,
    /// Field 11: per-superblock options, comma separated.
    pub super_options: &'a [u8],
}

impl<'a> MountEntry<'a> {
    /// The optional fields, parsed.
    pub fn optional(&self) -> OptionalFields<'a> {
        OptionalFields {
            rest: self.optional_fields,
        }
    }

    /// Whether this mount is read-only: `ro` is one of the comma-separated mount options.
    pub fn mount_read_only(&self) -> bool {
        has_option(self.mount_options, b"ro")
    }

    /// Whether the superblock is read-only: `ro` is one of the comma-separated super options.
    pub fn super_read_only(&self) -> bool {
        has_option(self.super_options, b"ro")
    }
}

/// Whether `name` is a whole item of the comma-separated `options`.
fn has_option(options: &[u8], name: &[u8]) -> bool {
    options.split(|&b| b == b',').any(|o| o == name)
}

/// One optional field (field 7) of a mountinfo line; see proc(5) and the kernel's
/// `Documentation/filesystems/sharedsubtree.rst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionalField<'a> {
    /// `shared:X`: the mount is shared in peer group X.
    Shared(u32),
    /// `master:X`: the mount is a slave of peer group X.
    Master(u32),
    /// `propagate_from:X`: the mount is a slave and receives propagation from peer group X
    /// (the closest dominant peer group under the process's root).
    PropagateFrom(u32),
    /// `unbindable`: the mount is unbindable.
    Unbindable,
    /// Any other tag, raw (for tags a future kernel may add).
    Other(&'a [u8]),
}

impl<'a> OptionalField<'a> {
    /// Parses one optional field. A known tag with a bad number is `None`.
    fn parse(field: &'a [u8]) -> Option<Self> {
        if field == b"unbindable" {
            return Some(Self::Unbindable);
        }
        if let Some(n) = field.strip_prefix(b"shared:") {
            return parse_u32(n).map(Self::Shared);
        }
        if let Some(n) = field.strip_prefix(b"master:") {
            return parse_u32(n).map(Self::Master);
        }
        if let Some(n) = field.strip_prefix(b"propagate_from:") {
            return parse_u32(n).map(Self::PropagateFrom);
        }
        Some(Self::Other(field))
    }
}

/// The optional fields of a [`MountEntry`]; see [`MountEntry::optional`].
///
/// Empty items (repeated spaces) are skipped; a known tag with a bad number (which
/// [`parse_line`] rejects) is returned as [`OptionalField::Other`].
#[derive(Clone, Debug)]
pub struct OptionalFields<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for OptionalFields<'a> {
    type Item = OptionalField<'a>;

    fn next(&mut self) -> Option<OptionalField<'a>> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (field, rest) = split_once(self.rest, b' ');
            self.rest = rest.unwrap_or_default();
            if !field.is_empty() {
                return Some(OptionalField::parse(field).unwrap_or(OptionalField::Other(field)));
            }
        }
    }
}

impl FusedIterator for OptionalFields<'_> {}

/// Splits at the first `sep`: the part before it, and the part after it if there was one.
fn split_once(s: &[u8], sep: u8) -> (&[u8], Option<&[u8]>) {
    match s.iter().position(|&b| b == sep) {
        Some(i) => {
            let (head, tail) = s.split_at(i);
            (head, tail.get(1..))
        }
        None => (s, None),
    }
}

/// A decimal `u32`: one or more ASCII digits, no sign, no overflow.
fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u32, |acc, &b| {
        let digit = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            _ => return None,
        };
        acc.checked_mul(10)?.checked_add(digit)
    })
}

/// What is wrong with a mountinfo line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The line ended before the named field.
    MissingField(&'static str),
    /// The named field is empty (two spaces in a row, or a space at the start).
    EmptyField(&'static str),
    /// The named field is not a decimal `u32`.
    BadNumber(&'static str),
    /// Field 3 is not `major:minor` with two decimal `u32`s.
    BadDevice,
    /// An optional field `shared:`, `master:` or `propagate_from:` without a decimal `u32`.
    BadOptionalField,
    /// No lone `-` field after the mount options.
    MissingSeparator,
    /// More fields after the super options.
    TrailingGarbage,
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingField(name) => write!(f, "missing field '{name}'"),
            Self::EmptyField(name) => write!(f, "empty field '{name}'"),
            Self::BadNumber(name) => write!(f, "field '{name}' is not a decimal number"),
            Self::BadDevice => f.write_str("field 'device' is not major:minor"),
            Self::BadOptionalField => f.write_str("bad optional field"),
            Self::MissingSeparator => f.write_str("missing ' - ' separator"),
            Self::TrailingGarbage => f.write_str("trailing fields after the super options"),
        }
    }
}

/// A malformed mountinfo line: its 1-based line number and what is wrong with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The 1-based line number in the text (empty lines count).
    pub line: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

impl fmt::Display for ParseError {
    /// E.g. `mountinfo line 3: missing field 'fs type'`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mountinfo line {}: {}", self.line, self.kind)
    }
}

/// The space-separated fields of a line, with their offsets.
struct Fields<'a> {
    line: &'a [u8],
    /// The offset of the next field, `None` once the last field was returned.
    pos: Option<usize>,
}

impl<'a> Fields<'a> {
    /// The next field and its start offset.
    fn next_field(&mut self) -> Option<(usize, &'a [u8])> {
        let start = self.pos?;
        let rest = self.line.get(start..)?;
        match rest.iter().position(|&b| b == b' ') {
            Some(i) => {
                self.pos = Some(start + i + 1);
                Some((start, rest.split_at(i).0))
            }
            None => {
                self.pos = None;
                Some((start, rest))
            }
        }
    }

    /// The next field, which must exist and (unless `may_be_empty`) be non-empty.
    fn required(
        &mut self,
        name: &'static str,
        may_be_empty: bool,
    ) -> Result<&'a [u8], ParseErrorKind> {
        match self.next_field() {
            None => Err(ParseErrorKind::MissingField(name)),
            Some((_, f)) if f.is_empty() && !may_be_empty => Err(ParseErrorKind::EmptyField(name)),
            Some((_, f)) => Ok(f),
        }
    }

    /// The next field as a decimal `u32`.
    fn number(&mut self, name: &'static str) -> Result<u32, ParseErrorKind> {
        parse_u32(self.required(name, false)?).ok_or(ParseErrorKind::BadNumber(name))
    }
}

/// Parses one mountinfo line (without its `'\n'`).
///
/// Fields are separated by exactly one space. Every field must be present and non-empty,
/// except the source, which the kernel prints empty for a mount made with an empty source
/// string. Known optional fields must carry a valid number; unknown ones are accepted.
pub fn parse_line(line: &[u8]) -> Result<MountEntry<'_>, ParseErrorKind> {
    let mut fields = Fields { line, pos: Some(0) };
    let mount_id = fields.number("mount id")?;
    let parent_id = fields.number("parent id")?;
    let dev = fields.required("device", false)?;
    let dev = match split_once(dev, b':') {
        (major, Some(minor)) => match (parse_u32(major), parse_u32(minor)) {
            (Some(major), Some(minor)) => Dev { major, minor },
            _ => return Err(ParseErrorKind::BadDevice),
        },
        _ => return Err(ParseErrorKind::BadDevice),
    };
    let root = Escaped(fields.required("root", false)?);
    let mount_point = Escaped(fields.required("mount point", false)?);
    let mount_options = fields.required("mount options", false)?;

    let mut optional_span: Option<(usize, usize)> = None;
    loop {
        let Some((start, field)) = fields.next_field() else {
            return Err(ParseErrorKind::MissingSeparator);
        };
        if field == b"-" {
            break;
        }
        if field.is_empty() {
            return Err(ParseErrorKind::EmptyField("optional fields"));
        }
        if OptionalField::parse(field).is_none() {
            return Err(ParseErrorKind::BadOptionalField);
        }
        let end = start + field.len();
        optional_span = Some(optional_span.map_or((start, end), |(s, _)| (s, end)));
    }
    let optional_fields = match optional_span {
        Some((s, e)) => line.get(s..e).unwrap_or_default(),
        None => &[],
    };

    let fs_type = Escaped(fields.required("fs type", false)?);
    let source = Escaped(fields.required("source", true)?);
    let super_options = fields.required("super options", false)?;
    if fields.next_field().is_some() {
        return Err(ParseErrorKind::TrailingGarbage);
    }
    Ok(MountEntry {
        mount_id,
        parent_id,
        dev,
        root,
        mount_point,
        mount_options,
        optional_fields,
        fs_type,
        source,
        super_options,
    })
}

/// The whole text of a mountinfo file, parsed lazily line by line.
#[derive(Clone, Copy, Debug)]
pub struct MountInfo<'a> {
    text: &'a [u8],
}

impl<'a> MountInfo<'a> {
    /// Wraps the text of a mountinfo file (as read from `/proc/self/mountinfo`).
    pub fn new(text: &'a [u8]) -> Self {
        Self { text }
    }

    /// The entries in mount order. Empty lines (e.g. after the final `'\n'`) are skipped; a
    /// malformed line yields an error and parsing continues with the next line.
    pub fn entries(&self) -> Entries<'a> {
        Entries {
            rest: Some(self.text),
            line: 0,
        }
    }

    /// The number of entries, or the first error.
    pub fn validate(&self) -> Result<usize, ParseError> {
        self.entries().try_fold(0usize, |n, e| e.map(|_| n + 1))
    }

    /// The entry with this mount id.
    ///
    /// `Some(Err(_))` if the line whose first field is this mount id is malformed; malformed
    /// lines that do not start with this mount id are skipped. `None` if there is no such line.
    pub fn find(&self, mount_id: u32) -> Option<Result<MountEntry<'a>, ParseError>> {
        self.locate(mount_id).map(|(_, e)| e)
    }

    /// The 0-based index, among the items of [`MountInfo::entries`] (errors included), of the
    /// item [`MountInfo::find`] returns for this mount id.
    pub fn position(&self, mount_id: u32) -> Option<usize> {
        self.locate(mount_id).map(|(i, _)| i)
    }

    fn locate(&self, mount_id: u32) -> Option<(usize, Result<MountEntry<'a>, ParseError>)> {
        let mut it = self.entries();
        let mut index = 0;
        loop {
            let (line, number) = it.next_line()?;
            let item = parse_line(line).map_err(|kind| ParseError { line: number, kind });
            let matches = match &item {
                Ok(e) => e.mount_id == mount_id,
                Err(_) => parse_u32(split_once(line, b' ').0) == Some(mount_id),
            };
            if matches {
                return Some((index, item));
            }
            index += 1;
        }
    }
}

/// The entries of a [`MountInfo`]; see [`MountInfo::entries`].
#[derive(Clone, Debug)]
pub struct Entries<'a> {
    /// The text not yet consumed; `None` once the end was reached.
    rest: Option<&'a [u8]>,
    /// The number of lines consumed so far.
    line: usize,
}

impl<'a> Entries<'a> {
    /// The next non-empty line and its 1-based number.
    fn next_line(&mut self) -> Option<(&'a [u8], usize)> {
        loop {
            let (line, tail) = split_once(self.rest?, b'\n');
            self.rest = tail;
            self.line += 1;
            if !line.is_empty() {
                return Some((line, self.line));
            }
        }
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<MountEntry<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (line, number) = self.next_line()?;
        Some(parse_line(line).map_err(|kind| ParseError { line: number, kind }))
    }
}

impl FusedIterator for Entries<'_> {}

#[cfg(test)]
mod tests {
    //! Recorded samples live in `core/testdata/mountinfo/`. Unless said otherwise they were
    //! recorded on a Debian 12 VM running Linux 6.18 (as root), by building a mount tree under
    //! a fresh `mktemp -d` directory inside a private mount namespace (`unshare --mount
    //! --propagation private`) and reading `/proc/self/mountinfo` from a process `chroot`ed
    //! into that tree, so that mount points read like a real host's (`/srv/data`, not
    //! `/tmp/mi-XXXX/root/srv/data`). The "host" root in each tree is an ext4 loop image
    //! (`/dev/loop0`, 7:0) with sysfs, proc, devtmpfs (`udev`), devpts, `/run`,
    //! `/dev/shm` and `/run/lock` mounted the way systemd does, and everything made
    //! `rshared` as systemd does, hence a `shared:N` on nearly every line. The mount the tree
    //! hangs from (id 43) is outside the chroot and so not shown, like the parent of `/` on a
    //! real host. The texts are unedited kernel output.

    extern crate std;

    use super::*;
    use std::format;
    use std::string::String;
    use std::vec::Vec;

    /// A bind mount tree on one ext4 loop fs (7:1) at `/srv/data`: subdirectory binds
    /// (`/var/www`, `/var/lib/postgresql`, in the same peer group `shared:9`), a read-only
    /// bind (`ro` mount over a `rw` superblock), a slave (`master:9`), a private bind (no
    /// optional field), an unbindable one, a file bind (`/etc/motd`), and
    /// `master:10 propagate_from:9` (a slave of a slave whose master is outside the chroot;
    /// that hidden mount, id 78, is not shown).
    const BIND_MOUNTS: &[u8] = include_bytes!("../testdata/mountinfo/bind_mounts.txt");
    /// One xfs loop device (7:1) mounted twice (`/srv/a`, `/mnt/b`: two mount(2) calls, one
    /// superblock), plus a read-only bind of it (`/mnt/c`: `ro` mount, `rw` superblock), and
    /// an ext4 loop device mounted read-only (`ro` superblock).
    const SAME_DEVICE: &[u8] = include_bytes!("../testdata/mountinfo/same_device_two_paths.txt");
    /// A btrfs loop image with subvolumes `@data` (mounted with `compress=zstd:3`), `@home`, a
    /// read-only snapshot `@snapshots/data-2024-05-01`, and the top level (`subvolid=5`). All
    /// share the anonymous device 0:44, which is not the loop device's 7:1.
    const BTRFS: &[u8] = include_bytes!("../testdata/mountinfo/btrfs_subvolumes.txt");
    /// What a process inside a Docker container sees, rebuilt by hand the way runc does it
    /// (Docker itself could not run on the VM): an overlay root with Docker's
    /// `/var/lib/docker/overlay2` layer paths, proc, a tmpfs `/dev`, devpts, read-only sysfs
    /// and cgroup2, mqueue, `shm`, file binds of `resolv.conf`, `hostname` and `hosts` from
    /// the Docker host's ext4 root fs (7:0), read-only binds of `/proc/{bus,fs,irq,sys}`,
    /// read-only tmpfs over `/proc/acpi` and `/sys/firmware`, and `/dev/null` (root `/null`
    /// on the container's `/dev` tmpfs) bound over `/proc/{interrupts,keys,timer_list}`. No
    /// propagation (rprivate), the root's parent (64) is outside the container.
    const OVERLAY_CONTAINER: &[u8] = include_bytes!("../testdata/mountinfo/overlay_container.txt");
    /// tmpfs mounts at paths containing a space, a tab, a newline and a backslash (escaped
    /// `\040`, `\011`, `\012`, `\134`), at a UTF-8 path (`café`, not escaped) and at a path
    /// with a raw 0xff byte; sources with a space and a backslash; an ext4 fs at a path with
    /// spaces and a bind of its subdirectory `sub<TAB>dir` (an escaped root); and a tmpfs
    /// mounted with an empty source string (mount(2) with `""`), which the kernel prints as
    /// an empty field.
    const ESCAPED: &[u8] = include_bytes!("../testdata/mountinfo/escaped_spaces.txt");
    /// tmpfs `/srv/n` > ext4 `/srv/n/a` (7:1) > xfs `/srv/n/a/b` (7:2) > tmpfs
    /// `/srv/n/a/b/c`, a sibling tmpfs `/srv/n/a/sibling`, and two filesystems stacked on
    /// `/srv/stack` (7:1 again, then 7:3 over it, which hides it).
    const NESTED: &[u8] = include_bytes!("../testdata/mountinfo/nested_mounts.txt");
    /// Loop devices stacked on each other: loop1 (7:1, backed by an image on the host) is
    /// ext4 at `/srv/images`; loop2 (7:2) is backed by `/srv/images/vm-disk.img` and holds an
    /// xfs at `/mnt/vm`; loop3 (7:3) is backed by `/mnt/vm/inner.img` and holds an ext4 mounted
    /// read-only at `/mnt/inner`.
    const LOOP_DEVICES: &[u8] = include_bytes!("../testdata/mountinfo/loop_devices.txt");
    /// A systemd host: besides the common context, securityfs, cgroup2, pstore (source
    /// `none`), bpf, the autofs automount point of binfmt_misc (source `systemd-1`, with a
    /// real pipe), mqueue, hugetlbfs, debugfs, tracefs, fusectl, two read-only ramfs
    /// credential directories, `/boot` (ext4), `/home` (xfs) and `/run/user/1000`. Mounted by
    /// hand in systemd's order and with its options (systemd is not PID 1 on the VM).
    const HOST_TYPICAL: &[u8] = include_bytes!("../testdata/mountinfo/host_typical.txt");
    /// Written by hand from recorded lines: valid lines (including one with an empty source,
    /// as recorded in `escaped_spaces.txt`) mixed with broken ones, and one empty line.
    const MALFORMED: &[u8] = include_bytes!("../testdata/mountinfo/malformed.txt");

    const RECORDED: &[(&str, &[u8])] = &[
        ("bind_mounts", BIND_MOUNTS),
        ("same_device_two_paths", SAME_DEVICE),
        ("btrfs_subvolumes", BTRFS),
        ("overlay_container", OVERLAY_CONTAINER),
        ("escaped_spaces", ESCAPED),
        ("nested_mounts", NESTED),
        ("loop_devices", LOOP_DEVICES),
        ("host_typical", HOST_TYPICAL),
    ];

    /// A byte string in a table of expectations.
    type B = &'static [u8];

    fn dev(major: u32, minor: u32) -> Dev {
        Dev { major, minor }
    }

    fn get<'a>(text: &'a [u8], id: u32) -> MountEntry<'a> {
        match MountInfo::new(text).find(id) {
            Some(Ok(e)) => e,
            other => panic!("mount {id}: {other:?}"),
        }
    }

    fn by_mount_point<'a>(text: &'a [u8], path: &[u8]) -> MountEntry<'a> {
        let mut found = MountInfo::new(text)
            .entries()
            .map(|e| e.unwrap())
            .filter(|e| e.mount_point.eq_decoded(path));
        let e = found
            .next()
            .unwrap_or_else(|| panic!("no mount at {path:?}"));
        e
    }

    fn optional(e: &MountEntry<'_>) -> Vec<OptionalField<'static>> {
        e.optional()
            .map(|o| match o {
                OptionalField::Other(_) => panic!("unexpected {o:?}"),
                OptionalField::Shared(n) => OptionalField::Shared(n),
                OptionalField::Master(n) => OptionalField::Master(n),
                OptionalField::PropagateFrom(n) => OptionalField::PropagateFrom(n),
                OptionalField::Unbindable => OptionalField::Unbindable,
            })
            .collect()
    }

    fn decoded(e: Escaped<'_>) -> Vec<u8> {
        e.bytes().collect()
    }

    /// Rebuilds a line from its parsed fields.
    fn unparse(e: &MountEntry<'_>) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(format!("{} {} {} ", e.mount_id, e.parent_id, e.dev).as_bytes());
        for f in [
            e.root.raw(),
            b" ",
            e.mount_point.raw(),
            b" ",
            e.mount_options,
            b" ",
        ] {
            v.extend_from_slice(f);
        }
        if !e.optional_fields.is_empty() {
            v.extend_from_slice(e.optional_fields);
            v.push(b' ');
        }
        for f in [
            b"- ",
            e.fs_type.raw(),
            b" ",
            e.source.raw(),
            b" ",
            e.super_options,
        ] {
            v.extend_from_slice(f);
        }
        v
    }

    #[test]
    fn proc5_example() {
        let e = parse_line(
            b"36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue",
        )
        .unwrap();
        assert_eq!((e.mount_id, e.parent_id, e.dev), (36, 35, dev(98, 0)));
        assert_eq!(e.root, Escaped(b"/mnt1"));
        assert_eq!(e.mount_point.raw(), b"/mnt2");
        assert_eq!(e.mount_options, b"rw,noatime");
        assert_eq!(e.optional_fields, b"master:1");
        assert_eq!(optional(&e), [OptionalField::Master(1)]);
        assert_eq!(
            (e.fs_type.raw(), e.source.raw()),
            (&b"ext3"[..], &b"/dev/root"[..])
        );
        assert_eq!(e.super_options, b"rw,errors=continue");
        assert!(!e.mount_read_only() && !e.super_read_only());
        assert_eq!(format!("{}", e.dev), "98:0");
    }

    #[test]
    fn every_recorded_sample_parses_and_round_trips() {
        for (name, text) in RECORDED {
            let info = MountInfo::new(text);
            let n = info.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
            let lines: Vec<&[u8]> = text
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .collect();
            assert_eq!(n, lines.len(), "{name}");
            assert!(text.ends_with(b"\n"), "{name}");
            for (i, (entry, line)) in info.entries().zip(&lines).enumerate() {
                let entry = entry.unwrap();
                assert_eq!(unparse(&entry), *line, "{name}");
                assert_eq!(info.position(entry.mount_id), Some(i), "{name}");
                assert_eq!(info.find(entry.mount_id), Some(Ok(entry)), "{name}");
                assert!(entry.mount_point.starts_with_decoded(b"/"), "{name}");
            }
        }
    }

    #[test]
    fn common_host_context() {
        for (name, text) in RECORDED.iter().filter(|(n, _)| *n != "overlay_container") {
            let root = get(text, 63);
            assert_eq!((root.parent_id, root.dev), (43, dev(7, 0)), "{name}");
            assert!(root.mount_point.eq_decoded(b"/") && root.root.eq_decoded(b"/"));
            assert_eq!(root.super_options, b"rw,errors=remount-ro");
            assert_eq!(optional(&root), [OptionalField::Shared(1)]);
            assert_eq!(MountInfo::new(text).find(43), None, "{name}");
            let proc_ = by_mount_point(text, b"/proc");
            assert_eq!(
                (proc_.fs_type, proc_.source),
                (Escaped(b"proc"), Escaped(b"proc"))
            );
            assert_eq!(proc_.mount_options, b"rw,nosuid,nodev,noexec,relatime");
            let udev = get(text, 66);
            assert_eq!((udev.dev, udev.source), (dev(0, 6), Escaped(b"udev")));
            assert_eq!(get(text, 67).parent_id, 66, "{name}");
        }
    }

    #[test]
    fn bind_mounts() {
        let info = MountInfo::new(BIND_MOUNTS);
        assert_eq!(info.validate(), Ok(17));
        let data = get(BIND_MOUNTS, 71);
        assert_eq!((data.parent_id, data.dev), (63, dev(7, 1)));
        assert!(data.mount_point.eq_decoded(b"/srv/data") && data.root.eq_decoded(b"/"));
        assert_eq!(
            (data.fs_type, data.source),
            (Escaped(b"ext4"), Escaped(b"/dev/loop1"))
        );
        assert_eq!(data.mount_options, b"rw,noatime");
        assert_eq!(optional(&data), [OptionalField::Shared(9)]);

        let www = get(BIND_MOUNTS, 72);
        assert!(www.root.eq_decoded(b"/www") && www.mount_point.eq_decoded(b"/var/www"));
        assert_eq!(optional(&www), [OptionalField::Shared(9)]);
        assert!(get(BIND_MOUNTS, 73).root.eq_decoded(b"/db"));

        let ro = get(BIND_MOUNTS, 74);
        assert!(ro.mount_point.eq_decoded(b"/mnt/data-ro"));
        assert!(ro.mount_read_only() && !ro.super_read_only());
        assert_eq!(ro.mount_options, b"ro,noatime");

        assert_eq!(optional(&get(BIND_MOUNTS, 75)), [OptionalField::Master(9)]);
        let private = get(BIND_MOUNTS, 76);
        assert_eq!(private.optional_fields, b"");
        assert_eq!(private.optional().next(), None);
        let unbindable = get(BIND_MOUNTS, 77);
        assert!(unbindable.root.eq_decoded(b"/www/html"));
        assert_eq!(optional(&unbindable), [OptionalField::Unbindable]);

        assert_eq!(info.find(78), None);
        let from = get(BIND_MOUNTS, 79);
        assert_eq!(from.optional_fields, b"master:10 propagate_from:9");
        assert_eq!(
            optional(&from),
            [OptionalField::Master(10), OptionalField::PropagateFrom(9)]
        );
        assert_eq!(info.position(79), Some(15));

        let motd = get(BIND_MOUNTS, 80);
        assert!(motd.root.eq_decoded(b"/www/motd") && motd.mount_point.eq_decoded(b"/etc/motd"));

        let on_data = info
            .entries()
            .filter(|e| e.unwrap().dev == dev(7, 1))
            .count();
        assert_eq!(on_data, 9);
    }

    #[test]
    fn same_device_two_paths() {
        assert_eq!(MountInfo::new(SAME_DEVICE).validate(), Ok(12));
        let (a, b, c) = (
            get(SAME_DEVICE, 71),
            get(SAME_DEVICE, 72),
            get(SAME_DEVICE, 73),
        );
        for e in [a, b, c] {
            assert_eq!((e.dev, e.fs_type), (dev(7, 1), Escaped(b"xfs")));
            assert!(e.root.eq_decoded(b"/") && e.source.eq_decoded(b"/dev/loop1"));
            assert_eq!(
                e.super_options,
                b"rw,inode64,logbufs=8,logbsize=32k,noquota"
            );
            assert!(!e.super_read_only());
        }
        assert!(a.mount_point.eq_decoded(b"/srv/a") && b.mount_point.eq_decoded(b"/mnt/b"));
        assert_eq!(optional(&a), [OptionalField::Shared(9)]);
        assert_eq!(optional(&b), [OptionalField::Shared(10)]);
        assert!(!a.mount_read_only() && !b.mount_read_only());
        assert!(c.mount_read_only() && c.mount_point.eq_decoded(b"/mnt/c"));
        let ext = get(SAME_DEVICE, 74);
        assert_eq!(ext.dev, dev(7, 2));
        assert!(ext.mount_read_only() && ext.super_read_only());
        assert_eq!(ext.super_options, b"ro");
    }

    #[test]
    fn btrfs_subvolumes() {
        assert_eq!(MountInfo::new(BTRFS).validate(), Ok(12));
        let expect: [(u32, B, B, B); 4] = [
            (72, b"/@data", b"/srv/data", b"subvolid=256,subvol=/@data"),
            (73, b"/@home", b"/home", b"subvolid=257,subvol=/@home"),
            (
                74,
                b"/@snapshots/data-2024-05-01",
                b"/srv/snap",
                b"subvolid=260,subvol=/@snapshots/data-2024-05-01",
            ),
            (75, b"/", b"/srv/pool", b"subvolid=5,subvol=/"),
        ];
        for (id, root, mount_point, tail) in expect {
            let e = get(BTRFS, id);
            assert_eq!((e.parent_id, e.dev), (63, dev(0, 44)));
            assert!(e.root.eq_decoded(root) && e.mount_point.eq_decoded(mount_point));
            assert_eq!(
                (e.fs_type, e.source),
                (Escaped(b"btrfs"), Escaped(b"/dev/loop1"))
            );
            assert!(e.super_options.starts_with(b"rw,compress=zstd:3,"));
            assert!(e.super_options.ends_with(tail));
            assert!(!e.mount_read_only() && !e.super_read_only());
        }
        assert_eq!(MountInfo::new(BTRFS).find(71), None);
    }

    #[test]
    fn overlay_container() {
        let info = MountInfo::new(OVERLAY_CONTAINER);
        assert_eq!(info.validate(), Ok(20));
        assert!(info
            .entries()
            .all(|e| e.unwrap().optional_fields.is_empty()));
        let root = get(OVERLAY_CONTAINER, 69);
        assert_eq!((root.parent_id, root.dev), (64, dev(0, 39)));
        assert_eq!(info.find(64), None);
        assert!(root.mount_point.eq_decoded(b"/"));
        assert_eq!(
            (root.fs_type, root.source),
            (Escaped(b"overlay"), Escaped(b"overlay"))
        );
        assert!(root
            .super_options
            .starts_with(b"rw,lowerdir=/var/lib/docker/overlay2/l/5TFH7Q3CWNYOJ6CKZ2XQ4ESL7M:"));
        assert!(root.super_options.ends_with(b"/work,uuid=on"));

        let hosts = by_mount_point(OVERLAY_CONTAINER, b"/etc/hosts");
        assert_eq!((hosts.mount_id, hosts.dev), (79, dev(7, 0)));
        assert!(hosts.root.eq_decoded(
            b"/var/lib/docker/containers/3f2b9c1e7a4d5f60812c9e3b4a5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f/hosts"
        ));
        let shm = by_mount_point(OVERLAY_CONTAINER, b"/dev/shm");
        assert_eq!(
            (shm.fs_type, shm.source),
            (Escaped(b"tmpfs"), Escaped(b"shm"))
        );
        assert_eq!(shm.parent_id, 71);
        let cgroup = by_mount_point(OVERLAY_CONTAINER, b"/sys/fs/cgroup");
        assert_eq!(
            (cgroup.fs_type, cgroup.source),
            (Escaped(b"cgroup2"), Escaped(b"cgroup"))
        );
        assert!(cgroup.mount_read_only() && !cgroup.super_read_only());

        let proc_ = by_mount_point(OVERLAY_CONTAINER, b"/proc");
        let proc_sys = by_mount_point(OVERLAY_CONTAINER, b"/proc/sys");
        assert_eq!(
            (proc_sys.dev, proc_sys.parent_id),
            (proc_.dev, proc_.mount_id)
        );
        assert!(proc_sys.root.eq_decoded(b"/sys") && proc_sys.mount_read_only());
        let dev_tmpfs = by_mount_point(OVERLAY_CONTAINER, b"/dev");
        for masked in [&b"/proc/interrupts"[..], b"/proc/keys", b"/proc/timer_list"] {
            let m = by_mount_point(OVERLAY_CONTAINER, masked);
            assert_eq!(m.dev, dev_tmpfs.dev);
            assert!(m.root.eq_decoded(b"/null") && !m.mount_read_only());
        }
        for masked in [&b"/proc/acpi"[..], b"/sys/firmware"] {
            let m = by_mount_point(OVERLAY_CONTAINER, masked);
            assert!(m.mount_read_only() && m.super_read_only());
            assert_eq!(m.super_options, b"ro");
        }
    }

    #[test]
    fn escaped_spaces() {
        assert_eq!(MountInfo::new(ESCAPED).validate(), Ok(17));
        let expect: [(u32, &[u8], &[u8]); 4] = [
            (71, b"/mnt/with\\040space", b"/mnt/with space"),
            (72, b"/mnt/tab\\011dir", b"/mnt/tab\tdir"),
            (73, b"/mnt/new\\012line", b"/mnt/new\nline"),
            (74, b"/mnt/back\\134slash", b"/mnt/back\\slash"),
        ];
        for (id, raw, plain) in expect {
            let e = get(ESCAPED, id);
            assert_eq!(e.mount_point.raw(), raw);
            assert_eq!(decoded(e.mount_point), plain);
            assert!(e.mount_point.eq_decoded(plain) && !e.mount_point.eq_decoded(raw));
            assert_eq!(e.mount_point.decoded_len(), plain.len());
            let mut buf = [0u8; 64];
            assert_eq!(e.mount_point.decode_into(&mut buf), Some(plain));
            let mut small = [0u8; 8];
            assert_eq!(e.mount_point.decode_into(&mut small), None);
            assert_eq!(format!("{}", e.mount_point).as_bytes(), plain);
        }
        assert!(get(ESCAPED, 71).source.eq_decoded(b"my tmpfs"));
        assert_eq!(get(ESCAPED, 71).source.raw(), b"my\\040tmpfs");
        assert!(get(ESCAPED, 74).source.eq_decoded(b"back\\slash"));
        assert!(get(ESCAPED, 72)
            .mount_point
            .starts_with_decoded(b"/mnt/tab\t"));
        assert!(!get(ESCAPED, 72)
            .mount_point
            .starts_with_decoded(b"/mnt/tab\\"));

        let cafe = get(ESCAPED, 75);
        assert_eq!(cafe.mount_point.raw(), "/mnt/café".as_bytes());
        assert_eq!(format!("{}", cafe.mount_point), "/mnt/café");
        let raw = get(ESCAPED, 76);
        assert_eq!(raw.mount_point.raw(), b"/mnt/raw\xffbyte");
        assert_eq!(format!("{}", raw.mount_point), "/mnt/raw\\xffbyte");

        let spacey = get(ESCAPED, 77);
        assert!(spacey.mount_point.eq_decoded(b"/srv/dir with space"));
        let bound = get(ESCAPED, 78);
        assert_eq!(bound.dev, spacey.dev);
        assert!(bound.root.eq_decoded(b"/sub\tdir"));
        assert!(bound.mount_point.eq_decoded(b"/mnt/bound here"));

        let nosource = get(ESCAPED, 79);
        assert!(nosource.mount_point.eq_decoded(b"/mnt/nosource"));
        assert_eq!(nosource.source, Escaped(b""));
        assert_eq!(nosource.fs_type, Escaped(b"tmpfs"));
        assert_eq!(nosource.super_options, b"rw,size=1024k");
    }

    #[test]
    fn escape_edge_cases() {
        let cases: [(&[u8], &[u8]); 10] = [
            (b"", b""),
            (b"\\", b"\\"),
            (b"a\\", b"a\\"),
            (b"\\04", b"\\04"),
            (b"\\04x", b"\\04x"),
            (b"\\0401", b" 1"),
            (b"\\777", b"\\777"),
            (b"\\377\\000", b"\xff\x00"),
            (b"\\\\040", b"\\ "),
            (b"\\x20\\9\\1a", b"\\x20\\9\\1a"),
        ];
        for (raw, plain) in cases {
            let e = Escaped(raw);
            assert_eq!(decoded(e), plain, "{raw:?}");
            assert_eq!(e.decoded_len(), plain.len());
            assert!(e.eq_decoded(plain) && e.starts_with_decoded(plain));
            assert!(!e.eq_decoded(b"zz") && !e.starts_with_decoded(&[plain, b"z"].concat()));
            let mut buf = [0u8; 16];
            assert_eq!(e.decode_into(&mut buf), Some(plain));
        }
        assert_eq!(Escaped(b"").decode_into(&mut []), Some(&b""[..]));
        assert_eq!(Escaped(b"a").decode_into(&mut []), None);
        // Display: invalid and truncated UTF-8 as \xNN, valid sequences as is.
        let shown = |raw: &[u8]| format!("{}", Escaped(raw));
        assert_eq!(shown(b"\\303\\251t\\303\\251"), "été");
        assert_eq!(shown(b"a\xc3"), "a\\xc3");
        assert_eq!(
            shown(b"\xc3(\xf0\x9f\x98\x80\xe2\x82"),
            "\\xc3(😀\\xe2\\x82"
        );
        assert_eq!(shown(b"\xed\xa0\x80"), "\\xed\\xa0\\x80");
    }

    #[test]
    fn nested_mounts() {
        assert_eq!(MountInfo::new(NESTED).validate(), Ok(15));
        let chain: [(u32, u32, Dev, B, B); 5] = [
            (71, 63, dev(0, 44), b"/srv/n", b"tmpfs"),
            (72, 71, dev(7, 1), b"/srv/n/a", b"ext4"),
            (73, 72, dev(7, 2), b"/srv/n/a/b", b"xfs"),
            (74, 73, dev(0, 45), b"/srv/n/a/b/c", b"tmpfs"),
            (75, 72, dev(0, 46), b"/srv/n/a/sibling", b"tmpfs"),
        ];
        for (id, parent, d, mount_point, fs_type) in chain {
            let e = get(NESTED, id);
            assert_eq!((e.parent_id, e.dev), (parent, d));
            assert!(e.mount_point.eq_decoded(mount_point) && e.fs_type.eq_decoded(fs_type));
        }
        let (under, over) = (get(NESTED, 76), get(NESTED, 77));
        assert_eq!(under.mount_point, over.mount_point);
        assert_eq!((under.parent_id, over.parent_id), (63, 76));
        assert_eq!((under.dev, over.dev), (dev(7, 1), dev(7, 3)));
        let info = MountInfo::new(NESTED);
        assert!(info.position(76) < info.position(77));
    }

    #[test]
    fn loop_devices() {
        assert_eq!(MountInfo::new(LOOP_DEVICES).validate(), Ok(11));
        let expect: [(u32, Dev, B, B, B); 3] = [
            (71, dev(7, 1), b"/srv/images", b"ext4", b"/dev/loop1"),
            (72, dev(7, 2), b"/mnt/vm", b"xfs", b"/dev/loop2"),
            (73, dev(7, 3), b"/mnt/inner", b"ext4", b"/dev/loop3"),
        ];
        for (id, d, mount_point, fs_type, source) in expect {
            let e = get(LOOP_DEVICES, id);
            assert_eq!((e.parent_id, e.dev), (63, d));
            assert!(e.mount_point.eq_decoded(mount_point));
            assert!(e.fs_type.eq_decoded(fs_type) && e.source.eq_decoded(source));
        }
        let inner = get(LOOP_DEVICES, 73);
        assert!(inner.mount_read_only() && inner.super_read_only());
        assert!(!get(LOOP_DEVICES, 72).super_read_only());
    }

    #[test]
    fn host_typical() {
        let info = MountInfo::new(HOST_TYPICAL);
        assert_eq!(info.validate(), Ok(23));
        for (i, e) in info.entries().enumerate() {
            let e = e.unwrap();
            assert_eq!(e.mount_id, 63 + i as u32);
            let Some(OptionalField::Shared(group)) = e.optional().next() else {
                panic!("{e:?}");
            };
            assert_eq!(group, 1 + i as u32);
        }
        let types: Vec<String> = info
            .entries()
            .map(|e| format!("{}", e.unwrap().fs_type))
            .collect();
        let expect = [
            "ext4",
            "sysfs",
            "proc",
            "devtmpfs",
            "devpts",
            "tmpfs",
            "tmpfs",
            "tmpfs",
            "securityfs",
            "cgroup2",
            "pstore",
            "bpf",
            "autofs",
            "mqueue",
            "hugetlbfs",
            "debugfs",
            "tracefs",
            "fusectl",
            "ramfs",
            "ramfs",
            "ext4",
            "xfs",
            "tmpfs",
        ];
        assert_eq!(types, expect);

        let binfmt = get(HOST_TYPICAL, 75);
        assert_eq!(
            (binfmt.parent_id, binfmt.source),
            (65, Escaped(b"systemd-1"))
        );
        assert!(binfmt.mount_point.eq_decoded(b"/proc/sys/fs/binfmt_misc"));
        assert!(binfmt.super_options.starts_with(b"rw,fd="));
        assert_eq!(get(HOST_TYPICAL, 73).source, Escaped(b"none"));
        let cgroup = by_mount_point(HOST_TYPICAL, b"/sys/fs/cgroup");
        assert_eq!((cgroup.parent_id, cgroup.dev), (64, dev(0, 38)));
        for id in [81, 82] {
            let cred = get(HOST_TYPICAL, id);
            assert!(cred.mount_point.starts_with_decoded(b"/run/credentials/"));
            assert!(cred.mount_read_only() && cred.super_read_only());
            assert_eq!(cred.super_options, b"ro,mode=700");
        }
        let home = by_mount_point(HOST_TYPICAL, b"/home");
        assert_eq!((home.dev, home.fs_type), (dev(7, 2), Escaped(b"xfs")));
        assert_eq!(by_mount_point(HOST_TYPICAL, b"/boot").dev, dev(7, 1));
        let user = by_mount_point(HOST_TYPICAL, b"/run/user/1000");
        assert_eq!((user.mount_id, user.parent_id), (85, 68));
        assert_eq!(
            info.entries()
                .filter(|e| e.unwrap().mount_read_only())
                .count(),
            2,
            "only the credential ramfs mounts are read-only"
        );
    }

    #[test]
    fn malformed_lines_are_errors_and_parsing_continues() {
        use ParseErrorKind::*;
        enum Want {
            Ok(u32),
            Err(ParseErrorKind),
        }
        let want: [(usize, Want); 20] = [
            (1, Want::Ok(63)),
            (2, Want::Ok(64)),
            (3, Want::Err(MissingSeparator)),
            (4, Want::Ok(66)),
            (5, Want::Err(MissingSeparator)),
            (6, Want::Err(BadDevice)),
            (7, Want::Err(BadNumber("mount id"))),
            (9, Want::Err(EmptyField("root"))),
            (10, Want::Ok(75)),
            (11, Want::Err(MissingField("fs type"))),
            (12, Want::Err(MissingField("source"))),
            (13, Want::Err(MissingField("super options"))),
            (14, Want::Err(TrailingGarbage)),
            (15, Want::Err(BadDevice)),
            (16, Want::Err(MissingField("device"))),
            (17, Want::Err(BadOptionalField)),
            (18, Want::Err(BadNumber("parent id"))),
            (19, Want::Err(EmptyField("mount options"))),
            (20, Want::Ok(84)),
            (21, Want::Ok(85)),
        ];
        let info = MountInfo::new(MALFORMED);
        let got: Vec<_> = info.entries().collect();
        assert_eq!(got.len(), want.len());
        for (got, (line, want)) in got.iter().zip(want) {
            match (got, want) {
                (Ok(e), Want::Ok(id)) => assert_eq!(e.mount_id, id, "line {line}"),
                (Err(e), Want::Err(kind)) => assert_eq!(*e, ParseError { line, kind }),
                (got, _) => panic!("line {line}: {got:?}"),
            }
        }
        assert_eq!(
            info.validate(),
            Err(ParseError {
                line: 3,
                kind: MissingSeparator
            })
        );
        let e = get(MALFORMED, 84);
        assert_eq!((e.source, e.fs_type), (Escaped(b""), Escaped(b"tmpfs")));
        assert_eq!(get(MALFORMED, 75).optional_fields, b"master:9");
        // find: a malformed line is reported for its own (readable) mount id only.
        let bad_device = ParseError {
            line: 6,
            kind: BadDevice,
        };
        assert_eq!(info.find(72), Some(Err(bad_device)));
        assert_eq!(info.position(72), Some(5));
        assert_eq!(info.find(73), None);
        assert_eq!(info.position(75), Some(8));
        assert_eq!(info.position(85), Some(19));
        assert_eq!(info.find(1), None);
        assert_eq!(
            format!(
                "{}",
                ParseError {
                    line: 11,
                    kind: MissingField("fs type")
                }
            ),
            "mountinfo line 11: missing field 'fs type'"
        );
        for kind in [
            EmptyField("root"),
            BadNumber("mount id"),
            BadDevice,
            BadOptionalField,
            MissingSeparator,
            TrailingGarbage,
        ] {
            assert!(!format!("{kind}").is_empty());
        }
    }

    #[test]
    fn strict_field_splitting() {
        use ParseErrorKind::*;
        let cases: [(&[u8], ParseErrorKind); 14] = [
            (b"", EmptyField("mount id")),
            (b" 1 2 3:4 / / rw - ext4 x rw", EmptyField("mount id")),
            (b"1", MissingField("parent id")),
            (b"1 2 3:4 / / rw - ext4 x rw ", TrailingGarbage),
            (
                b"1 2 3:4 / / rw  - ext4 x rw",
                EmptyField("optional fields"),
            ),
            (
                b"1 2 3:4 / / rw shared:1  - ext4 x rw",
                EmptyField("optional fields"),
            ),
            (b"1 2 3:4 / / rw - ext4 x ", EmptyField("super options")),
            (b"1 2 3:4 / / rw -  x rw", EmptyField("fs type")),
            (b"1 2 3: / / rw - ext4 x rw", BadDevice),
            (b"1 2 :4 / / rw - ext4 x rw", BadDevice),
            (b"1 2 3:4:5 / / rw - ext4 x rw", BadDevice),
            (b"1 2 +3:4 / / rw - ext4 x rw", BadDevice),
            (
                b"4294967296 2 3:4 / / rw - ext4 x rw",
                BadNumber("mount id"),
            ),
            (b"1 2 3:4 / / rw master: - ext4 x rw", BadOptionalField),
        ];
        for (line, kind) in cases {
            assert_eq!(parse_line(line), Err(kind), "{line:?}");
        }
        let e = parse_line(b"4294967295 0 4294967295:0 / / ro,x - t - ro").unwrap();
        assert_eq!((e.mount_id, e.dev.major), (u32::MAX, u32::MAX));
        assert_eq!(e.source, Escaped(b"-"));
        assert!(e.mount_read_only() && e.super_read_only());
        let e =
            parse_line(b"1 2 3:4 / / rw,xro,ro2 foo:1 shared:7 unbindable - t s rox,r,o").unwrap();
        assert!(!e.mount_read_only() && !e.super_read_only());
        assert_eq!(
            e.optional().collect::<Vec<_>>(),
            [
                OptionalField::Other(b"foo:1"),
                OptionalField::Shared(7),
                OptionalField::Unbindable
            ]
        );
        // The optional field iterator is total on hand-made entries too.
        let odd = MountEntry {
            optional_fields: b" shared:x  master:3 ",
            ..e
        };
        assert_eq!(
            odd.optional().collect::<Vec<_>>(),
            [OptionalField::Other(b"shared:x"), OptionalField::Master(3)]
        );
        // Text without a final newline, and runs of empty lines.
        let text = b"\n\n1 2 3:4 / / rw - t s rw\n\n\n5 1 3:4 / /x rw - t s rw";
        let info = MountInfo::new(text);
        assert_eq!(info.validate(), Ok(2));
        assert_eq!(info.position(5), Some(1));
        assert_eq!(MountInfo::new(b"").validate(), Ok(0));
        assert_eq!(MountInfo::new(b"\n\n").entries().count(), 0);
        let bad = MountInfo::new(b"\n\nx\n");
        assert_eq!(
            bad.entries().next(),
            Some(Err(ParseError {
                line: 3,
                kind: BadNumber("mount id")
            }))
        );
    }

    /// Checks the invariants of a successful parse: every field is a part of the line, every
    /// accessor works, and the line rebuilt from the fields parses to the same entry.
    fn check_entry(line: &[u8], e: &MountEntry<'_>) {
        let range = line.as_ptr_range();
        for f in [
            e.root.raw(),
            e.mount_point.raw(),
            e.mount_options,
            e.fs_type.raw(),
            e.source.raw(),
            e.super_options,
        ] {
            let r = f.as_ptr_range();
            assert!(r.start >= range.start && r.end <= range.end);
            assert!(!f.contains(&b' '));
        }
        for f in [e.root, e.mount_point, e.fs_type, e.source] {
            let mut buf = [0u8; 1024];
            let d = f.decode_into(&mut buf).unwrap();
            assert_eq!(d.len(), f.decoded_len());
            assert!(f.eq_decoded(d) && f.starts_with_decoded(d));
            let _ = format!("{f}");
        }
        let _ = (
            e.optional().count(),
            e.mount_read_only(),
            e.super_read_only(),
        );
        // Equal up to leading zeros in the numbers, which are accepted.
        assert_eq!(parse_line(&unparse(e)).as_ref(), Ok(e));
    }

    #[test]
    fn no_panic_on_prefixes_and_mutations() {
        const INTERESTING: &[u8] = b" -:\\0379a,\n\t\x00\x7f\x80\xc3\xff";
        let mut lines: Vec<&[u8]> = Vec::new();
        for (_, text) in RECORDED.iter().chain([&("malformed", MALFORMED)]) {
            lines.extend(text.split(|&b| b == b'\n'));
        }
        let mut ok = 0usize;
        let mut buf = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            for n in 0..=line.len() {
                let prefix = &line[..n];
                if let Ok(e) = parse_line(prefix) {
                    check_entry(prefix, &e);
                    ok += 1;
                }
            }
            // All 256 byte values at every position for every 16th line, a few bytes for all.
            let all: Vec<u8> = (0..=255).collect();
            let values = if i % 16 == 0 { &all[..] } else { INTERESTING };
            for pos in 0..line.len() {
                for &v in values {
                    buf.clear();
                    buf.extend_from_slice(line);
                    buf[pos] = v;
                    if let Ok(e) = parse_line(&buf) {
                        check_entry(&buf, &e);
                    }
                }
                // and the byte removed
                buf.clear();
                buf.extend_from_slice(&line[..pos]);
                buf.extend_from_slice(&line[pos + 1..]);
                if let Ok(e) = parse_line(&buf) {
                    check_entry(&buf, &e);
                }
            }
        }
        assert!(ok > 100);
        // Whole texts, mutated, through the line splitter and `find`.
        for (_, text) in [("malformed", MALFORMED), ("escaped", ESCAPED)] {
            for pos in (0..text.len()).step_by(5) {
                for &v in INTERESTING {
                    buf.clear();
                    buf.extend_from_slice(text);
                    buf[pos] = v;
                    let info = MountInfo::new(&buf);
                    let n = info.entries().count();
                    assert!(n <= buf.len());
                    let _ = (info.validate(), info.find(75), info.position(79));
                }
            }
        }
    }
}
