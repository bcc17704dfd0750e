//! The pseudo-terminal output: a real PTY whose slave side a reader opens like a serial port,
//! with a stable symlink (default `./p1-meter`) so configurations need not chase `/dev/pts/N`.
//!
//! Three things make a PTY behave like a meter's port rather than a pipe:
//! - We keep a slave descriptor open ourselves, so the master survives readers closing and
//!   reopening, and the slave keeps its raw settings in between (a pts resets its termios when
//!   the last descriptor closes).
//! - At each telegram start, bytes nobody read are discarded, so a reader that (re)opens gets the
//!   next telegram rather than a backlog, and an unattended PTY never fills up.
//! - At each telegram start the exclusive flag is cleared: serialport and pyserial set TIOCEXCL on
//!   open, and because the tty outlives the reader the flag would otherwise stay and make every
//!   later non-root open fail with EBUSY.
//! - For the same reason the raw settings are put back at each telegram start when a reader
//!   changed them: a reader that turned on CR-to-LF translation (`stty icrnl`, a terminal
//!   program) would otherwise break every plain reader after it.
//! - Unread bytes are discarded only when the reader read none of the last telegram (no reader,
//!   or a stalled one), never while a reader is in the middle of it, and every discard counts.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{ErrorKind, Write};
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering as Atomic};

use anyhow::{Context, Result, bail};
use rustix::fs::{Mode, OFlags};
use rustix::pty::OpenptFlags;
use rustix::termios::{OptionalActions, QueueSelector};

use super::pacer::{Outgoing, Sink};

/// Counters of a PTY output.
#[derive(Debug, Default)]
pub struct PtyStats {
    /// Bytes left unread by the time the next telegram started (no reader, or one not reading).
    pub discarded_unread: AtomicU64,
    /// Telegrams (or their tails) those discards threw away.
    pub discarded_telegrams: AtomicU64,
    /// Bytes the PTY would not take.
    pub lost: AtomicU64,
    /// Times a reader's changed terminal settings were put back to raw.
    pub settings_restored: AtomicU64,
}

/// An open pseudo-terminal pair.
#[derive(Debug)]
pub struct Pty {
    master: File,
    slave: File,
    path: PathBuf,
    link: Option<PathBuf>,
    /// The raw settings made at open, put back when a reader changes them.
    raw: rustix::termios::Termios,
    pub stats: Arc<PtyStats>,
}

impl Pty {
    /// Opens a PTY, sets the slave raw at `baud` (cosmetic: a PTY has no line rate) and makes
    /// `link` point at it.
    pub fn open(link: Option<&Path>, baud: u32) -> Result<Pty> {
        let master = rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY)
            .context("cannot create a pseudo-terminal (is /dev/ptmx available?)")?;
        rustix::pty::grantpt(&master).context("cannot set up the pseudo-terminal (grantpt)")?;
        rustix::pty::unlockpt(&master).context("cannot set up the pseudo-terminal (unlockpt)")?;
        let name = rustix::pty::ptsname(&master, Vec::new()).context("cannot name the pseudo-terminal")?;
        let path = PathBuf::from(OsStr::from_bytes(name.as_bytes()));
        let slave = rustix::fs::open(&path, OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC, Mode::empty())
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mut t = rustix::termios::tcgetattr(&slave).with_context(|| format!("cannot read {}", path.display()))?;
        t.make_raw();
        let _ = t.set_speed(baud);
        rustix::termios::tcsetattr(&slave, OptionalActions::Now, &t)
            .with_context(|| format!("cannot set {} to raw mode", path.display()))?;
        // Never block the pacer: a full PTY loses bytes, as a UART nobody reads does.
        rustix::fs::fcntl_setfl(&master, OFlags::NONBLOCK).context("cannot make the pseudo-terminal non-blocking")?;
        let link = match link {
            Some(l) => {
                make_link(&path, l)?;
                Some(l.to_path_buf())
            }
            None => None,
        };
        Ok(Pty {
            master: File::from(master),
            slave: File::from(slave),
            path,
            link,
            raw: t,
            stats: Arc::new(PtyStats::default()),
        })
    }

    /// The slave device, e.g. `/dev/pts/3`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn link(&self) -> Option<&Path> {
        self.link.as_deref()
    }

    /// Hands the PTY to the pacer.
    pub fn into_sink(self) -> PtySink {
        PtySink { pty: self, last_len: 0 }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        // Remove the link only while it still points at this PTY: another run may own it now.
        if let Some(l) = &self.link
            && std::fs::read_link(l).is_ok_and(|t| t == self.path)
        {
            let _ = std::fs::remove_file(l);
        }
    }
}

