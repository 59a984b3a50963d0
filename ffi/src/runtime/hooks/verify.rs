//! Authenticity of a hook, checked before anything runs.
//!
//! A hook runs as root, so whoever can change it, or any directory on its path, is root. The
//! rules: the file and every directory from `/` down to it belong to uid 0 and are not
//! writable by their group or by others; the file is a regular file with an execute bit; no
//! component of the path is a symbolic link. The path is walked one component at a time with
//! `O_PATH | O_NOFOLLOW`, each step relative to the descriptor of the verified directory above
//! it, and every check is made on the opened descriptor (`fstat`), so nothing can be swapped
//! between the check and the use: the hook is later executed through the very descriptor that
//! was checked.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{fstat, openat, FileType, Mode, OFlags, Stat, CWD};
use rustix::io::Errno;

/// A path that passed the checks, and the `O_PATH` descriptor they were made on.
#[derive(Debug)]
pub(crate) struct Verified {
    /// The absolute path, as walked.
    pub path: PathBuf,
    /// An `O_PATH` descriptor of the file or directory itself.
    pub fd: OwnedFd,
}

/// What the last component must be.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Directory,
    Executable,
}

/// Verifies `path` (made absolute against the working directory) and returns its descriptor.
/// `Err` is one sentence naming the offending path, what is wrong, and the fix.
pub(crate) fn verify(path: &Path, kind: Kind) -> Result<Verified, String> {
    let abs = absolute(path)?;
    let root = openat(
        CWD,
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot open / to check the hook {}: {e}", abs.display()))?;
    check_owner_and_mode(&stat(&root, Path::new("/"))?, Path::new("/"), &abs)?;
    let names: Vec<&OsStr> = abs
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let Some((last, dirs)) = names.split_last() else {
        return Err(format!(
            "the hook path {} names the root directory, not a hook",
            abs.display()
        ));
    };
    let mut walked = PathBuf::from("/");
    let mut dir = root;
    for name in dirs {
        walked.push(name);
        let fd = step(dir.as_fd(), name, &walked, &abs)?;
        let st = stat(&fd, &walked)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(format!(
                "{} (on the path of the hook {}) is not a directory",
                walked.display(),
                abs.display()
            ));
        }
        check_owner_and_mode(&st, &walked, &abs)?;
        dir = fd;
    }
    walked.push(last);
    let fd = step(dir.as_fd(), last, &walked, &abs)?;
    let st = stat(&fd, &walked)?;
    let file_type = FileType::from_raw_mode(st.st_mode);
    match kind {
        Kind::Directory if file_type != FileType::Directory => {
            return Err(format!(
                "the hook directory {} is not a directory",
                walked.display()
            ))
        }
        Kind::Executable if file_type != FileType::RegularFile => {
            return Err(format!(
                "the hook {} is not a regular file ({}); a hook must be an executable file",
                walked.display(),
                type_name(file_type)
            ))
        }
        Kind::Executable if st.st_mode & 0o111 == 0 => {
            return Err(format!(
            "the hook {} is not executable (mode {:04o}); make it executable with `chmod 0755 {}`",
            walked.display(),
            st.st_mode & 0o7777,
            walked.display()
        ))
        }
        _ => {}
    }
    check_owner_and_mode(&st, &walked, &abs)?;
    Ok(Verified { path: walked, fd })
}

/// The absolute, lexically clean form of `path`; `..` is refused (it could climb out of a
/// checked directory through a mount or a symbolic link walked earlier).
fn absolute(path: &Path) -> Result<PathBuf, String> {
    if path.as_os_str().is_empty() {
        return Err("an empty hook path was given; name an absolute path".into());
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(format!(
            "the hook path {} contains `..`; give the path without it",
            path.display()
        ));
    }
    if path.is_absolute() {
        return Ok(path.components().collect());
    }
    let cwd = std::env::current_dir().map_err(|e| {
        format!(
            "the hook path {} is relative and the working directory cannot be read ({e}); give an absolute path",
            path.display()
        )
    })?;
    Ok(cwd.join(path).components().collect())
}

