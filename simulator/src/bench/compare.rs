//! What the reader got for one telegram against what was sent: byte errors as the edit
//! distance between the two (a lost, an extra or a changed byte each count one), and the
//! receiver's flags.

use p1sim_core::rig::{Captured, flags};

/// The comparison of one telegram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compared {
    pub byte_errors: u64,
    pub framing: u64,
    pub parity: u64,
    pub breaks: u64,
}

impl Compared {
    /// Received exactly as sent, without a flag.
    pub fn intact(&self) -> bool {
        self.byte_errors == 0 && self.flags() == 0
    }

    /// Characters the receiver flagged.
    pub fn flags(&self) -> u64 {
        self.framing + self.parity + self.breaks
    }

    pub fn add(&mut self, o: Compared) {
        self.byte_errors += o.byte_errors;
        self.framing += o.framing;
        self.parity += o.parity;
        self.breaks += o.breaks;
    }
}

/// Compares what arrived with what was sent.
pub fn compare(sent: &[u8], got: &[Captured]) -> Compared {
    let mut c = Compared::default();
    for g in got {
        c.framing += u64::from(g.flags & flags::FRAMING != 0);
        c.parity += u64::from(g.flags & flags::PARITY != 0);
        c.breaks += u64::from(g.flags & flags::BREAK != 0);
    }
    let bytes: Vec<u8> = got.iter().map(|g| g.byte).collect();
    c.byte_errors = edit_distance(sent, &bytes);
    c
}

/// Widest band of the edit-distance table, in diagonals each side: more differences than this
/// between two telegrams means the reader got garbage, and the count is then an upper bound.
const BAND: usize = 64;

/// Levenshtein distance within a band around the diagonal; where the two differ by more than
/// the band allows, the longer length (every byte wrong).
pub fn edit_distance(a: &[u8], b: &[u8]) -> u64 {
    if a == b {
        return 0;
    }
    let (n, m) = (a.len(), b.len());
    let band = BAND + n.abs_diff(m);
    if n.abs_diff(m) > 4 * BAND {
        return n.max(m) as u64;
    }
    const FAR: usize = usize::MAX / 2;
    // Row i holds columns j in [i - band, i + band], stored at offset j + band - i.
    let width = 2 * band + 1;
    let mut prev = vec![FAR; width];
    let mut cur = vec![FAR; width];
    for (j, p) in prev.iter_mut().enumerate().skip(band).take(band.min(m) + 1) {
        *p = j - band;
    }
    for i in 1..=n {
        cur.fill(FAR);
        let lo = i.saturating_sub(band);
        let hi = (i + band).min(m);
        for j in lo..=hi {
            let k = j + band - i;
            let mut best = FAR;
            if j == 0 {
                best = i;
            } else {
                // Diagonal (i-1, j-1) sits at the same offset k in the previous row.
                let sub = prev[k].saturating_add(usize::from(a[i - 1] != b[j - 1]));
                best = best.min(sub);
                // Left (i, j-1): offset k-1 in this row.
                if k > 0 {
                    best = best.min(cur[k - 1].saturating_add(1));
                }
            }
            // Up (i-1, j): offset k+1 in the previous row.
            if k + 1 < width {
                best = best.min(prev[k + 1].saturating_add(1));
            }
            cur[k] = best;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    let k = m + band - n;
    prev.get(k).copied().filter(|d| *d < FAR).map_or(n.max(m) as u64, |d| d as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(bytes: &[u8]) -> Vec<Captured> {
        bytes.iter().map(|&byte| Captured { byte, flags: 0, at_us: 0 }).collect()
    }

    #[test]
    fn one_change_of_any_kind_is_one_error() {
        let sent = b"/ISK5\\2M550T-1012\r\n\r\n1-3:0.2.8(50)\r\n!1E1D\r\n";
        assert!(compare(sent, &plain(sent)).intact());
        let mut changed = sent.to_vec();
        changed[7] = b'X';
        assert_eq!(compare(sent, &plain(&changed)).byte_errors, 1);
        let mut lost = sent.to_vec();
        lost.remove(20);
        assert_eq!(compare(sent, &plain(&lost)).byte_errors, 1);
        let mut extra = sent.to_vec();
        extra.insert(3, 0);
        assert_eq!(compare(sent, &plain(&extra)).byte_errors, 1);
        assert_eq!(compare(sent, &plain(&sent[..10])).byte_errors, (sent.len() - 10) as u64);
        assert_eq!(compare(sent, &[]).byte_errors, sent.len() as u64);
        assert_eq!(compare(b"", &plain(b"xyz")).byte_errors, 3);
    }

    #[test]
    fn it_matches_the_full_table_on_small_inputs() {
        fn full(a: &[u8], b: &[u8]) -> u64 {
            let mut prev: Vec<usize> = (0..=b.len()).collect();
            for (i, ca) in a.iter().enumerate() {
                let mut cur = vec![i + 1; b.len() + 1];
                for (j, cb) in b.iter().enumerate() {
                    cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
                }
                prev = cur;
            }
            prev[b.len()] as u64
        }
        let mut x: u32 = 7;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for _ in 0..300 {
            let a: Vec<u8> = (0..next() % 90).map(|_| (next() % 4) as u8).collect();
            let b: Vec<u8> = (0..next() % 90).map(|_| (next() % 4) as u8).collect();
            assert_eq!(edit_distance(&a, &b), full(&a, &b), "{a:?} {b:?}");
        }
    }

    #[test]
    fn flags_are_counted() {
        let got = [
            Captured { byte: 0, flags: flags::BREAK, at_us: 0 },
            Captured { byte: b'A', flags: flags::FRAMING, at_us: 0 },
            Captured { byte: b'B', flags: flags::PARITY, at_us: 0 },
        ];
        let c = compare(b"AB", &got);
        assert_eq!((c.breaks, c.framing, c.parity, c.flags()), (1, 1, 1, 3));
        assert!(!c.intact());
    }
}
