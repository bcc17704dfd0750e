//! Replaying a capture: the recorded telegrams again, at the meter's interval or at their
//! recorded timing, once or in a loop, optionally moved to the simulated clock (`--retime`: the
//! message timestamp becomes the simulated instant, M-Bus capture times move with it, and the
//! CRC is recomputed, so the replay looks live to software that checks the clock). `p1sim run
//! --replay` sends them on the live outputs, `p1sim emit --replay` writes them to a file.

use anyhow::{Result, bail};
use p1sim_core::clock::ClockRule;
use p1sim_core::format::LocalTime;
use p1sim_core::smarty;
use p1sim_core::telegram::{Checksum, Telegram};

use crate::capture::{Capture, Captured, instant, stamp_of};

/// When the recorded telegrams go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Timing {
    /// One per interval of the profile (learned from the capture, or `--profile`).
    Interval,
    /// With the gaps they were recorded with: the log's times (a `time` group of
    /// `--strip-prefix`), else the telegrams' own timestamps.
    Recorded,
}

/// How to replay.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub timing: Timing,
    /// Start over after the last telegram.
    pub looped: bool,
    /// Move the timestamps to the simulated clock and recompute the CRC.
    pub retime: bool,
}

/// One telegram of the replay.
#[derive(Debug, Clone)]
pub struct Due {
    /// What goes on the line: the telegram, or its Smarty frame.
    pub bytes: Vec<u8>,
    /// The plaintext telegram's model, for faults.
    pub model: Telegram,
    /// Whether `bytes` is an encrypted frame (only byte faults apply then).
    pub encrypted: bool,
}

/// A capture being replayed.
#[derive(Debug, Clone)]
pub struct Replay {
    telegrams: Vec<Captured>,
    /// Seconds after the first telegram at which each goes out.
    offsets: Vec<i64>,
    /// Seconds from the first telegram of one pass to the first of the next.
    period: i64,
    opts: Options,
    clock: ClockRule,
    key: Option<[u8; 16]>,
    /// The authentication key the capture's frames were checked with, to re-encrypt with.
    auth_key: [u8; 16],
    origin: Option<i64>,
    next: usize,
    pass: i64,
    done: bool,
}

impl Replay {
    /// A replay of `capture` for a meter with `interval_s` and `clock`; `key` re-encrypts
    /// retimed Smarty frames.
    pub fn new(
        capture: Capture,
        interval_s: u32,
        clock: ClockRule,
        opts: Options,
        key: Option<[u8; 16]>,
    ) -> Result<Replay> {
        let n = capture.telegrams.len();
        let step = i64::from(interval_s.max(1));
        let offsets: Vec<i64> = match opts.timing {
            Timing::Interval => (0..n as i64).map(|k| k * step).collect(),
            Timing::Recorded => recorded(&capture)?,
        };
        if opts.retime && capture.telegrams.iter().any(|t| t.frame.is_some()) && key.is_none() {
            bail!("--retime re-encrypts the Smarty frames of {}: give the meter's --key", capture.origin);
        }
        let last_gap = offsets.windows(2).last().map_or(step, |w| (w[1] - w[0]).max(1));
        let period = offsets.last().copied().unwrap_or(0) + last_gap;
        Ok(Replay {
            auth_key: capture.auth_key,
            telegrams: capture.telegrams,
            offsets,
            period,
            opts,
            clock,
            key,
            origin: None,
            next: 0,
            pass: 0,
            done: false,
        })
    }

    /// Whether every telegram went out and the replay does not loop.
    pub fn finished(&self) -> bool {
        self.done
    }

    pub fn len(&self) -> usize {
        self.telegrams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.telegrams.is_empty()
    }

    /// The next telegram if it is due at `at` (Unix seconds, the simulated clock); `None` when
    /// it is not yet time (recorded gaps longer than the interval) or the replay is over.
    pub fn due(&mut self, at: i64) -> Option<Due> {
        if self.done {
            return None;
        }
        let origin = *self.origin.get_or_insert(at);
        if at < origin + self.pass * self.period + self.offsets[self.next] {
            return None;
        }
        let t = &self.telegrams[self.next];
        let due = if self.opts.retime { self.retimed(t, at) } else { as_captured(t) };
        self.next += 1;
        if self.next == self.telegrams.len() {
            if self.opts.looped {
                self.next = 0;
                self.pass += 1;
            } else {
                self.done = true;
            }
        }
        Some(due)
    }

    fn retimed(&self, t: &Captured, at: i64) -> Due {
        let model = retime(&t.model(), at, &self.clock);
        let plain = model.to_bytes();
        match (&t.frame, self.key) {
            (Some(frame), Some(key)) => {
                let header = smarty::parse_header(frame).ok().flatten();
                let (title, fc) = header.map_or(([0u8; 8], 0), |h| (h.system_title, h.frame_counter));
                let mut out = Vec::with_capacity(plain.len() + smarty::OVERHEAD);
                let _ = smarty::encrypt(&key, &self.auth_key, &title, fc, &plain, &mut out);
                Due { bytes: out, model, encrypted: true }
            }
            _ => Due { bytes: plain, model, encrypted: false },
        }
    }
}

