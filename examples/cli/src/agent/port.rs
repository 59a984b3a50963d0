//! Where the host talks to the agent: a virtio-serial port (a character device) or a unix
//! socket the agent listens on (one connection at a time, as qemu-ga).
//!
//! A virtio-serial port stays open for the agent's whole life. When nobody is connected on
//! the host side the kernel reports hang-up (`POLLHUP`, reads return 0) until the host
//! connects again; the agent then waits a little (as qemu-ga: 100 ms) and reads on, so a host
//! that disconnects and reconnects (libvirt restarting, a migration) finds it answering.
//! Writes never block the agent for long: an answer the host does not take within
//! [`WRITE_LIMIT`] is dropped and logged, and so at once is an answer to a host that hung up
//! (a port without a host refuses writes with `EAGAIN` and polls as `POLLHUP`, never
//! writable: waiting spun the CPU, and the answer went to the next host).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};

/// The port's name, and its udev link.
pub const PORT_NAME: &str = "org.qemu.guest_agent.0";
pub const DEFAULT_PATH: &str = "/dev/virtio-ports/org.qemu.guest_agent.0";
/// How long one answer may wait for the host to read.
pub const WRITE_LIMIT: Duration = Duration::from_secs(5);
/// How long to wait after a hang-up before reading the port again.
pub const HANGUP_PAUSE_NS: u64 = 100_000_000;

