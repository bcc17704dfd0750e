//! The signals that ask p1sim to stop: Ctrl-C, SIGTERM and SIGHUP on Unix; Ctrl-C, Ctrl-Break
//! and a closed console window on Windows.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Stop signals, watched from the moment [`StopSignals::watch`] returns: one that arrives later
/// is never met by the default action (which ends the process without saving the meter's state
/// or removing its PTY link). Needs a tokio runtime with its IO driver running.
#[derive(Debug)]
pub struct StopSignals {
    #[cfg(unix)]
    watched: [(tokio::signal::unix::Signal, &'static str); 3],
    #[cfg(windows)]
    watched: (tokio::signal::windows::CtrlC, tokio::signal::windows::CtrlBreak, tokio::signal::windows::CtrlClose),
}

impl StopSignals {
    #[cfg(unix)]
    pub fn watch() -> io::Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            watched: [
                (signal(SignalKind::interrupt())?, "SIGINT"),
                (signal(SignalKind::terminate())?, "SIGTERM"),
                // A closed SSH session or terminal.
                (signal(SignalKind::hangup())?, "SIGHUP"),
            ],
        })
    }

    #[cfg(windows)]
    pub fn watch() -> io::Result<StopSignals> {
        use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close};
        Ok(StopSignals { watched: (ctrl_c()?, ctrl_break()?, ctrl_close()?) })
    }

    /// Waits for the next stop signal and names it.
    #[cfg(unix)]
    pub async fn next(&mut self) -> &'static str {
        let [(int, a), (term, b), (hup, c)] = &mut self.watched;
        tokio::select! {
            _ = int.recv() => a,
            _ = term.recv() => b,
            _ = hup.recv() => c,
        }
    }

    #[cfg(windows)]
    pub async fn next(&mut self) -> &'static str {
        let (c, brk, close) = &mut self.watched;
        tokio::select! {
            _ = c.recv() => "Ctrl-C",
            _ = brk.recv() => "Ctrl-Break",
            _ = close.recv() => "the console closing",
        }
    }

    /// Whether the signal means the user's session went away rather than a request to stop.
    pub fn is_hang_up(name: &str) -> bool {
        matches!(name, "SIGHUP" | "the console closing")
    }
}

/// For the synchronous commands: a flag raised by the first stop signal, watched on a thread of
/// its own from the moment this returns. With `grace`, a second signal, or the first one not
/// heeded within the grace time (a write blocked on a stalled reader), prints the message and
/// ends the process at once with status 130.
pub fn flag_on_stop(grace: Option<(Duration, &'static str)>) -> io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut signals = rt.block_on(async { StopSignals::watch() })?;
    let raised = Arc::clone(&flag);
    std::thread::Builder::new().name("p1sim-signals".into()).spawn(move || {
        rt.block_on(async move {
            signals.next().await;
            raised.store(true, Ordering::Relaxed);
            let Some((grace, message)) = grace else { return };
            tokio::select! {
                _ = signals.next() => {}
                () = tokio::time::sleep(grace) => {}
            }
            eprintln!("{message}");
            std::process::exit(130);
        });
    })?;
    Ok(flag)
}
