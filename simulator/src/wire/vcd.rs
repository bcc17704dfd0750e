//! Waveforms as a VCD file (IEEE 1364 value change dump) through the `vcd` crate, for GTKWave
//! and for PulseView, whose UART decoder reads the P1 data line with "invert RX" set.
//!
//! The timescale is the largest power of ten at or below 1/256 of a bit, so edges keep the
//! fault plan's resolution while PulseView, which turns the timescale into its sample rate,
//! gets no more samples than it needs (10 ns at 115200, 100 ns at 9600).

use std::io::{self, Write};

use p1sim_core::wire::{Level, PS_PER_S, Run, edges};
use vcd::{SimulationCommand, TimescaleUnit, Value};

/// One 1-bit signal: where it sits in the hierarchy, and its runs from time 0.
#[derive(Debug, Clone, Copy)]
pub struct Signal<'a> {
    pub scope: &'a str,
    pub name: &'a str,
    pub runs: &'a [Run],
}

/// The timescale for `baud`: picoseconds per VCD time unit.
pub fn unit_ps(baud: u32) -> u64 {
    let target = PS_PER_S / u64::from(baud.max(1)) / 256;
    [1_000_000, 100_000, 10_000, 1_000, 100, 10].into_iter().find(|u| *u <= target).unwrap_or(1)
}

fn timescale(unit_ps: u64) -> (u32, TimescaleUnit) {
    match unit_ps {
        1_000_000 => (1, TimescaleUnit::US),
        100_000 => (100, TimescaleUnit::NS),
        10_000 => (10, TimescaleUnit::NS),
        1_000 => (1, TimescaleUnit::NS),
        100 => (100, TimescaleUnit::PS),
        10 => (10, TimescaleUnit::PS),
        _ => (1, TimescaleUnit::PS),
    }
}

fn value(l: Level) -> Value {
    if l.is_high() { Value::V1 } else { Value::V0 }
}

/// Writes `signals` (grouped into scopes in the order given) with `unit_ps` per time unit. An
/// edge pair closer than one unit collapses to the later level.
pub fn write(out: impl Write, signals: &[Signal<'_>], unit_ps: u64, comment: &str) -> io::Result<()> {
    let mut w = vcd::Writer::new(out);
    w.comment(comment)?;
    w.version(concat!("p1sim ", env!("CARGO_PKG_VERSION")))?;
    let (mult, unit) = timescale(unit_ps);
    w.timescale(mult, unit)?;
    let mut ids = Vec::with_capacity(signals.len());
    let mut scope: Option<&str> = None;
    for s in signals {
        if scope != Some(s.scope) {
            if scope.is_some() {
                w.upscope()?;
            }
            w.add_module(s.scope)?;
            scope = Some(s.scope);
        }
        ids.push(w.add_wire(1, s.name)?);
    }
    if scope.is_some() {
        w.upscope()?;
    }
    w.enddefinitions()?;

    let mut current: Vec<Level> = signals.iter().map(|s| s.runs.first().map_or(Level::Low, |r| r.level)).collect();
    w.timestamp(0)?;
    w.begin(SimulationCommand::Dumpvars)?;
    for (id, l) in ids.iter().zip(&current) {
        w.change_scalar(*id, value(*l))?;
    }
    w.end()?;

    let mut events: Vec<(u64, usize, Level)> = Vec::new();
    for (i, s) in signals.iter().enumerate() {
        events.extend(edges(s.runs).map(|(t, l)| (t / unit_ps, i, l)));
    }
    // Stable: within a time unit each signal's edges stay in order, so the last one wins.
    events.sort_by_key(|e| (e.0, e.1));
    let mut k = 0;
    while k < events.len() {
        let t = events[k].0;
        let mut end = k;
        while end < events.len() && events[end].0 == t {
            end += 1;
        }
        let mut stamped = false;
        for j in k..end {
            let (_, i, l) = events[j];
            let last_of_signal = events.get(j + 1).is_none_or(|n| n.0 != t || n.1 != i);
            if last_of_signal && current[i] != l {
                if !stamped {
                    w.timestamp(t)?;
                    stamped = true;
                }
                w.change_scalar(ids[i], value(l))?;
                current[i] = l;
            }
        }
        k = end;
    }
    let end = signals.iter().map(|s| p1sim_core::wire::duration(s.runs)).max().unwrap_or(0);
    w.timestamp(end.div_ceil(unit_ps))?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timescales_keep_a_256th_of_a_bit() {
        assert_eq!(unit_ps(115_200), 10_000);
        assert_eq!(unit_ps(9600), 100_000);
        assert_eq!(unit_ps(50), 1_000_000);
        assert_eq!(unit_ps(5_000_000), 100);
    }

    #[test]
    fn writes_changes_and_collapses_sub_unit_pulses() {
        let a = [Run::new(Level::Low, 10_000), Run::new(Level::High, 25_000), Run::new(Level::Low, 5_000)];
        let b = [Run::new(Level::High, 12_000), Run::new(Level::Low, 3_000), Run::new(Level::High, 50_000)];
        let mut out = Vec::new();
        let sigs = [Signal { scope: "p1", name: "a", runs: &a }, Signal { scope: "reader", name: "b", runs: &b }];
        write(&mut out, &sigs, 10_000, "test").unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("$timescale 10 ns $end"), "{text}");
        assert!(text.contains("$scope module p1 $end") && text.contains("$scope module reader $end"));
        // a rises at unit 1 and falls at unit 3; b's 3 ns dip falls inside unit 1 and vanishes.
        let body = &text[text.find("$enddefinitions").unwrap()..];
        let changes: Vec<&str> = body.lines().skip(1).collect();
        assert_eq!(changes, ["#0", "$dumpvars", "0!", "1\"", "$end", "#1", "1!", "#3", "0!", "#7"]);
    }
}