/// Opens `name` in `dir` without following a symbolic link, as `O_PATH`.
fn step(dir: BorrowedFd<'_>, name: &OsStr, walked: &Path, hook: &Path) -> Result<OwnedFd, String> {
    let fd = openat(
        dir,
        name.as_bytes(),
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::NOENT => format!(
            "{} does not exist{}",
            walked.display(),
            of_hook(walked, hook)
        ),
        e => format!(
            "cannot open {}{}: {e}",
            walked.display(),
            of_hook(walked, hook)
        ),
    })?;
    let st = stat(&fd, walked)?;
    if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
        return Err(format!(
            "{} is a symbolic link{}; hooks are never reached through symbolic links: name the real path (e.g. `realpath {}`) and keep the hook there",
            walked.display(),
            of_hook(walked, hook),
            walked.display()
        ));
    }
    Ok(fd)
}

fn of_hook(walked: &Path, hook: &Path) -> String {
    if walked == hook {
        String::new()
    } else {
        format!(" (on the path of the hook {})", hook.display())
    }
}

fn stat(fd: &OwnedFd, path: &Path) -> Result<Stat, String> {
    fstat(fd).map_err(|e| format!("cannot stat {}: {e}", path.display()))
}

/// Owned by root and not writable by group or others.
fn check_owner_and_mode(st: &Stat, path: &Path, hook: &Path) -> Result<(), String> {
    let what = if path == hook {
        String::new()
    } else {
        format!(" (on the path of the hook {})", hook.display())
    };
    if st.st_uid != 0 {
        return Err(format!(
            "{}{what} belongs to uid {}, not root: a hook runs as root, so it and every directory above it must belong to root (`chown root {}`) or it is refused",
            path.display(),
            st.st_uid,
            path.display()
        ));
    }
    let writable = st.st_mode & 0o022;
    if writable != 0 {
        let who = match writable {
            0o020 => "its group",
            0o002 => "everyone",
            _ => "its group and everyone",
        };
        let fix = if st.st_mode & 0o1000 != 0 {
            "keep hooks out of shared directories like this one: put them in a directory that only root can write, e.g. /etc/quiesce/hooks.d".to_string()
        } else {
            format!(
                "remove the write permission (`chmod go-w {}`) or move the hook to a directory that only root can write",
                path.display()
            )
        };
        return Err(format!(
            "{}{what} is writable by {who} (mode {:04o}): anyone who can change it could run commands as root; {fix}",
            path.display(),
            st.st_mode & 0o7777,
        ));
    }
    Ok(())
}

fn type_name(t: FileType) -> &'static str {
    match t {
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        _ => "not a regular file",
    }
}

/// Reopens a verified directory for reading its entries (`.` of the verified descriptor).
pub(crate) fn open_for_listing(dir: &Verified) -> Result<OwnedFd, String> {
    openat(
        &dir.fd,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot read the hook directory {}: {e}", dir.path.display()))
}

/// Whether `st` is a regular file with an execute bit.
pub(crate) fn is_executable_file(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::RegularFile && st.st_mode & 0o111 != 0
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`.
pub(crate) fn stat_entry(dir: BorrowedFd<'_>, name: &OsStr) -> Option<Stat> {
    rustix::fs::statat(dir, name.as_bytes(), rustix::fs::AtFlags::SYMLINK_NOFOLLOW).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_components_are_refused() {
        let e = absolute(Path::new("/etc/../tmp/x")).unwrap_err();
        assert!(e.contains("`..`"), "{e}");
        assert!(absolute(Path::new("")).is_err());
        assert_eq!(
            absolute(Path::new("/etc//quiesce/./hooks")).unwrap(),
            PathBuf::from("/etc/quiesce/hooks")
        );
    }

    #[test]
    fn tmp_is_refused_as_world_writable() {
        // /tmp is world-writable (sticky) on every Linux system we run on.
        if let Ok(m) = std::fs::metadata("/tmp") {
            use std::os::unix::fs::PermissionsExt;
            if m.permissions().mode() & 0o002 != 0 {
                let e = verify(Path::new("/tmp"), Kind::Directory).unwrap_err();
                assert!(e.contains("writable by"), "{e}");
                assert!(e.contains("/tmp"), "{e}");
            }
        }
    }

    #[test]
    fn root_path_is_not_a_hook() {
        assert!(verify(Path::new("/"), Kind::Executable).is_err());
    }
}
