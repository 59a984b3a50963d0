//! Which tasks are in uninterruptible sleep (state `D`): on a timeout, the report names them,
//! so that an operator can see who held a freeze up (a writer flushing a huge file, a loop
//! device's worker waiting on a frozen filesystem, a stuck `FIFREEZE`).
//!
//! Read from /proc after the last `FITHAW` (reading /proc writes nowhere, but it allocates).

use std::fs;

/// Most tasks listed.
pub const MAX_BLOCKED: usize = 32;

/// A task (thread) in uninterruptible sleep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockedTask {
    /// The process (thread group) id.
    pub pid: i32,
    /// The thread id (equal to `pid` for a single-threaded process or a kernel thread).
    pub tid: i32,
    /// The command name (`comm`), e.g. `dd` or `kworker/u8:2+loop3`.
    pub comm: String,
    /// The kernel function it sleeps in, if the kernel tells (`/proc/PID/task/TID/wchan`).
    pub wchan: String,
}

/// `(state, comm)` from the text of a /proc stat file.
fn state_and_comm(stat: &str) -> Option<(char, &str)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?;
    let state = stat.get(close + 1..)?.trim_start().chars().next()?;
    Some((state, comm))
}

fn numeric_entries(dir: &str) -> Vec<i32> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

/// Every task in state `D` right now (at most `MAX_BLOCKED`, 32), ordered by pid and tid.
pub fn blocked_tasks() -> Vec<BlockedTask> {
    let mut pids = numeric_entries("/proc");
    pids.sort_unstable();
    let mut out = Vec::new();
    for pid in pids {
        let mut tids = numeric_entries(&format!("/proc/{pid}/task"));
        tids.sort_unstable();
        for tid in tids {
            let base = format!("/proc/{pid}/task/{tid}");
            let Ok(stat) = fs::read_to_string(format!("{base}/stat")) else {
                continue;
            };
            let Some(('D', comm)) = state_and_comm(&stat) else {
                continue;
            };
            let wchan = fs::read_to_string(format!("{base}/wchan"))
                .map(|w| w.trim().to_string())
                .ok()
                .filter(|w| !w.is_empty() && w != "0")
                .unwrap_or_default();
            out.push(BlockedTask {
                pid,
                tid,
                comm: comm.to_string(),
                wchan,
            });
            if out.len() >= MAX_BLOCKED {
                return out;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines_with_odd_names() {
        assert_eq!(
            state_and_comm("42 (kworker/u8:2+loop3) D 2 0 0"),
            Some(('D', "kworker/u8:2+loop3"))
        );
        assert_eq!(
            state_and_comm("7 (a) b) (c) S 1 7"),
            Some(('S', "a) b) (c"))
        );
        assert_eq!(state_and_comm("garbage"), None);
    }

    #[test]
    fn scanning_proc_works() {
        // Nothing is guaranteed to be in D; the scan must simply not fail or overflow.
        assert!(blocked_tasks().len() <= MAX_BLOCKED);
    }
}
