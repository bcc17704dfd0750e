//! Line coding of one character: the symbols of a UART frame, least significant data bit first.
//!
//! Bit `i` of a [`CharFrame`] is the `i`-th bit time on the line: 0 is the start bit, 1 to
//! `data_bits` are the data bits LSB first, then the parity bit if the framing has one, then one
//! or two stop bits. A 1 is [`Symbol::Mark`]. Fault plans name bits by the same index.

use crate::spec::{Framing, Parity};
use crate::wire::Symbol;

/// The symbols of one character frame: bit `i` of `bits` is bit time `i`, 1 meaning mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CharFrame {
    pub bits: u16,
    /// Bit times in the frame: start + data + parity + stop.
    pub len: u8,
}

impl CharFrame {
    /// The frame of `byte` in `framing`. With fewer than 8 data bits the high bits of `byte` are
    /// not sent, as a UART configured for 7 bits drops them; parity covers the bits sent.
    pub const fn new(byte: u8, framing: Framing) -> CharFrame {
        let d = framing.data_bits as u32;
        let data = byte as u16 & ((1u16 << d) - 1);
        let mut bits = data << 1;
        let mut len = 1 + d;
        match framing.parity {
            Parity::None => {}
            Parity::Even => {
                bits |= ((data.count_ones() & 1) as u16) << len;
                len += 1;
            }
            Parity::Odd => {
                bits |= ((!data.count_ones() & 1) as u16) << len;
                len += 1;
            }
        }
        let stop = framing.stop_bits as u32;
        bits |= ((1u16 << stop) - 1) << len;
        len += stop;
        CharFrame { bits, len: len as u8 }
    }

    /// The symbol of bit time `i` (mark past the end: the line idles).
    #[inline]
    pub const fn symbol(self, i: u8) -> Symbol {
        Symbol::from_bit(i >= self.len || (self.bits >> i) & 1 == 1)
    }

    /// The frame with bit time `i` inverted (no change past the end).
    #[inline]
    pub const fn flipped(self, i: u8) -> CharFrame {
        if i >= self.len { self } else { CharFrame { bits: self.bits ^ (1 << i), len: self.len } }
    }
}

/// Index of the parity bit in a frame, if the framing has one.
pub const fn parity_index(framing: Framing) -> Option<u8> {
    match framing.parity {
        Parity::None => None,
        _ => Some(1 + framing.data_bits),
    }
}

/// Index of the first stop bit: the last bit a receiver samples.
pub const fn stop_index(framing: Framing) -> u8 {
    1 + framing.data_bits + if matches!(framing.parity, Parity::None) { 0 } else { 1 }
}

/// The parity bit `framing` gives `data` (the low `data_bits` bits), or `None` without parity.
pub const fn parity_bit(data: u8, framing: Framing) -> Option<bool> {
    let ones = (data as u16 & ((1u16 << framing.data_bits) - 1)).count_ones();
    match framing.parity {
        Parity::None => None,
        Parity::Even => Some(ones & 1 == 1),
        Parity::Odd => Some(ones & 1 == 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame written as a binary number, fields separated by spaces: stop, (parity,) data
    /// from bit 7 down to bit 0, start.
    fn bits(s: &str) -> u16 {
        u16::from_str_radix(&s.replace(' ', ""), 2).unwrap()
    }

    #[test]
    fn eight_n1_sends_lsb_first_between_start_and_stop() {
        // 'A' = 0x41 = 0b0100_0001: start 0, data 1 0 0 0 0 0 1 0, stop 1.
        let f = CharFrame::new(b'A', Framing::EIGHT_N1);
        assert_eq!(f.len, 10);
        assert_eq!(f.bits, bits("1 01000001 0"));
        assert_eq!(f.symbol(0), Symbol::Space);
        assert_eq!(f.symbol(1), Symbol::Mark);
        assert_eq!(f.symbol(9), Symbol::Mark);
        assert_eq!(f.symbol(10), Symbol::Mark, "past the end the line idles");
    }

    #[test]
    fn seven_e1_adds_even_parity_over_seven_bits() {
        // '/' = 0x2F has five ones: even parity makes the parity bit 1.
        let f = CharFrame::new(b'/', Framing::SEVEN_E1);
        assert_eq!(f.len, 10);
        assert_eq!(f.bits, bits("1 1 0101111 0"));
        // 'A' has two ones: parity 0; bit 7 of the byte is never sent.
        assert_eq!(CharFrame::new(b'A' | 0x80, Framing::SEVEN_E1).bits, bits("1 0 1000001 0"));
        assert_eq!(parity_bit(b'/', Framing::SEVEN_E1), Some(true));
        assert_eq!(parity_index(Framing::SEVEN_E1), Some(8));
        assert_eq!(stop_index(Framing::SEVEN_E1), 9);
    }

    #[test]
    fn odd_parity_and_two_stop_bits() {
        let f = CharFrame::new(0x00, Framing { data_bits: 8, parity: Parity::Odd, stop_bits: 2 });
        assert_eq!(f.len, 12);
        assert_eq!(f.bits, bits("11 1 00000000 0"));
        assert_eq!(stop_index(Framing { data_bits: 8, parity: Parity::Odd, stop_bits: 2 }), 10);
    }

    #[test]
    fn flipping_inverts_one_bit_time_only() {
        let f = CharFrame::new(b'A', Framing::EIGHT_N1);
        assert_eq!(f.flipped(9).bits, bits("0 01000001 0"));
        assert_eq!(f.flipped(0).symbol(0), Symbol::Mark);
        assert_eq!(f.flipped(10), f);
    }
}
