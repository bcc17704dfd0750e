//! Character framing produced in software, for outputs that carry no parity (a pseudo-terminal,
//! a TCP socket): the bytes a reader receives when a meter sends with one framing and the reader's
//! UART is set to another.
//!
//! A Linux pty silently ignores 7E1 settings (serialport's `set_data_bits(Seven)` and
//! `set_parity(Even)` succeed, read back 8N1, and a byte with bit 7 set passes unchanged), so a
//! 7E1 meter has to be written as what a UART set to 7E1 hands its program: the 7 data bits. A
//! reader wrongly set to 8N1 instead sees the even-parity bit as data bit 7
//! (docs/quirks.md#7e1-read-as-8n1), which `--as-seen-by 8N1` shows.

use p1sim_core::{Framing, Parity};

/// How each byte of a telegram is changed on its way to the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteMap {
    /// The reader sees what was sent.
    Identity,
    /// A 7-bit reader: bit 7 is not data (it went into the parity slot).
    Mask7,
    /// An 8-bit reader of a 7-bit line: the parity bit arrives as bit 7.
    ParityInBit7 { odd: bool },
}

impl ByteMap {
    /// What a reader set to `reader` receives from a meter sending with `sent`.
    pub fn between(sent: Framing, reader: Framing) -> ByteMap {
        match (sent.data_bits, reader.data_bits) {
            (7, 8) if reader.parity == Parity::None => match sent.parity {
                Parity::Even => ByteMap::ParityInBit7 { odd: false },
                Parity::Odd => ByteMap::ParityInBit7 { odd: true },
                // 7N1 into 8N1: bit 7 is the stop bit, always 1.
                Parity::None => ByteMap::ParityInBit7 { odd: true },
            },
            // 8N1 into a 7-bit UART: bit 7 lands in the parity slot. Linux without INPCK ignores
            // the resulting parity errors, so the program gets the low 7 bits.
            (8, 7) | (7, 7) => ByteMap::Mask7,
            _ => ByteMap::Identity,
        }
    }

    pub fn is_identity(self) -> bool {
        self == ByteMap::Identity
    }

    pub fn byte(self, b: u8) -> u8 {
        match self {
            ByteMap::Identity => b,
            ByteMap::Mask7 => b & 0x7F,
            ByteMap::ParityInBit7 { odd } => {
                let data = b & 0x7F;
                // Even parity: the parity bit makes the number of ones even.
                let ones_odd = data.count_ones() % 2 == 1;
                let bit = ones_odd != odd;
                data | (u8::from(bit) << 7)
            }
        }
    }

    /// The mapped copy of `bytes`.
    pub fn apply(self, bytes: &[u8]) -> Vec<u8> {
        bytes.iter().map(|&b| self.byte(b)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_correct_7e1_reader_sees_7_bit_text() {
        let m = ByteMap::between(Framing::SEVEN_E1, Framing::SEVEN_E1);
        assert_eq!(m, ByteMap::Mask7);
        assert_eq!(m.apply(b"/KMP5 ZABF\r\n!"), b"/KMP5 ZABF\r\n!");
        assert_eq!(m.byte(0xC1), 0x41);
    }

    #[test]
    fn an_8n1_reader_of_a_7e1_line_sees_the_parity_bit() {
        let m = ByteMap::between(Framing::SEVEN_E1, Framing::EIGHT_N1);
        // 'A' = 0x41 has two ones: even, parity 0. 'C' = 0x43 has three: parity 1.
        assert_eq!(m.byte(b'A'), 0x41);
        assert_eq!(m.byte(b'C'), 0xC3);
        // '/' = 0x2F has five ones.
        assert_eq!(m.byte(b'/'), 0xAF);
        // Every mapped byte has an even number of ones, which is what even parity means.
        for b in 0..=0x7Fu8 {
            assert_eq!(m.byte(b).count_ones() % 2, 0, "{b:#x}");
            assert_eq!(m.byte(b) & 0x7F, b);
        }
    }

    #[test]
    fn same_framing_is_untouched() {
        assert!(ByteMap::between(Framing::EIGHT_N1, Framing::EIGHT_N1).is_identity());
        assert_eq!(ByteMap::between(Framing::EIGHT_N1, Framing::SEVEN_E1), ByteMap::Mask7);
    }
}
