//! What a capture looks like, counted: how often each byte value occurs, runs of NUL (what
//! breaks and, on many adapters, framing errors arrive as), bit 7 and whether it carries the
//! even parity of the other seven, and the characters a P1 telegram is made of.

/// The counts of one capture.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub bytes: u64,
    /// How often each byte value occurs.
    pub histogram: [u64; 256],
    pub nul: u64,
    /// Stretches of consecutive NULs.
    pub nul_runs: u64,
    /// Bytes with bit 7 set.
    pub high: u64,
    /// Bytes other than NUL whose bit 7 is the even parity of bits 0-6, as it is when a 7E1
    /// character is read as 8N1.
    pub parity_in_bit7: u64,
    /// Printable ASCII, CR and LF.
    pub text: u64,
    /// Lines that start like a P1 data line: an OBIS code `A-B:C.D.E` and a bracket.
    pub obis_lines: u64,
}

impl Observation {
    pub fn of(bytes: &[u8]) -> Observation {
        let mut histogram = [0u64; 256];
        let mut nul_runs = 0;
        let mut previous = None;
        for &b in bytes {
            histogram[usize::from(b)] += 1;
            if b == 0 && previous != Some(0) {
                nul_runs += 1;
            }
            previous = Some(b);
        }
        let count =
            |pred: &dyn Fn(u8) -> bool| (0..=255u8).filter(|&b| pred(b)).map(|b| histogram[usize::from(b)]).sum();
        Observation {
            bytes: bytes.len() as u64,
            nul: histogram[0],
            nul_runs,
            high: count(&|b| b & 0x80 != 0),
            parity_in_bit7: count(&|b| b != 0 && (b & 0x80 != 0) == ((b & 0x7F).count_ones() % 2 == 1)),
            text: count(&|b| (0x20..0x7F).contains(&b) || b == b'\r' || b == b'\n'),
            obis_lines: obis_lines(bytes),
            histogram,
        }
    }

    /// The share of bytes counted by `n`, 0 for an empty capture.
    pub fn share(&self, n: u64) -> f64 {
        if self.bytes == 0 { 0.0 } else { n as f64 / self.bytes as f64 }
    }

    /// Whether the capture is nothing but NULs.
    pub fn only_nul(&self) -> bool {
        self.bytes > 0 && self.nul == self.bytes
    }

    /// The total variation distance between this capture's byte distribution and `predicted`'s:
    /// half the summed difference of the shares, 0 for the same distribution, 1 for disjoint ones.
    pub fn distance(&self, predicted: &[u32; 256]) -> f64 {
        let total: u64 = predicted.iter().map(|&n| u64::from(n)).sum();
        if self.bytes == 0 || total == 0 {
            return 1.0;
        }
        let (a, b) = (self.bytes as f64, total as f64);
        let sum: f64 =
            self.histogram.iter().zip(predicted).map(|(&x, &y)| (x as f64 / a - f64::from(y) / b).abs()).sum();
        sum / 2.0
    }

    /// The most frequent byte values, most frequent first, for evidence.
    pub fn commonest(&self, n: usize) -> Vec<(u8, u64)> {
        let mut v: Vec<(u8, u64)> =
            (0..=255u8).map(|b| (b, self.histogram[usize::from(b)])).filter(|x| x.1 > 0).collect();
        v.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        v.truncate(n);
        v
    }
}

/// Lines starting with an OBIS code and a bracket (`1-0:1.8.1(`, `0-1:24.2.1*255(`).
fn obis_lines(bytes: &[u8]) -> u64 {
    bytes
        .split(|&b| b == b'\n')
        .filter(|line| {
            let mut groups = 0;
            let mut digits = 0;
            for &b in line.iter() {
                match b {
                    b'0'..=b'9' if digits < 3 => digits += 1,
                    b'-' | b':' | b'.' | b'*' if digits > 0 && groups < 5 => {
                        groups += 1;
                        digits = 0;
                    }
                    b'(' => return groups >= 4 && digits > 0,
                    _ => return false,
                }
            }
            false
        })
        .count() as u64
}

/// `0x9F ×120, 0xA3 ×88`: the commonest bytes, for evidence.
pub fn show_commonest(o: &Observation, n: usize) -> String {
    o.commonest(n).iter().map(|(b, c)| format!("0x{b:02X} ×{c}")).collect::<Vec<_>>().join(", ")
}

/// A share as a percentage with sensible precision: `37 %`, `0.4 %`.
pub fn percent(share: f64) -> String {
    let p = share * 100.0;
    if p == 0.0 || p >= 10.0 {
        format!("{p:.0} %")
    } else if p >= 1.0 {
        format!("{p:.1} %")
    } else {
        format!("{p:.2} %")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_a_reader_sees() {
        // '/' is 0x2F (five ones: its even-parity bit is 1); read as 8N1 it arrives as 0xAF.
        let o = Observation::of(&[0xAF, b'1', 0, 0, b'\r', 0, 0xFF]);
        assert_eq!((o.bytes, o.nul, o.nul_runs, o.high, o.text), (7, 3, 2, 2, 2));
        // 0xAF carries its parity in bit 7; 0xFF (seven ones, parity 1) too; '1' (0x31, three
        // ones) does not; CR (0x0D, three ones) does not.
        assert_eq!(o.parity_in_bit7, 2);
        assert_eq!(o.commonest(2), [(0, 3), (b'\r', 1)]);
        assert!(!o.only_nul() && Observation::of(&[0, 0]).only_nul() && !Observation::of(&[]).only_nul());
        let lines = Observation::of(
            b"/ISK5\\2M550T\r\n1-0:1.8.1(001.000*kWh)\r\n0-1:24.2.1*255(1)\r\n1-0:(x)\r\n(00124.477)\r\n",
        );
        assert_eq!(lines.obis_lines, 2);
    }

    #[test]
    fn distance_is_zero_for_the_same_shares_and_one_for_disjoint_ones() {
        let o = Observation::of(b"aabb");
        let mut same = [0u32; 256];
        same[usize::from(b'a')] = 10;
        same[usize::from(b'b')] = 10;
        assert_eq!(o.distance(&same), 0.0);
        let mut other = [0u32; 256];
        other[0] = 5;
        assert_eq!(o.distance(&other), 1.0);
        let mut half = [0u32; 256];
        half[usize::from(b'a')] = 1;
        half[0] = 1;
        assert!((o.distance(&half) - 0.5).abs() < 1e-12);
        assert_eq!(Observation::of(b"").distance(&same), 1.0);
        assert_eq!((percent(0.37), percent(0.004), percent(0.05)), ("37 %".into(), "0.40 %".into(), "5.0 %".into()));
    }
}