fn make_link(target: &Path, link: &Path) -> Result<()> {
    match std::fs::symlink_metadata(link) {
        Ok(m) if m.file_type().is_symlink() => {
            let old = std::fs::read_link(link).unwrap_or_default();
            // Another run holds its terminal open for as long as it runs; a terminal number
            // reused by something else (the run was killed) makes the link stale.
            let holders = if is_live_terminal(&old) { holders_of(&old) } else { Vec::new() };
            if holders.iter().any(|(_, cmd)| cmd.contains("p1sim")) {
                let by: Vec<String> = holders.iter().map(|(pid, cmd)| format!("pid {pid} ({cmd})")).collect();
                bail!(
                    "{} points at {}, the pseudo-terminal of another `p1sim run`, held open by {}. Give this run \
                     a link of its own with --pty OTHER (e.g. --pty ./p1-meter-2)",
                    link.display(),
                    old.display(),
                    by.join(", ")
                );
            }
            // A stale link from an earlier run that was killed: replace it.
            std::fs::remove_file(link).with_context(|| format!("cannot replace the old link {}", link.display()))?;
        }
        Ok(_) => bail!(
            "{} exists and is not a symlink; give another path with --pty PATH (p1sim only replaces its own links)",
            link.display()
        ),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", link.display())),
    }
    std::os::unix::fs::symlink(target, link).with_context(|| {
        format!("cannot create the link {} -> {} (is the directory writable?)", link.display(), target.display())
    })
}

/// Whether `path` is a pseudo-terminal that exists now (`/dev/pts/N` exists only while its
/// master side is open).
fn is_live_terminal(path: &Path) -> bool {
    path.starts_with("/dev/pts") && std::fs::metadata(path).is_ok_and(|m| m.file_type().is_char_device())
}

/// The processes that hold `tty` open (pid and command line), from /proc; bounded, best effort.
fn holders_of(tty: &Path) -> Vec<(u32, String)> {
    const MAX_PROCESSES: usize = 4096;
    const MAX_FDS: usize = 1024;
    let mut found = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else { return found };
    for entry in procs.flatten().take(MAX_PROCESSES) {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else { continue };
        if fds.flatten().take(MAX_FDS).any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == tty)) {
            let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmd: String = String::from_utf8_lossy(&cmd).replace('\0', " ").trim().chars().take(80).collect();
            found.push((pid, cmd));
            if found.len() >= 4 {
                break;
            }
        }
    }
    found
}

/// The pacer's end of a PTY.
#[derive(Debug)]
pub struct PtySink {
    pty: Pty,
    /// Bytes of the previous telegram.
    last_len: u64,
}

/// Unread bytes beyond this are a stalled reader whatever the telegram's size: the line
/// discipline holds 4 KiB, and a reader this far behind gets a fresh start.
const STALLED_UNREAD: u64 = 3 * 1024;

impl PtySink {
    /// Puts the raw settings back if a reader changed them.
    fn restore_settings(&self) {
        let slave = &self.pty.slave;
        let Ok(now) = rustix::termios::tcgetattr(slave) else { return };
        let raw = &self.pty.raw;
        let changed = now.input_modes != raw.input_modes
            || now.output_modes != raw.output_modes
            || now.local_modes != raw.local_modes
            || now.control_modes != raw.control_modes;
        if changed && rustix::termios::tcsetattr(slave, OptionalActions::Now, raw).is_ok() {
            self.pty.stats.settings_restored.fetch_add(1, Atomic::Relaxed);
        }
    }
}

impl Sink for PtySink {
    fn begin(&mut self, _t: &Outgoing, bytes: &Arc<[u8]>) {
        let slave = &self.pty.slave;
        // Counted from what the line discipline holds; bytes the kernel has not yet moved there
        // from the tty's flip buffers are not, so a reader reading along is never cut short.
        let unread = rustix::io::ioctl_fionread(slave).unwrap_or(0);
        let stalled = unread > 0 && unread >= self.last_len.min(STALLED_UNREAD);
        if stalled && rustix::termios::tcflush(slave, QueueSelector::IFlush).is_ok() {
            self.pty.stats.discarded_unread.fetch_add(unread, Atomic::Relaxed);
            self.pty.stats.discarded_telegrams.fetch_add(1, Atomic::Relaxed);
        }
        self.last_len = bytes.len() as u64;
        let _ = rustix::termios::ioctl_tiocnxcl(slave);
        self.restore_settings();
    }

