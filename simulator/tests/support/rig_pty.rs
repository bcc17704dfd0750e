//! A simulated rig behind a pseudo-terminal, so the real binary opens it as it opens the Pico's
//! /dev/ttyACM0; and bare pseudo-terminals standing in for USB-UARTs.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::Duration;

use p1sim::rig::Transport;
use p1sim::rig::fake::{Behaviour, FakeRig};
use rustix::fs::{Mode, OFlags};
use rustix::pty::OpenptFlags;
use rustix::termios::OptionalActions;

/// A pseudo-terminal: the master for the simulated rig, the slave's path for p1sim. A slave
/// descriptor stays open here so the master does not read EIO while p1sim is not attached.
pub struct Pty {
    pub master: File,
    _slave: File,
    pub path: PathBuf,
}

pub fn pty() -> Pty {
    let master = rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    rustix::pty::grantpt(&master).unwrap();
    rustix::pty::unlockpt(&master).unwrap();
    let name = rustix::pty::ptsname(&master, Vec::new()).unwrap();
    let path = PathBuf::from(name.to_string_lossy().into_owned());
    let slave = rustix::fs::open(&path, OFlags::RDWR | OFlags::NOCTTY, Mode::empty()).unwrap();
    rustix::fs::fcntl_setfl(&master, OFlags::NONBLOCK).unwrap();
    let mut t = rustix::termios::tcgetattr(&slave).unwrap();
    t.make_raw();
    rustix::termios::tcsetattr(&slave, OptionalActions::Now, &t).unwrap();
    Pty { master: File::from(master), _slave: File::from(slave), path }
}

/// The master side as the simulated rig's transport.
pub struct Master(pub File);

impl Transport for Master {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // The master is non-blocking: look a few times within the transport's read timeout.
        for _ in 0..25 {
            match self.0.read(buf) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::BrokenPipe, "pty closed")),
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => return Err(e),
            }
        }
        Ok(0)
    }

    fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.0.write(bytes) {
                Ok(n) => bytes = &bytes[n..],
                // p1sim reads the slave; a full PTY empties as it does.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(1)),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn try_clone(&self) -> io::Result<Box<dyn Transport>> {
        Ok(Box::new(Master(self.0.try_clone()?)))
    }
}

/// A simulated rig on a fresh pseudo-terminal.
pub fn rig_on_pty(behaviour: Behaviour) -> (FakeRig, Pty) {
    let fake = FakeRig::new(behaviour);
    let p = pty();
    let master = p.master.as_fd().try_clone_to_owned().unwrap();
    fake.serve_on(Box::new(Master(File::from(master))));
    (fake, p)
}
