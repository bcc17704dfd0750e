//! The first milliseconds of a waveform as a small hand-written SVG for documentation: one row
//! per signal, a time axis, and each character written over the bits that carry it.

use std::fmt::Write as _;
use std::io::{self, Write};

use p1sim_core::wire::{Level, Run, edges};

const LEFT: f64 = 130.0;
const PLOT: f64 = 1000.0;
const ROW: f64 = 70.0;
const TOP: f64 = 40.0;
const SWING: f64 = 26.0;

/// One row: a signal and the characters to write over it (start time, text).
#[derive(Debug, Clone)]
pub struct Row<'a> {
    pub label: &'a str,
    pub runs: &'a [Run],
    pub chars: Vec<(u64, String)>,
}

/// How a byte is written over its bits: the character itself when printable, else a name.
pub fn char_label(b: u8) -> String {
    match b {
        b'\r' => "CR".into(),
        b'\n' => "LF".into(),
        b' ' => "SP".into(),
        0x21..=0x7E => (b as char).to_string(),
        _ => format!("{b:02X}"),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A 1-2-5 step giving about ten ticks over `window_ps`.
fn tick_step(window_ps: u64) -> u64 {
    let raw = (window_ps / 10).max(1);
    let mut p = 1u64;
    while p * 10 <= raw {
        p *= 10;
    }
    [1, 2, 5, 10].into_iter().map(|m| m * p).find(|s| *s >= raw).unwrap_or(10 * p)
}

fn time_label(ps: u64) -> String {
    if ps.is_multiple_of(1_000_000_000) {
        format!("{} ms", ps / 1_000_000_000)
    } else if ps.is_multiple_of(1_000_000) {
        let us = ps / 1_000_000;
        if us >= 1000 { format!("{} ms", us as f64 / 1000.0) } else { format!("{us} µs") }
    } else {
        format!("{} ns", ps / 1000)
    }
}

/// Writes `rows` over `[0, window_ps)`.
pub fn write(mut out: impl Write, title: &str, rows: &[Row<'_>], window_ps: u64) -> io::Result<()> {
    let window_ps = window_ps.max(1);
    let height = TOP + ROW * rows.len() as f64 + 40.0;
    let width = LEFT + PLOT + 20.0;
    let x = |t: u64| LEFT + PLOT * (t.min(window_ps) as f64 / window_ps as f64);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="monospace" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="{LEFT}" y="18" font-size="13">{}</text>"#, escape(title));
    let axis_y = TOP + ROW * rows.len() as f64 + 5.0;
    let step = tick_step(window_ps);
    let mut t = 0;
    while t <= window_ps {
        let _ = writeln!(
            s,
            "<line x1=\"{0:.1}\" y1=\"{TOP}\" x2=\"{0:.1}\" y2=\"{axis_y}\" stroke=\"#ddd\"/>\n<text x=\"{0:.1}\" y=\"{1}\" text-anchor=\"middle\">{2}</text>",
            x(t),
            axis_y + 15.0,
            time_label(t)
        );
        t += step;
    }
    for (i, row) in rows.iter().enumerate() {
        let base = TOP + ROW * i as f64 + ROW - 12.0;
        let y = |l: Level| if l.is_high() { base - SWING } else { base };
        let _ = writeln!(s, r#"<text x="8" y="{:.1}">{}</text>"#, base - SWING / 2.0 + 4.0, escape(row.label));
        let first = row.runs.first().map_or(Level::Low, |r| r.level);
        let mut points = format!("{:.1},{:.1}", x(0), y(first));
        for (t, l) in edges(row.runs).take_while(|(t, _)| *t < window_ps) {
            let _ = write!(points, " {:.2},{:.1} {:.2},{:.1}", x(t), y(l.flip()), x(t), y(l));
        }
        let last = edges(row.runs).take_while(|(t, _)| *t < window_ps).last().map_or(first, |e| e.1);
        let _ = write!(points, " {:.1},{:.1}", x(window_ps), y(last));
        let _ = writeln!(s, "<polyline points=\"{points}\" fill=\"none\" stroke=\"#1f5fbf\" stroke-width=\"1.3\"/>");
        for (at, text) in row.chars.iter().filter(|(at, _)| *at < window_ps) {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#b03000\">{}</text>",
                x(*at) + 1.0,
                base - SWING - 6.0,
                escape(text)
            );
        }
    }
    s.push_str("</svg>\n");
    out.write_all(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_control_characters() {
        assert_eq!(char_label(b'/'), "/");
        assert_eq!(char_label(b'\r'), "CR");
        assert_eq!(char_label(0xAF), "AF");
        assert_eq!(escape("<&>"), "&lt;&amp;&gt;");
    }

    #[test]
    fn ticks_step_one_two_five() {
        assert_eq!(tick_step(5_000_000_000), 500_000_000);
        assert_eq!(tick_step(2_000_000_000), 200_000_000);
        assert_eq!(tick_step(3_000_000_000), 500_000_000);
        assert_eq!(time_label(500_000_000), "500 µs");
        assert_eq!(time_label(1_500_000_000), "1.5 ms");
        assert_eq!(time_label(2_000_000_000), "2 ms");
    }

    #[test]
    fn the_picture_has_a_step_per_edge_and_the_labels() {
        let runs = [Run::new(Level::Low, 1_000), Run::new(Level::High, 1_000), Run::new(Level::Low, 1_000)];
        let rows = [Row { label: "p1.data", runs: &runs, chars: vec![(1_000, "<".into())] }];
        let mut out = Vec::new();
        write(&mut out, "a & b", &rows, 3_000).unwrap();
        let svg = String::from_utf8(out).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a &amp; b") && svg.contains(">&lt;</text>"));
        let poly = svg.lines().find(|l| l.starts_with("<polyline")).unwrap();
        // Start, two points per edge, end.
        assert_eq!(poly.split(' ').filter(|p| p.contains(',')).count(), 1 + 2 * 2 + 1);
    }
}
