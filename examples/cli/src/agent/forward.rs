//! Relaying the commands that are not about freezing to a qemu-ga behind the agent
//! (`qemu-ga -m unix-listen -p PATH`), so that a guest keeps qemu-ga's other commands (exec,
//! files, network, shutdown) while quiesce owns the freeze.
//!
//! One connection, kept open (qemu-ga serves one at a time). Each new connection starts with
//! qemu-ga's own resynchronisation (`0xFF`, then `guest-sync-delimited` with a fresh id; what
//! comes before the matching answer is dropped), because qemu-ga keeps its parser's state
//! across connections. Answers are relayed byte for byte. A command that qemu-ga answers only
//! on failure (`guest-shutdown`, `guest-suspend-*`) waits [`NO_ANSWER_WAIT`] for an error.
//! An answer that does not come within [`ANSWER_LIMIT`] is given up: the connection is closed
//! (so that a late answer cannot be taken for the next one) and the host gets an error.

use std::io::{self, Read as _, Write as _};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};

/// How long a forwarded command may take.
pub const ANSWER_LIMIT: Duration = Duration::from_secs(300);
/// How long to wait for an error from a command that has no success answer.
pub const NO_ANSWER_WAIT: Duration = Duration::from_secs(1);
/// How long the resynchronisation of a new connection may take.
const SYNC_LIMIT: Duration = Duration::from_secs(10);

pub struct Forward {
    path: PathBuf,
    conn: Option<UnixStream>,
    pending: Vec<u8>,
    next_id: u64,
}

impl Forward {
    pub fn new(path: &Path) -> Forward {
        Forward {
            path: path.to_path_buf(),
            conn: None,
            pending: Vec::new(),
            next_id: u64::from(std::process::id()) << 20,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn connect(&mut self, stop: &mut dyn FnMut() -> bool) -> Result<(), String> {
        if self.conn.is_some() {
            return Ok(());
        }
        let s = UnixStream::connect(&self.path)
            .map_err(|e| format!("cannot reach qemu-ga at {}: {e}", self.path.display()))?;
        self.conn = Some(s);
        self.pending.clear();
        self.next_id += 1;
        let id = self.next_id;
        let sync = format!(
            "\u{0}{{\"execute\": \"guest-sync-delimited\", \"arguments\": {{\"id\": {id}}}}}\n"
        );
        let mut bytes = sync.into_bytes();
        bytes[0] = 0xFF;
        let r = self.send(&bytes).and_then(|()| {
            let want = format!("{{\"return\": {id}}}");
            let deadline = Instant::now() + SYNC_LIMIT;
            loop {
                let line = self.line(deadline, stop)?;
                let text = line.rsplit(|&b| b == 0xFF).next().unwrap_or(&[]);
                if text.trim_ascii() == want.as_bytes() {
                    return Ok(());
                }
            }
        });
        if r.is_err() {
            self.conn = None;
        }
        r.map_err(|e| {
            format!(
                "qemu-ga at {} did not synchronise: {e}",
                self.path.display()
            )
        })
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        let c = self.conn.as_mut().ok_or("not connected")?;
        c.write_all(bytes).map_err(|e| format!("cannot send: {e}"))
    }

    /// The next answer line (with its newline), waiting until `deadline`.
    fn line(
        &mut self,
        deadline: Instant,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<Vec<u8>, String> {
        loop {
            if let Some(nl) = self.pending.iter().position(|&b| b == b'\n') {
                let rest = self.pending.split_off(nl + 1);
                return Ok(std::mem::replace(&mut self.pending, rest));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("no answer in time".into());
            }
            if stop() {
                return Err("interrupted".into());
            }
            let c = self.conn.as_mut().ok_or("not connected")?;
            let step = left.min(Duration::from_millis(200));
            let mut p = [PollFd::from_borrowed_fd(c.as_fd(), PollFlags::IN)];
            let ts = rustix::time::Timespec {
                tv_sec: 0,
                tv_nsec: i64::from(step.subsec_nanos()).max(1),
            };
            let _ = rustix::event::poll(&mut p, Some(&ts));
            if p[0].revents().is_empty() {
                continue;
            }
            let mut buf = [0u8; 65536];
            match c.read(&mut buf) {
                Ok(0) => return Err("qemu-ga closed the connection".into()),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("cannot read: {e}")),
            }
        }
    }

    /// Relays one request (encoded, newline-terminated); the answer to give the host, or
    /// `None` when qemu-ga gave none (a command without a success answer that succeeded).
    pub fn relay(
        &mut self,
        request: &[u8],
        expects_answer: bool,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<Option<Vec<u8>>, String> {
        // One retry: a kept connection may have been closed by a restarted qemu-ga.
        let mut retried = false;
        loop {
            self.connect(stop)?;
            if let Err(e) = self.send(request) {
                self.conn = None;
                if retried {
                    return Err(e);
                }
                retried = true;
                continue;
            }
            let wait = if expects_answer {
                ANSWER_LIMIT
            } else {
                NO_ANSWER_WAIT
            };
            return match self.line(Instant::now() + wait, stop) {
                Ok(line) => Ok(Some(line)),
                Err(_) if !expects_answer => Ok(None),
                Err(e) => {
                    self.conn = None;
                    Err(format!("qemu-ga at {}: {e}", self.path.display()))
                }
            };
        }
    }
}
