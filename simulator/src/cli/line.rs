//! Options shared by `emit` and `wave` for the bit-level line: the interface board, the
//! reader's UART and bit-level faults, parsed into the core's wire-model types.

use std::io::Write;

use anyhow::{Context, Result, bail};
use p1sim_core::profile::Profile;
use p1sim_core::spec::LineSettings;
use p1sim_core::wire::board::Board;
use p1sim_core::wire::fault::sort_faults;
use p1sim_core::wire::{BitFault, BitSpan, FaultPlan, ReceiverConfig, Symbol};

use super::Outcome;
use crate::wire::{Setup, Through};

/// Runs `f` writing straight into `w`, or, when any line option is given, onto the simulated
/// line whose reader's UART output goes to `w`. Then the reader's counts go to stderr, and the
/// outcome is `Problems` unless the reader got exactly the bytes sent, unflagged.
pub fn emit_via<W: Write, T>(
    args: &LineArgs,
    scenario: Option<&FaultPlan<Vec<BitFault>>>,
    profile: &Profile,
    w: &mut W,
    f: impl FnOnce(&mut dyn Write) -> Result<T>,
) -> Result<(T, Outcome)> {
    if !args.is_set() && scenario.is_none() {
        return Ok((f(w)?, Outcome::Ok));
    }
    let plan = args.plan_with(profile.line, scenario)?;
    let setup =
        Setup { line: profile.line, plan: plan.as_ref(), board: args.board()?, receiver: args.receiver(profile.line) };
    let mut through = Through::new(setup, profile.interval_s, &mut *w)?;
    let value = f(&mut through)?;
    let (_, report) = through.finish().context("cannot write what the reader received")?;
    eprintln!("{}", report.summary());
    Ok((value, if report.intact { Outcome::Ok } else { Outcome::Problems }))
}

/// The `--through` help: the syntax and every built-in board.
fn through_help() -> String {
    let mut s = String::from(
        "Put the telegrams on a simulated P1 line (inverted, open collector) through a virtual interface \
         board, and report what the reader's UART gets. BOARD is one of the names below; options adjust it: \
         cable=METRES (the RC of a long cable), pullup=OHMS|none, request=on|off.\n\nBoards:",
    );
    for b in p1sim_core::builtin::boards().unwrap_or_default() {
        s.push_str(&format!("\n  {:<26} {}", b.name, b.summary));
    }
    s.push_str("\n\nA path to a board file (a [board] table, `p1sim boards` shows the format) works as well.");
    s.push_str("\n\nExample: --through transistor-inverter,cable=30");
    s
}

/// The line model's options.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LineArgs {
    /// Send through a virtual interface board: BOARD|FILE[,cable=M][,pullup=OHMS|none][,request=on|off].
    #[arg(long, value_name = "BOARD|FILE[,OPTIONS]", long_help = through_help())]
    pub through: Option<String>,
    /// The reader's UART, BAUD-FRAMING[-inv][-nul]: e.g. 115200-8N1, 9600-7E1, 115200-8N1-inv for an
    /// inverting input, 9600-8N1-nul for a driver that hands characters with framing or parity
    /// errors over as NUL (FTDI-style; without -nul they arrive as read, CH341-style). Defaults to
    /// the profile's own line settings, not inverting.
    #[arg(long, value_name = "BAUD-FRAMING[-inv][-nul]", value_parser = parse_receiver)]
    pub receiver: Option<ReceiverConfig>,
    /// Flip bit BIT of character CHAR (bytes count from 0; bit 0 is the start bit, then the data bits
    /// LSB first, the parity bit, the stop bits); repeatable. E.g. 3:9 breaks the stop bit of an 8N1 byte.
    #[arg(long, value_name = "CHAR:BIT")]
    pub flip: Vec<String>,
    /// Force the line to space (or mark) for WIDTH bits, AT bits after the start edge of character
    /// CHAR; repeatable. E.g. 5:3.5:0.25 or 5:12:1:space.
    #[arg(long, value_name = "CHAR:AT:WIDTH[:mark|space]")]
    pub glitch: Vec<String>,
    /// Transmitter baud skew in percent: 3 sends 3 % fast, -2.5 slow.
    #[arg(long, value_name = "PCT", allow_negative_numbers = true)]
    pub skew: Option<f64>,
    /// Extra idle after every character, in bits (fractions allowed).
    #[arg(long, value_name = "BITS")]
    pub gap: Option<f64>,
    /// Extra idle of BITS after character CHAR; repeatable.
    #[arg(long, value_name = "CHAR:BITS")]
    pub idle: Vec<String>,
    /// A break (space) of BITS after character CHAR; repeatable.
    #[arg(long = "break", value_name = "CHAR:BITS")]
    pub brk: Vec<String>,
}

fn parse_receiver(s: &str) -> Result<ReceiverConfig, String> {
    s.parse::<ReceiverConfig>().map_err(|e| e.to_string())
}

impl LineArgs {
    /// Whether any option asks for the line model.
    pub fn is_set(&self) -> bool {
        self.through.is_some() || self.receiver.is_some() || self.has_faults()
    }

    fn has_faults(&self) -> bool {
        !(self.flip.is_empty() && self.glitch.is_empty() && self.idle.is_empty() && self.brk.is_empty())
            || self.skew.is_some()
            || self.gap.is_some()
    }

    /// The board of `--through`, if given.
    pub fn board(&self) -> Result<Option<Board>> {
        self.through.as_deref().map(|s| Board::parse_spec(s).context("--through")).transpose()
    }