/// Finds the character device of a virtio-serial port: `path` if it exists; otherwise, when
/// the last component of `path` is a port name (as in `/dev/virtio-ports/NAME`, which only
/// udev creates), the `/dev/vportNpM` whose `SYSFS/class/virtio-ports/*/name` holds that
/// name.
pub fn find_device(path: &Path, sysfs: &Path) -> Result<PathBuf, String> {
    if path.exists() {
        return Ok(path.to_path_buf());
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let class = sysfs.join("class/virtio-ports");
    let entries = std::fs::read_dir(&class).map_err(|e| {
        format!(
            "'{}' does not exist, and {} cannot be read ({e}): is this a virtual machine with a virtio-serial port named {name}? (give the device with --path, or use --unix-listen)",
            path.display(),
            class.display()
        )
    })?;
    let mut found: Vec<String> = Vec::new();
    for e in entries.flatten() {
        let port = e.file_name().to_string_lossy().into_owned();
        let Ok(n) = std::fs::read_to_string(e.path().join("name")) else {
            continue;
        };
        if n.trim_end() == name {
            return Ok(Path::new("/dev").join(port));
        }
        found.push(format!("{port} ({})", n.trim_end()));
    }
    Err(format!(
        "'{}' does not exist, and no virtio-serial port is named '{name}' in {} (ports: {}); add a virtserialport named {PORT_NAME} to the VM, or give --path or --unix-listen",
        path.display(),
        class.display(),
        if found.is_empty() { "none".to_string() } else { found.join(", ") }
    ))
}

/// What one read brought.
pub enum Read {
    Data(usize),
    /// Nothing to read now.
    Nothing,
    /// The host went away (socket closed, or the port reports hang-up).
    HungUp,
}

pub enum Port {
    Device {
        fd: OwnedFd,
        path: PathBuf,
        hung_up_at: Option<Instant>,
    },
    Socket {
        listener: UnixListener,
        client: Option<UnixStream>,
        path: PathBuf,
    },
}

impl Port {
    /// Opens a virtio-serial port's device.
    pub fn device(path: &Path) -> io::Result<Port> {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: open with a NUL-terminated path and flags; a negative return is an error.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: open returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Port::Device {
            fd,
            path: path.to_path_buf(),
            hung_up_at: None,
        })
    }

    /// Listens on a unix socket (a stale socket file is replaced).
    pub fn listen(path: &Path) -> io::Result<Port> {
        use std::os::unix::fs::FileTypeExt;
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        Ok(Port::Socket {
            listener,
            client: None,
            path: path.to_path_buf(),
        })
    }

    pub fn describe(&self) -> String {
        match self {
            Port::Device { path, .. } => format!("virtio-serial port {}", path.display()),
            Port::Socket { path, .. } => format!("unix socket {}", path.display()),
        }
    }

    /// The descriptor to poll for input (the listener while no client is connected), or
    /// `None` while a hung-up port rests.
    pub fn poll_fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            Port::Device { fd, hung_up_at, .. } => match hung_up_at {
                Some(t) if t.elapsed() < Duration::from_nanos(HANGUP_PAUSE_NS) => None,
                _ => Some(fd.as_fd()),
            },
            Port::Socket {
                listener, client, ..
            } => Some(match client {
                Some(c) => c.as_fd(),
                None => listener.as_fd(),
            }),
        }
    }

    /// Whether a new connection was just accepted (the caller resets its parser).
    pub fn accept(&mut self) -> Option<String> {
        let Port::Socket {
            listener, client, ..
        } = self
        else {
            return None;
        };
        if client.is_some() {
            return None;
        }
        match listener.accept() {
            Ok((s, _)) => {
                let _ = s.set_nonblocking(true);
                *client = Some(s);
                Some("host connected".into())
            }
            Err(_) => None,
        }
    }

    /// Reads what is there.
    pub fn read(&mut self, buf: &mut [u8]) -> Read {
        let fd = match self {
            Port::Device { fd, .. } => fd.as_raw_fd(),
            Port::Socket {
                client: Some(c), ..
            } => c.as_raw_fd(),
            Port::Socket { client: None, .. } => return Read::Nothing,
        };
        // SAFETY: reads at most buf.len() bytes into a valid buffer from our descriptor.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            if let Port::Device { hung_up_at, .. } = self {
                *hung_up_at = None;
            }
            return Read::Data(n as usize);
        }
        let e = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        if n < 0 && (e == libc::EAGAIN || e == libc::EINTR) {
            return Read::Nothing;
        }
        // EOF or an error: a virtio port without a host reads 0 (a pty whose master is
        // closed EIO), a socket whose host left 0 or ECONNRESET. Said once per hang-up.
        if self.hung_up() {
            Read::HungUp
        } else {
            Read::Nothing
        }
    }

    /// The host is gone (POLLHUP, EOF): a port rests a while, a socket drops its client.
    /// True the first time (for the log).
    pub fn hung_up(&mut self) -> bool {
        match self {
            Port::Device { hung_up_at, .. } => {
                let first = hung_up_at.is_none();
                *hung_up_at = Some(Instant::now());
                first
            }
            Port::Socket { client, .. } => {
                let was = client.is_some();
                *client = None;
                was
            }
        }
    }

    /// Writes one answer; gives up after `limit` (or if the host is gone) and says so.
    pub fn write_all(&mut self, mut data: &[u8], limit: Duration) -> Result<(), String> {
        let fd = match self {
            Port::Device { fd, .. } => fd.as_raw_fd(),
            Port::Socket {
                client: Some(c), ..
            } => c.as_raw_fd(),
            Port::Socket { client: None, .. } => return Err("the host is not connected".into()),
        };
        let start = Instant::now();
        while !data.is_empty() {
            // SAFETY: writes at most data.len() bytes from a valid slice to our descriptor.
            let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
            if n > 0 {
                data = &data[n as usize..];
                continue;
            }
            let e = io::Error::last_os_error();
            let raw = e.raw_os_error().unwrap_or(0);
            if raw != libc::EAGAIN && raw != libc::EINTR {
                return Err(format!("cannot write the answer: {e}"));
            }
            let left = limit.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(format!(
                    "the host did not read the answer within {} ms; dropped the rest",
                    limit.as_millis()
                ));
            }
            // SAFETY: fd stays open for this call; borrowed only for the poll.
            let b = unsafe { BorrowedFd::borrow_raw(fd) };
            let mut p = [PollFd::from_borrowed_fd(b, PollFlags::OUT)];
            let ts = rustix::time::Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            let _ = rustix::event::poll(&mut p, Some(&ts));
            // A virtio-serial port whose host is gone takes no writes (EAGAIN) and polls as
            // hung up, never writable: waiting would spin until the limit, and the answer
            // would reach the next host, which did not ask for it. Dropped at once.
            let ev = p[0].revents();
            if !ev.contains(PollFlags::OUT) && ev.intersects(PollFlags::HUP | PollFlags::ERR) {
                return Err("the host hung up; the answer is dropped".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_port_by_name_in_a_recorded_sysfs() {
        let dir = std::env::temp_dir().join(format!("quiesce-vports-{}", std::process::id()));
        let class = dir.join("class/virtio-ports");
        for (port, name) in [("vport1p1", "org.qemu.other"), ("vport2p1", PORT_NAME)] {
            std::fs::create_dir_all(class.join(port)).unwrap();
            std::fs::write(class.join(port).join("name"), format!("{name}\n")).unwrap();
        }
        assert_eq!(
            find_device(Path::new(DEFAULT_PATH), &dir).unwrap(),
            Path::new("/dev/vport2p1")
        );
        let e = find_device(Path::new("/dev/virtio-ports/nope"), &dir).unwrap_err();
        assert!(
            e.contains("no virtio-serial port is named 'nope'")
                && e.contains("vport1p1 (org.qemu.other)"),
            "{e}"
        );
        let e = find_device(Path::new(DEFAULT_PATH), &dir.join("missing")).unwrap_err();
        assert!(e.contains("--unix-listen"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
