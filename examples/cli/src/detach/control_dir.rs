//! The control directory of detached sessions: `/run/quiesce` (or `$QUIESCE_RUN_DIR`), the
//! same directory that holds the session records.
//!
//! It is opened one component at a time from `/` with `O_NOFOLLOW | O_DIRECTORY`, so a symbolic
//! link anywhere on the way is refused, and every directory is checked on its descriptor
//! (`fstat`): it must belong to root and not be writable by group or others (a sticky
//! directory such as `/tmp` is accepted above the last component). Everything inside is then
//! reached relative to that descriptor: files are opened with `O_NOFOLLOW` and checked (owner,
//! mode, type) on the opened descriptor, written to a temporary name and renamed, and the
//! control socket is bound and connected by its name inside the directory (after `fchdir`), so
//! the path is never resolved again from `/`. `/run` is a tmpfs: nothing here is written to a
//! filesystem quiesce freezes.

use std::ffi::OsStr;
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use quiesce::runtime::{run_dir, Failure, RUN_DIR_VAR};
use quiesce::Status;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat, CWD};
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

/// The longest file quiesce reads from the directory.
const READ_LIMIT: u64 = 4 << 20;

/// The verified control directory, held open.
pub struct ControlDir {
    /// Its path, for messages.
    pub path: PathBuf,
    fd: OwnedFd,
}

fn unsafe_dir(path: &Path, why: String) -> Failure {
    Failure {
        status: Status::Permission,
        message: format!(
            "the control directory {} is not safe: {why}; quiesce refuses to use it (nothing was frozen or thawed). It must be a real directory (no symbolic link on the way), owned by root, not writable by group or others{}",
            path.display(),
            if std::env::var_os(RUN_DIR_VAR).is_some() {
                format!(" (it comes from ${RUN_DIR_VAR})")
            } else {
                String::new()
            }
        ),
        errno: 0,
    }
}

/// Checks a directory's owner and mode. `last`: the control directory itself (no sticky
/// exception).
fn check_dir(st: &Stat, last: bool) -> Result<(), String> {
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Err("it is not a directory".into());
    }
    if st.st_uid != 0 {
        return Err(format!("it belongs to uid {}, not root", st.st_uid));
    }
    let mode = st.st_mode & 0o7777;
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && (last || !sticky) {
        return Err(format!(
            "it is writable by {} (mode {:o})",
            if mode & 0o002 != 0 {
                "everyone"
            } else {
                "its group"
            },
            mode
        ));
    }
    Ok(())
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

