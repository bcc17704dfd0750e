//! The production loop (`bench --loop`): the operator scans or types a board's serial number,
//! the plan runs, the verdict shows, and the tally of the day grows: tested, passed, and failed
//! per cause. It can run all day; an empty line or end of input stops it.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, Read};

use super::diagnose::Cause;
use super::measure::Outcome;
use super::record::Record;

/// Longest serial number taken from the operator.
pub const MAX_SERIAL: usize = 64;

/// The running count of a session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub tested: u64,
    pub passed: u64,
    /// Failed boards by cause code.
    pub failed: BTreeMap<&'static str, u64>,
    /// Runs the station could not complete.
    pub errors: u64,
}

impl Tally {
    pub fn add(&mut self, r: &Record) {
        self.tested += 1;
        match r.outcome {
            Outcome::Pass | Outcome::Skip => self.passed += 1,
            Outcome::Fail => *self.failed.entry(cause_code(r.diagnosis.cause)).or_default() += 1,
            Outcome::Error => self.errors += 1,
        }
    }
}

fn cause_code(c: Cause) -> &'static str {
    c.code()
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed: u64 = self.failed.values().sum();
        write!(f, "tested {}, passed {}, failed {}", self.tested, self.passed, failed)?;
        if !self.failed.is_empty() {
            let causes: Vec<String> = self.failed.iter().map(|(c, n)| format!("{c} {n}")).collect();
            write!(f, " ({})", causes.join(", "))?;
        }
        if self.errors > 0 {
            write!(f, ", could not test {}", self.errors)?;
        }
        Ok(())
    }
}

/// Reads the next serial number: `None` at the end of input or on an empty line. Lines longer
/// than [`MAX_SERIAL`] are refused with a message, and the operator asked again.
pub fn next_serial(input: &mut impl BufRead, prompt: &mut dyn FnMut(&str)) -> std::io::Result<Option<String>> {
    loop {
        prompt("Scan or type the next board's serial number (empty line to stop): ");
        let mut line = String::new();
        // A scanner sends a line; anything far longer is not a serial number, so reading stops
        // at a bounded length.
        let n = input.by_ref().take(4096).read_line(&mut line)?;
        if n == 0 {
            return Ok(None);
        }
        let serial = line.trim();
        if serial.is_empty() {
            return Ok(None);
        }
        if serial.chars().count() > MAX_SERIAL || serial.chars().any(char::is_control) {
            prompt(&format!("that is not a serial number (at most {MAX_SERIAL} printable characters); try again\n"));
            if !line.ends_with('\n') {
                // Skip the rest of an over-long line.
                let mut rest = Vec::new();
                input.by_ref().take(1 << 20).read_until(b'\n', &mut rest)?;
            }
            continue;
        }
        return Ok(Some(serial.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_come_one_a_line_until_an_empty_one() {
        let mut input = std::io::Cursor::new("SN-1\n  SN-2  \n\nSN-3\n");
        let mut said = String::new();
        let mut prompt = |s: &str| said.push_str(s);
        assert_eq!(next_serial(&mut input, &mut prompt).unwrap().as_deref(), Some("SN-1"));
        assert_eq!(next_serial(&mut input, &mut prompt).unwrap().as_deref(), Some("SN-2"));
        assert_eq!(next_serial(&mut input, &mut prompt).unwrap(), None);
        assert!(said.contains("serial number"));
    }

    #[test]
    fn an_over_long_line_is_refused_and_asked_again() {
        let long = "x".repeat(100);
        let mut input = std::io::Cursor::new(format!("{long}\nSN-9\n"));
        let mut said = String::new();
        let got = next_serial(&mut input, &mut |s: &str| said.push_str(s)).unwrap();
        assert_eq!(got.as_deref(), Some("SN-9"));
        assert!(said.contains("not a serial number"), "{said}");
        let mut eof = std::io::Cursor::new("");
        assert_eq!(next_serial(&mut eof, &mut |_| {}).unwrap(), None);
    }
}
