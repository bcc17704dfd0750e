//! The pseudo-terminal transport (Unix only): the runner holds the master of a raw PTY at the
//! case's baud rate, the decoder opens the slave path as it would a serial port.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};

use super::{DecoderCommand, Outcome, PTY_SETTLE, Running, Transport, case_env};
use crate::case::Case;

pub(super) fn timespec(d: Duration) -> Timespec {
    Timespec { tv_sec: d.as_secs() as _, tv_nsec: d.subsec_nanos() as _ }
}

/// A pseudo-terminal: the runner holds the master, the decoder opens the slave path.
#[derive(Debug)]
struct Pty {
    master: OwnedFd,
    path: String,
}

impl Pty {
    /// A raw PTY at `baud`. The runner opens and closes the slave once, so that the master
    /// reports a hang-up until the decoder opens it: that is how the runner sees it arrive.
    fn open(baud: u32) -> io::Result<Pty> {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        // Close-on-exec at once where the system offers it (Linux), right after elsewhere (macOS).
        #[cfg(target_os = "linux")]
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
        #[cfg(not(target_os = "linux"))]
        let master = {
            let m = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY)?;
            rustix::io::fcntl_setfd(&m, rustix::io::FdFlags::CLOEXEC)?;
            m
        };
        grantpt(&master)?;
        unlockpt(&master)?;
        let path =
            ptsname(&master, Vec::new())?.into_string().map_err(|_| io::Error::other("the PTY's name is not UTF-8"))?;
        // Termios set on the master apply to the slave's line discipline: raw, so no byte is
        // translated (CR to LF) or held back for a line, before the decoder even opens it.
        let mut t = rustix::termios::tcgetattr(&master)?;
        t.make_raw();
        let _ = t.set_speed(baud);
        rustix::termios::tcsetattr(&master, rustix::termios::OptionalActions::Now, &t)?;
        drop(open_slave(&path)?);
        rustix::fs::fcntl_setfl(&master, rustix::fs::OFlags::NONBLOCK)?;
        Ok(Pty { master, path })
    }

    /// Whether no one has the slave open (the master reports a hang-up).
    fn slave_closed(&self) -> bool {
        let mut fds = [PollFd::new(&self.master, PollFlags::IN)];
        // A failed poll says nothing about the slave: keep waiting rather than write too early.
        rustix::event::poll(&mut fds, Some(&timespec(Duration::ZERO))).is_err()
            || fds[0].revents().contains(PollFlags::HUP)
    }
}

fn open_slave(path: &str) -> io::Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    Ok(rustix::fs::open(path, OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC | OFlags::NONBLOCK, Mode::empty())?)
}

pub(super) fn via_pty(cmd: &DecoderCommand, case: &Case, deadline: Instant, cancel: &AtomicBool) -> Outcome {
    let pty = match Pty::open(case.line.baud) {
        Ok(p) => p,
        Err(e) => return Outcome::unstartable(cmd, &io::Error::other(format!("cannot create a pseudo-terminal: {e}"))),
    };
    let mut env = case_env(case, Transport::Pty);
    env.push(("P1SIM_PTY", pty.path.clone()));
    let (mut running, _) = match Running::start(cmd, &env, Stdio::null()) {
        Ok(r) => r,
        Err(e) => return Outcome::unstartable(cmd, &e),
    };
    let stop = || Instant::now() >= deadline || cancel.load(Ordering::Relaxed);
    let mut note = None;
    // 1. Wait for the decoder to open the PTY, then let it settle.
    let mut opened = false;
    while !opened {
        if !pty.slave_closed() {
            opened = true;
        } else if running.proc.has_exited() {
            note = Some(format!("the decoder exited without opening P1SIM_PTY={}", pty.path));
            break;
        } else if stop() {
            note = Some(format!("the decoder never opened P1SIM_PTY={}", pty.path));
            break;
        } else {
            thread::sleep(Duration::from_millis(1));
        }
    }
    if opened {
        let settle = Instant::now() + PTY_SETTLE;
        while Instant::now() < settle && !stop() && !running.proc.has_exited() {
            thread::sleep(Duration::from_millis(2));
        }
        // 2. Write everything; the master is non-blocking, so a decoder that stops reading
        // cannot hold the runner past the deadline.
        let mut written = 0;
        while written < case.input.len() && !stop() {
            match rustix::io::write(&pty.master, &case.input[written..]) {
                Ok(n) => written += n,
                Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {
                    if running.proc.has_exited() {
                        note =
                            Some(format!("the decoder exited after reading {written} of {} bytes", case.input.len()));
                        break;
                    }
                    let mut fds = [PollFd::new(&pty.master, PollFlags::OUT)];
                    let _ = rustix::event::poll(&mut fds, Some(&timespec(Duration::from_millis(10))));
                }
                Err(e) => {
                    note = Some(format!("writing to the PTY failed after {written} bytes: {e}"));
                    break;
                }
            }
        }
        // 3. Wait until the decoder has read it all: closing the master hangs the line up and
        // drops what is still queued. The runner's own handle on the slave only looks: polling
        // it first pushes bytes still in the PTY's flip buffer into the line discipline (the
        // kernel's n_tty_poll flushes that work), so "nothing to read" is not said too early
        // while a loaded machine has not moved them yet.
        if let Ok(slave) = open_slave(&pty.path) {
            let mut empty = 0;
            while empty < 2 && !stop() && !running.proc.has_exited() {
                let mut fds = [PollFd::new(&slave, PollFlags::IN)];
                let readable = rustix::event::poll(&mut fds, Some(&timespec(Duration::ZERO))).is_ok()
                    && fds[0].revents().contains(PollFlags::IN);
                match rustix::io::ioctl_fionread(slave.as_fd()) {
                    Ok(0) if !readable => empty += 1,
                    Ok(_) => empty = 0,
                    Err(_) => break,
                }
                thread::sleep(Duration::from_millis(2));
            }
        }
    }
    // 4. Hang up: the decoder reads EOF or EIO and finishes.
    drop(pty);
    running.finish(deadline, cancel, note)
}