impl ControlDir {
    /// Opens (and with `create`, makes: mode 0700) the control directory and checks it and
    /// every directory above it. `Ok(None)`: it does not exist and `create` is false.
    pub fn open(create: bool) -> Result<Option<ControlDir>, Failure> {
        let path = run_dir();
        if !path.is_absolute() {
            return Err(unsafe_dir(&path, "it is not an absolute path".into()));
        }
        let mut dir = rustix::fs::open(
            "/",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| unsafe_dir(&path, format!("cannot open /: {e}")))?;
        let comps: Vec<&OsStr> = path
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n),
                _ => None,
            })
            .collect();
        if path
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        {
            return Err(unsafe_dir(&path, "it contains `.` or `..`".into()));
        }
        let mut sofar = PathBuf::from("/");
        for (i, name) in comps.iter().enumerate() {
            sofar.push(name);
            let last = i + 1 == comps.len();
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let next = match rustix::fs::openat(&dir, *name, flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&dir, *name, Mode::from_raw_mode(0o700)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => {
                            return Err(Failure {
                                status: Status::Internal,
                                message: format!("cannot create {}: {e}", sofar.display()),
                                errno: e.raw_os_error(),
                            })
                        }
                    }
                    rustix::fs::openat(&dir, *name, flags, Mode::empty()).map_err(|e| {
                        unsafe_dir(&path, format!("cannot open {}: {e}", sofar.display()))
                    })?
                }
                Err(Errno::NOENT) => return Ok(None),
                Err(Errno::LOOP | Errno::NOTDIR) => {
                    return Err(unsafe_dir(
                        &path,
                        format!("{} is a symbolic link or not a directory", sofar.display()),
                    ))
                }
                Err(e) => {
                    return Err(unsafe_dir(
                        &path,
                        format!("cannot open {}: {e}", sofar.display()),
                    ))
                }
            };
            let st = rustix::fs::fstat(&next).map_err(|e| {
                unsafe_dir(&path, format!("cannot examine {}: {e}", sofar.display()))
            })?;
            check_dir(&st, last)
                .map_err(|why| unsafe_dir(&path, format!("{}: {why}", sofar.display())))?;
            dir = next;
        }
        Ok(Some(ControlDir { path, fd: dir }))
    }

    /// The directory's descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Checks `name` inside the directory without following a link: of type `kind`, owned by
    /// root, not accessible to group or others (`private`) or not writable by them.
    pub fn check_entry(&self, name: &str, kind: FileType, private: bool) -> Result<(), String> {
        let st = rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| format!("{}/{name}: {e}", self.path.display()))?;
        check_entry_stat(&st, kind, private)
            .map_err(|why| format!("{}/{name}: {why}", self.path.display()))
    }

    /// Reads `name` (a regular file of root's, not writable by others, not a link); `Ok(None)`
    /// if it does not exist.
    pub fn read(&self, name: &str) -> Result<Option<String>, String> {
        let fd = match rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(format!("{}/{name}: {e}", self.path.display())),
        };
        let st =
            rustix::fs::fstat(&fd).map_err(|e| format!("{}/{name}: {e}", self.path.display()))?;
        check_entry_stat(&st, FileType::RegularFile, false)
            .map_err(|why| format!("{}/{name}: {why}", self.path.display()))?;
        let mut text = String::new();
        std::fs::File::from(fd)
            .take(READ_LIMIT)
            .read_to_string(&mut text)
            .map_err(|e| format!("{}/{name}: {e}", self.path.display()))?;
        Ok(Some(text))
    }

    /// Writes `name` atomically (a temporary file of mode 0600, then a rename).
    pub fn write(&self, name: &str, text: &str) -> io::Result<()> {
        let tmp = format!(".{name}.tmp");
        match rustix::fs::unlinkat(&self.fd, tmp.as_str(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(e.into()),
        }
        let fd = rustix::fs::openat(
            &self.fd,
            tmp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        let mut f = std::fs::File::from(fd);
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        rustix::fs::renameat(&self.fd, tmp.as_str(), &self.fd, name)?;
        Ok(())
    }

    /// Removes `name`; one that is gone already is fine.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The names in the directory that end in `suffix` (not hidden ones), sorted.
    pub fn list(&self, suffix: &str) -> io::Result<Vec<String>> {
        let fd = rustix::fs::openat(
            &self.fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut out = Vec::new();
        for entry in rustix::fs::Dir::read_from(&fd)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && name.ends_with(suffix) {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Runs `f` with the working directory inside the control directory, then goes back.
    fn inside<T>(&self, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        let back = rustix::fs::openat(
            CWD,
            ".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok();
        rustix::process::fchdir(&self.fd)?;
        let r = f();
        match &back {
            Some(b) => {
                let _ = rustix::process::fchdir(b);
            }
            None => {
                let _ = rustix::process::chdir("/");
            }
        }
        r
    }

    /// Creates the listening control socket `name` (mode 0600 with the umask of 077 the
    /// controller sets; checked afterwards), non-blocking, close-on-exec.
    pub fn listen(&self, name: &str) -> io::Result<OwnedFd> {
        let sock = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            None,
        )?;
        let addr = SocketAddrUnix::new(name)?;
        self.inside(|| rustix::net::bind(&sock, &addr).map_err(io::Error::from))?;
        rustix::fs::chmodat(&self.fd, name, Mode::from_raw_mode(0o600), AtFlags::empty())?;
        self.check_entry(name, FileType::Socket, true)
            .map_err(io::Error::other)?;
        rustix::net::listen(&sock, 8)?;
        Ok(sock)
    }

    /// Connects to the control socket `name` after checking it (a socket of root's, mode
    /// 0600, not a link).
    pub fn connect(&self, name: &str) -> Result<OwnedFd, String> {
        self.check_entry(name, FileType::Socket, true)?;
        let sock = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| format!("cannot make a socket: {e}"))?;
        let addr = SocketAddrUnix::new(name).map_err(|e| format!("{name}: {e}"))?;
        self.inside(|| rustix::net::connect(&sock, &addr).map_err(io::Error::from))
            .map_err(|e| {
                format!(
                    "cannot connect to {}/{name}: {e} (errno {})",
                    self.path.display(),
                    errno(&e)
                )
            })?;
        Ok(sock)
    }
}

fn check_entry_stat(st: &Stat, kind: FileType, private: bool) -> Result<(), String> {
    let ft = FileType::from_raw_mode(st.st_mode);
    if ft != kind {
        return Err(format!("it is {}, not {}", type_name(ft), type_name(kind)));
    }
    if st.st_uid != 0 {
        return Err(format!("it belongs to uid {}, not root", st.st_uid));
    }
    let mode = st.st_mode & 0o7777;
    let forbidden = if private { 0o077 } else { 0o022 };
    if mode & forbidden != 0 {
        return Err(format!("its mode {mode:o} lets others in"));
    }
    Ok(())
}

fn type_name(ft: FileType) -> &'static str {
    match ft {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Socket => "a socket",
        FileType::Fifo => "a FIFO",
        _ => "a device or unknown file",
    }
}

/// Whether `id` has the form of a session id (`PID-START`, digits only): it names files in
/// the control directory, so nothing else is accepted.
pub fn valid_id(id: &str) -> bool {
    let Some((a, b)) = id.split_once('-') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|c| c.is_ascii_digit());
    digits(a) && digits(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_digits_dash_digits() {
        assert!(valid_id("123-456"));
        for bad in ["", "123", "-1", "1-", "../1-2", "1-2/x", "1-2.sock", "a-1"] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