fn as_captured(t: &Captured) -> Due {
    match &t.frame {
        Some(f) => Due { bytes: f.clone(), model: t.model(), encrypted: true },
        None => Due { bytes: t.bytes.clone(), model: t.model(), encrypted: false },
    }
}

/// Seconds after the first telegram, from the log's times or else the telegrams' timestamps.
fn recorded(capture: &Capture) -> Result<Vec<i64>> {
    let logged: Option<Vec<f64>> = capture.telegrams.iter().map(|t| t.logged_at).collect();
    let stamped: Option<Vec<i64>> = capture.telegrams.iter().map(|t| t.stamp).collect();
    let times: Vec<i64> = match (logged, stamped) {
        (Some(l), _) => l.iter().map(|t| t.round() as i64).collect(),
        (None, Some(s)) => s,
        (None, None) => bail!(
            "{}: --timing recorded needs a time for every telegram (a message timestamp, or a log time from \
             --strip-prefix with a (?P<time>...) group); use --timing interval",
            capture.origin
        ),
    };
    let first = times[0];
    let mut last = 0;
    // A clock that steps back (a meter's clock set) does not send telegrams back in time.
    Ok(times
        .iter()
        .map(|t| {
            last = (t - first).max(last);
            last
        })
        .collect())
}

fn tst(t: &LocalTime, flag: bool) -> String {
    let mut v = Vec::new();
    if flag {
        t.write_tst(&mut v)
    } else {
        t.write_tst12(&mut v)
    }
    String::from_utf8_lossy(&v).into_owned()
}

/// The telegram with its message timestamp at `at` on `clock`, its M-Bus capture times moved by
/// as much (a DSMR 2.2/3 gas record without a message timestamp gets the last whole hour), and
/// its CRC recomputed as the meter writes it.
pub fn retime(model: &Telegram, at: i64, clock: &ClockRule) -> Telegram {
    let mut t = model.clone();
    let old = stamp_of(&t);
    let shift = old.map(|o| at - o);
    for line in &mut t.lines {
        let obis = line.obis.trim().to_string();
        let Some(first) = line.values.first_mut() else { continue };
        if obis == "0-0:1.0.0" && first.text.len() == 13 {
            first.text = tst(&clock.local(at), true);
        } else if (obis.ends_with(":24.2.1") || obis.ends_with(":24.2.3")) && first.text.len() == 13 {
            if let (Some(s), Some(i)) = (shift, instant(&first.text)) {
                first.text = tst(&clock.local(i + s), true);
            }
        } else if obis.ends_with(":24.3.0") && first.text.len() == 12 {
            first.text = tst(&clock.local(at - at.rem_euclid(3600)), false);
        }
    }
    if let Checksum::Text(c) = &t.checksum {
        t.checksum = if c.len() < 4 { Checksum::ComputedUnpadded } else { Checksum::Computed };
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{ReadOptions, parse};
    use p1sim_core::clock::Zone;

    const T210: &[u8] = include_bytes!(
        "../core/tests/data/real-telegrams/23-sagemcom-t210-d-esmr-5-0-nl-3-phase-with-gas-8-entry-log.txt"
    );

    fn nl() -> ClockRule {
        ClockRule { zone: Zone::Amsterdam, summer_time: true }
    }

    #[test]
    fn retiming_moves_the_clock_and_keeps_the_crc_valid() {
        let c = parse(T210, "t210", &ReadOptions::default()).unwrap();
        // 2026-07-01 10:00:00 UTC: summer time, 12:00 in Amsterdam.
        let t = retime(&c.telegrams[0].model(), 1_782_900_000, &nl());
        assert_eq!(t.line("0-0:1.0.0").unwrap().values[0].text, "260701120000S");
        // The gas reading was captured 4 min 9 s before the telegram, and still is.
        assert_eq!(t.line("0-1:24.2.1").unwrap().values[0].text, "260701115551S");
        let decoded = p1sim_core::decode::decode_all(&t.to_bytes(), None);
        assert!(decoded[0].1, "the recomputed CRC verifies");
        // The log's history is left as it was.
        assert_eq!(t.line("1-0:99.97.0"), c.telegrams[0].model().line("1-0:99.97.0"));
    }

    #[test]
    fn interval_and_recorded_timing_once_or_looped() {
        let two = [T210, T210].concat();
        let c = parse(&two, "two", &ReadOptions::default()).unwrap();
        let opts = Options { timing: Timing::Interval, looped: false, retime: false };
        let mut once = Replay::new(c.clone(), 1, nl(), opts, None).unwrap();
        assert_eq!(once.due(100).unwrap().bytes, T210);
        assert!(once.due(101).is_some());
        assert!(once.finished() && once.due(102).is_none());
        let mut looped = Replay::new(c.clone(), 1, nl(), Options { looped: true, ..opts }, None).unwrap();
        assert!((100..110).all(|t| looped.due(t).is_some()));
        // Both telegrams carry the same timestamp: recorded timing sends them in the same second.
        let mut rec = Replay::new(c, 10, nl(), Options { timing: Timing::Recorded, ..opts }, None).unwrap();
        assert!(rec.due(50).is_some() && rec.due(51).is_some());
    }
}
