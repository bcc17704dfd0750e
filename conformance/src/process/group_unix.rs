//! The decoder's process on Unix: its own process group, killed as a whole, and a watchdog that
//! kills every group still alive when the runner itself dies.

use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ExitStatus, Stdio};

use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};

use super::{DecoderCommand, Status};

impl Status {
    pub(super) fn of(s: ExitStatus) -> Status {
        match (s.code(), s.signal()) {
            (Some(c), _) => Status::Code(c),
            (None, Some(sig)) => Status::Signal(sig),
            (None, None) => Status::Code(-1),
        }
    }
}

/// The runner's dead man's switch: a small shell, in a process group of its own, that holds the
/// list of decoder process groups alive and kills them all when its input closes. Its input is a
/// pipe only the runner holds, so it closes however the runner ends, SIGKILL included, and no
/// decoder outlives the run. Linux's parent-death signal would reach only the decoder's direct
/// child, not what an adapter starts, and needs unsafe code in the child before exec.
mod watchdog {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    use std::process::{ChildStdin, Command, Stdio};
    use std::sync::{Mutex, OnceLock};

    const SCRIPT: &str = r#"
trap '' INT HUP TERM QUIT PIPE
groups=' '
while read -r op pg; do
  case $op in
    +) groups="$groups$pg " ;;
    -) kept=' '; for g in $groups; do [ "$g" = "$pg" ] || kept="$kept$g "; done; groups=$kept ;;
  esac
done
for g in $groups; do kill -KILL -"$g" 2>/dev/null; done
"#;

    fn input() -> &'static Mutex<Option<ChildStdin>> {
        static INPUT: OnceLock<Mutex<Option<ChildStdin>>> = OnceLock::new();
        INPUT.get_or_init(|| {
            let child = Command::new("sh")
                .args(["-c", SCRIPT])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn();
            // Without a shell there is no watchdog; decoders are still killed on every other path.
            Mutex::new(child.ok().and_then(|mut c| c.stdin.take()))
        })
    }

    fn send(line: &str) {
        let mut input = input().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = input.as_mut()
            && w.write_all(line.as_bytes()).and_then(|()| w.flush()).is_err()
        {
            *input = None;
        }
    }

    /// The process group `pgid` dies with the runner.
    pub fn watch(pgid: i32) {
        send(&format!("+ {pgid}\n"));
    }

    /// The group is gone (killed and reaped): forget it before its number can be reused.
    pub fn forget(pgid: i32) {
        send(&format!("- {pgid}\n"));
    }
}

/// A decoder process in its own process group. Dropping it kills the group and reaps the child,
/// so no path (a timeout, an error, a panic) leaves a process behind; the [`watchdog`] covers the
/// runner itself being killed.
#[derive(Debug)]
pub(super) struct Proc {
    pub(super) child: Child,
    pid: Pid,
    pub(super) reaped: Option<Status>,
}

impl Proc {
    pub(super) fn spawn(cmd: &DecoderCommand, env: &[(&str, String)], stdin: Stdio) -> io::Result<Proc> {
        let child = super::command(cmd, env, stdin)?.process_group(0).spawn()?;
        let pid = Pid::from_child(&child);
        watchdog::watch(pid.as_raw_nonzero().get());
        Ok(Proc { child, pid, reaped: None })
    }

    /// Whether the decoder has exited, without reaping it: while it is an unreaped zombie its
    /// pid, which is also its process group id, cannot be reused, so killing the group stays safe.
    pub(super) fn has_exited(&mut self) -> bool {
        self.reaped.is_some()
            || matches!(
                rustix::process::waitid(
                    WaitId::Pid(self.pid),
                    WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT
                ),
                Ok(Some(_))
            )
    }

    pub(super) fn kill_group(&mut self) {
        if self.reaped.is_none() {
            // ESRCH (the group is gone already) is what we want.
            let _ = rustix::process::kill_process_group(self.pid, Signal::KILL);
        }
    }

    /// The decoder was reaped: its group id may be reused from now on.
    pub(super) fn forget(&self) {
        watchdog::forget(self.pid.as_raw_nonzero().get());
    }
}