    /// The reader's UART: `--receiver`, or the meter's own settings.
    pub fn receiver(&self, meter: LineSettings) -> ReceiverConfig {
        self.receiver.unwrap_or(ReceiverConfig::new(meter))
    }

    /// The bit-level fault plan, sorted and checked against the meter's framing: a scenario's
    /// `[wire]` table with the command line's faults added; `--skew` and `--gap` given on the
    /// command line replace the scenario's.
    pub fn plan_with(
        &self,
        meter: LineSettings,
        base: Option<&FaultPlan<Vec<BitFault>>>,
    ) -> Result<FaultPlan<Vec<BitFault>>> {
        let mut faults = base.map(|p| p.faults.clone()).unwrap_or_default();
        for s in &self.flip {
            let [c, bit] = fields::<2>(s, "--flip", "CHAR:BIT, e.g. 3:9")?;
            faults.push(BitFault::Flip { char: num(c, "--flip", s)?, bit: num(bit, "--flip", s)? });
        }
        for s in &self.glitch {
            let parts: Vec<&str> = s.split(':').collect();
            if !(3..=4).contains(&parts.len()) {
                bail!("--glitch {s:?}: expected CHAR:AT:WIDTH[:mark|space], e.g. 5:3.5:0.25");
            }
            let level = match parts.get(3).copied() {
                None | Some("space") => Symbol::Space,
                Some("mark") => Symbol::Mark,
                Some(other) => bail!("--glitch {s:?}: the level is mark or space, not {other:?}"),
            };
            faults.push(BitFault::Glitch {
                char: num(parts[0], "--glitch", s)?,
                at: bits(parts[1], "--glitch", s)?,
                width: bits(parts[2], "--glitch", s)?,
                level,
            });
        }
        for s in &self.idle {
            let [c, len] = fields::<2>(s, "--idle", "CHAR:BITS, e.g. 10:20")?;
            faults.push(BitFault::Idle { after: num(c, "--idle", s)?, length: bits(len, "--idle", s)? });
        }
        for s in &self.brk {
            let [c, len] = fields::<2>(s, "--break", "CHAR:BITS, e.g. 10:30")?;
            faults.push(BitFault::Break { after: num(c, "--break", s)?, length: bits(len, "--break", s)? });
        }
        sort_faults(&mut faults);
        let skew_ppm = match self.skew {
            None => base.map_or(0, |p| p.skew_ppm),
            Some(p) if p.is_finite() && p.abs() <= 50.0 => (p * 10_000.0).round() as i32,
            Some(p) => bail!("--skew {p}: give a percentage between -50 and 50, e.g. 3 or -2.5"),
        };
        let gap = match self.gap {
            None => base.map_or(BitSpan::ZERO, |p| p.gap),
            Some(g) => {
                BitSpan::from_bits_f64(g).with_context(|| format!("--gap {g}: give 0 or more bits, e.g. 0.5"))?
            }
        };
        let plan = FaultPlan { faults, skew_ppm, gap };
        plan.check(meter.framing).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(plan)
    }
}

fn fields<'a, const N: usize>(s: &'a str, option: &str, syntax: &str) -> Result<[&'a str; N]> {
    let parts: Vec<&str> = s.split(':').collect();
    parts.try_into().map_err(|_| anyhow::format_err!("{option} {s:?}: expected {syntax}"))
}

fn num<T: std::str::FromStr>(text: &str, option: &str, whole: &str) -> Result<T> {
    text.trim().parse().map_err(|_| anyhow::format_err!("{option} {whole:?}: {text:?} is not a whole number"))
}

fn bits(text: &str, option: &str, whole: &str) -> Result<BitSpan> {
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(BitSpan::from_bits_f64)
        .with_context(|| format!("{option} {whole:?}: {text:?} is not a number of bits such as 3 or 0.25"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use p1sim_core::spec::Framing;

    const LINE: LineSettings = LineSettings { baud: 115_200, framing: Framing::EIGHT_N1 };

    #[test]
    fn fault_options_become_a_sorted_plan() {
        let args = LineArgs {
            flip: vec!["7:9".into(), "2:0".into()],
            glitch: vec!["5:3.5:0.25:mark".into()],
            brk: vec!["9:30".into()],
            skew: Some(-2.5),
            gap: Some(0.5),
            ..LineArgs::default()
        };
        let plan = args.plan_with(LINE, None).unwrap();
        assert_eq!(
            plan.faults,
            [
                BitFault::Flip { char: 2, bit: 0 },
                BitFault::Glitch { char: 5, at: BitSpan(896), width: BitSpan(64), level: Symbol::Mark },
                BitFault::Flip { char: 7, bit: 9 },
                BitFault::Break { after: 9, length: BitSpan::bits(30) },
            ]
        );
        assert_eq!((plan.skew_ppm, plan.gap), (-25_000, BitSpan(128)));
        assert!(args.is_set());
        assert!(!LineArgs::default().is_set());
    }

    #[test]
    fn bad_fault_options_say_what_is_expected() {
        let err = |args: LineArgs| args.plan_with(LINE, None).unwrap_err().to_string();
        assert!(err(LineArgs { flip: vec!["3".into()], ..LineArgs::default() }).contains("CHAR:BIT"));
        assert!(err(LineArgs { flip: vec!["3:10".into()], ..LineArgs::default() }).contains("bits 0 (start) to 9"));
        assert!(err(LineArgs { glitch: vec!["1:2:-1".into()], ..LineArgs::default() }).contains("number of bits"));
        assert!(err(LineArgs { skew: Some(80.0), ..LineArgs::default() }).contains("between -50 and 50"));
    }
}
