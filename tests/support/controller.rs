//! A controller process that is `quiesce`'s parent and then goes away.
//!
//! Layout: the test spawns a perl "reaper" R (a child subreaper), R forks the controller P, P
//! forks and execs `quiesce` Q (stdout/stderr to files in the scratch directory). P reports
//! Q's SIGUSR1 ("frozen"), waits for a line from the test, and exits without acknowledging.
//! Q is then reparented to R, which reaps it and reports its exit code.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use crate::cli::{Quiesce, QuiesceOutput};
use crate::process::{send_signal, ChildGuard};
use crate::scratch::Scratch;

const SCRIPT: &str = r#"
use strict; use warnings; use POSIX ();
$| = 1;
my ($sys_prctl, $out, $err, @cmd) = @ARGV;
# PR_SET_CHILD_SUBREAPER = 36
syscall($sys_prctl, 36, 1, 0, 0, 0) == 0 or die "prctl: $!";
my $p = fork // die "fork: $!";
if ($p == 0) {
    my $usr1 = 0;
    $SIG{USR1} = sub { $usr1++ };
    my $q = fork // die "fork: $!";
    if ($q == 0) {
        open(STDIN, '<', '/dev/null') or die;
        open(STDOUT, '>', $out) or die "$out: $!";
        open(STDERR, '>', $err) or die "$err: $!";
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    print "quiesce $q\n";
    my $t = 0;
    while (!$usr1 && $t < 6000) { select(undef, undef, undef, 0.01); $t++; }
    print($usr1 ? "usr1\n" : "no-usr1\n");
    my $go = <STDIN>;
    print "parent-exit\n";
    POSIX::_exit(0);
}
while ((my $k = waitpid(-1, 0)) > 0) {
    print "exit $k ", ($? >> 8), " ", ($? & 127), "\n";
}
print "done\n";
"#;

/// `quiesce` whose parent exits (see the module docs).
pub struct ParentGone {
    reaper: ChildGuard,
    lines: Receiver<String>,
    stdin: Option<ChildStdin>,
    quiesce_pid: u32,
    out: PathBuf,
    err: PathBuf,
    cmdline: String,
    start: Instant,
    reaped: bool,
}

impl ParentGone {
    /// Starts `q` under a perl controller. Panics if the controller does not start it.
    pub fn start(q: &Quiesce, scratch: &Scratch, tag: &str) -> ParentGone {
        let cmd = q.command();
        let out = scratch.path(format!("{tag}.stdout"));
        let err = scratch.path(format!("{tag}.stderr"));
        let mut perl = Command::new("perl");
        perl.arg("-e")
            .arg(SCRIPT)
            .arg(libc::SYS_prctl.to_string())
            .arg(&out)
            .arg(&err)
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(d) = cmd.get_current_dir() {
            perl.current_dir(d);
        }
        let start = Instant::now();
        let mut child = perl.spawn().expect("cannot start perl");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut pg = ParentGone {
            reaper: ChildGuard::new(child),
            lines,
            stdin,
            quiesce_pid: 0,
            out,
            err,
            cmdline: q.display(),
            start,
            reaped: false,
        };
        let first = pg.line(Duration::from_secs(10));
        pg.quiesce_pid = first
            .as_deref()
            .and_then(|l| l.strip_prefix("quiesce "))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("perl controller did not start quiesce: {first:?}"));
        pg
    }

    fn line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// The pid of `quiesce`.
    pub fn quiesce_pid(&self) -> u32 {
        self.quiesce_pid
    }

    /// Waits until the controller got SIGUSR1 (quiesce says "frozen"); false if it did not
    /// within `timeout` (or the controller's own 60 s limit).
    pub fn wait_usr1(&self, timeout: Duration) -> bool {
        self.line(timeout).as_deref() == Some("usr1")
    }

    /// Makes the controller exit without acknowledging.
    pub fn parent_exit(&mut self) {
        if let Some(mut s) = self.stdin.take() {
            let _ = writeln!(s, "go");
        }
        let l = self.line(Duration::from_secs(10));
        assert_eq!(l.as_deref(), Some("parent-exit"), "controller did not exit");
    }

    /// Waits up to `timeout` for `quiesce` to exit (reaped by the subreaper) and returns what it
    /// did. Panics if it does not exit in time.
    pub fn wait_quiesce(&mut self, timeout: Duration) -> QuiesceOutput {
        let deadline = Instant::now() + timeout;
        let prefix = format!("exit {} ", self.quiesce_pid);
        let (code, sig) = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.line(left) {
                Some(l) if l.starts_with(&prefix) => {
                    let mut it = l[prefix.len()..].split(' ').map(|n| n.parse::<i32>());
                    match (it.next(), it.next()) {
                        (Some(Ok(c)), Some(Ok(s))) => break (c, s),
                        _ => panic!("bad controller line {l:?}"),
                    }
                }
                Some(_) => continue,
                None => panic!(
                    "`{}` did not exit within {timeout:?} after its parent exited; stdout so far: {}",
                    self.cmdline,
                    std::fs::read_to_string(&self.out).unwrap_or_default()
                ),
            }
        };
        self.reaped = true;
        // A wait status rebuilt from the code/signal the subreaper saw.
        let raw = if sig != 0 { sig } else { code << 8 };
        let status = std::os::unix::process::ExitStatusExt::from_raw(raw);
        let stdout = std::fs::read(&self.out).unwrap_or_default();
        let stderr = std::fs::read(&self.err).unwrap_or_default();
        QuiesceOutput::from_parts(self.cmdline.clone(), status, &stdout, &stderr, self.start)
    }
}

impl Drop for ParentGone {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = send_signal(self.quiesce_pid, libc::SIGTERM);
        }
        self.stdin = None;
        let _ = self.reaper.wait_timeout(Duration::from_secs(5));
    }
}
