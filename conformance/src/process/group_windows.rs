//! The decoder's process elsewhere than Unix: Windows has no process groups to kill as a whole,
//! so a timeout or a cancelled run kills the decoder itself; what an adapter started of its own
//! may outlive it there.

use std::io;
use std::process::{Child, ExitStatus, Stdio};

use super::{DecoderCommand, Status};

impl Status {
    pub(super) fn of(s: ExitStatus) -> Status {
        Status::Code(s.code().unwrap_or(-1))
    }
}

/// A decoder process. Dropping it kills and reaps it, so no path (a timeout, an error, a panic)
/// leaves it behind.
#[derive(Debug)]
pub(super) struct Proc {
    pub(super) child: Child,
    pub(super) reaped: Option<Status>,
}

impl Proc {
    pub(super) fn spawn(cmd: &DecoderCommand, env: &[(&str, String)], stdin: Stdio) -> io::Result<Proc> {
        Ok(Proc { child: super::command(cmd, env, stdin)?.spawn()?, reaped: None })
    }

    /// Whether the decoder has exited. Windows keeps its process handle, so reaping it early
    /// cannot let its id be reused under us.
    pub(super) fn has_exited(&mut self) -> bool {
        if self.reaped.is_none()
            && let Ok(Some(s)) = self.child.try_wait()
        {
            self.reaped = Some(Status::of(s));
        }
        self.reaped.is_some()
    }

    pub(super) fn kill_group(&mut self) {
        if self.reaped.is_none() {
            let _ = self.child.kill();
        }
    }

    /// Nothing to forget: Windows has no group ids to reuse.
    pub(super) fn forget(&self) {}
}