    fn write(&mut self, bytes: &Arc<[u8]>, range: Range<usize>) {
        let mut rest = &bytes[range];
        while !rest.is_empty() {
            match self.pty.master.write(rest) {
                Ok(0) => break,
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if !rest.is_empty() {
            self.pty.stats.lost.fetch_add(rest.len() as u64, Atomic::Relaxed);
        }
    }

    fn end(&mut self, _complete: bool) {}
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    use std::time::Instant;

    use super::*;

    #[test]
    fn bytes_written_arrive_on_the_slave_and_stale_ones_are_discarded() {
        let dir = std::env::temp_dir().join(format!("p1sim-pty-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("meter");
        let pty = Pty::open(Some(&link), 115_200).unwrap();
        assert_eq!(std::fs::read_link(&link).unwrap(), pty.path());
        let path = pty.path().to_path_buf();
        let stats = Arc::clone(&pty.stats);
        let mut sink = pty.into_sink();
        let t = Outgoing { meter: 0, seq: 0, at: 0, due: Instant::now(), bytes: Arc::from(&b"/OLD!"[..]) };
        sink.begin(&t, &t.bytes);
        sink.write(&t.bytes, 0..5);
        sink.end(true);
        // Nobody read the first telegram: it is thrown away when the next one starts (an
        // interval later; the pause lets the kernel hand the bytes to the line discipline).
        std::thread::sleep(std::time::Duration::from_millis(50));
        let t2 = Outgoing { bytes: Arc::from(&b"/NEW!"[..]), ..t };
        sink.begin(&t2, &t2.bytes);
        sink.write(&t2.bytes, 0..5);
        sink.end(true);
        // O_NOCTTY: the test process must not adopt the PTY as its controlling terminal.
        let mut reader =
            std::fs::OpenOptions::new().read(true).custom_flags(OFlags::NOCTTY.bits() as i32).open(&path).unwrap();
        let mut buf = [0u8; 5];
        reader.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"/NEW!");
        assert_eq!(stats.discarded_unread.load(Atomic::Relaxed), 5);
        drop(sink);
        assert!(std::fs::symlink_metadata(&link).is_err(), "the link goes with the PTY");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_readers_changed_settings_are_put_back_for_the_next_reader() {
        use rustix::termios::{InputModes, tcgetattr, tcsetattr};
        let pty = Pty::open(None, 115_200).unwrap();
        let path = pty.path().to_path_buf();
        let stats = Arc::clone(&pty.stats);
        let mut sink = pty.into_sink();
        // A reader turns CR into LF (as `stty icrnl` or a terminal program does) and leaves.
        let reader =
            std::fs::OpenOptions::new().read(true).custom_flags(OFlags::NOCTTY.bits() as i32).open(&path).unwrap();
        let mut t = tcgetattr(&reader).unwrap();
        t.input_modes |= InputModes::ICRNL;
        tcsetattr(&reader, OptionalActions::Now, &t).unwrap();
        drop(reader);
        let t0 = Outgoing { meter: 0, seq: 0, at: 0, due: Instant::now(), bytes: Arc::from(&b"/A\r\n!"[..]) };
        sink.begin(&t0, &t0.bytes);
        sink.write(&t0.bytes, 0..t0.bytes.len());
        // The next plain reader gets the CR as sent.
        let mut reader =
            std::fs::OpenOptions::new().read(true).custom_flags(OFlags::NOCTTY.bits() as i32).open(&path).unwrap();
        assert!(!tcgetattr(&reader).unwrap().input_modes.contains(InputModes::ICRNL));
        let mut buf = [0u8; 5];
        reader.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"/A\r\n!");
        assert_eq!(stats.settings_restored.load(Atomic::Relaxed), 1);
    }

    #[test]
    fn a_regular_file_is_never_replaced_by_the_link() {
        let dir = std::env::temp_dir().join(format!("p1sim-pty-unit-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("precious");
        std::fs::write(&file, b"keep").unwrap();
        let err = Pty::open(Some(&file), 9600).unwrap_err().to_string();
        assert!(err.contains("is not a symlink"), "{err}");
        assert_eq!(std::fs::read(&file).unwrap(), b"keep");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_link_to_a_live_terminal_is_not_taken_over_and_a_stale_one_is() {
        let dir = std::env::temp_dir().join(format!("p1sim-pty-owner-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("p1-meter");
        let first = Pty::open(Some(&link), 115_200).unwrap();
        let err = format!("{:#}", Pty::open(Some(&link), 115_200).unwrap_err());
        assert!(err.contains("of another `p1sim run`") && err.contains("--pty OTHER"), "{err}");
        assert_eq!(std::fs::read_link(&link).unwrap(), first.path(), "the first run keeps its link");
        // The first run ends: its link goes; a link left by a killed run points nowhere and is
        // replaced.
        drop(first);
        std::os::unix::fs::symlink("/dev/pts/999999", &link).unwrap();
        let second = Pty::open(Some(&link), 115_200).unwrap();
        assert_eq!(std::fs::read_link(&link).unwrap(), second.path());
        drop(second);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
