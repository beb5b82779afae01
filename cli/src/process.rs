//! Other processes, seen through `/proc` and signalled with safe calls (the workspace forbids
//! `unsafe`): is one alive, what it runs, and stopping one.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Whether process `pid` runs (exists and is not a zombie).
pub(crate) fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses, which may itself hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Process `pid`'s command line, its arguments joined by spaces.
pub(crate) fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Whether `pid` is alive and its command line contains every one of `needles`: a pid from a
/// file is only trusted when it still runs what the file says (pids are reused).
pub(crate) fn runs(pid: u32, needles: &[&str]) -> bool {
    alive(pid) && cmdline(pid).is_some_and(|c| needles.iter().all(|n| c.contains(n)))
}

/// Sends `signal` to `pid`; false when it could not be sent (the process is gone).
pub(crate) fn signal(pid: u32, signal: Signal) -> bool {
    i32::try_from(pid)
        .ok()
        .is_some_and(|p| kill(Pid::from_raw(p), signal).is_ok())
}

/// Asks `pid` to stop (SIGTERM), waits up to `grace`, then kills it (SIGKILL). Returns whether
/// it stopped within the grace period.
pub(crate) fn terminate(pid: u32, grace: Duration) -> bool {
    if !signal(pid, Signal::SIGTERM) {
        return true;
    }
    let start = Instant::now();
    while start.elapsed() < grace {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(pid, Signal::SIGKILL);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_runs_its_own_command() {
        let me = std::process::id();
        assert!(alive(me));
        assert!(cmdline(me).is_some_and(|c| !c.is_empty()));
        assert!(!alive(u32::MAX - 1));
    }
}
