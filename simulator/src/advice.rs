//! The fixes for wiring and line faults, in a board builder's words, shared by the bench's
//! diagnosis of a board and the doctor's diagnosis of a capture, so both say the same thing.
//!
//! The P1 port's RJ12 pins (DSMR P1 Companion Standard 5.0.2 §5.4): 1 +5 V, 2 Request, 3 data
//! ground, 5 data (open collector, inverted), 6 power ground.

/// A missing or extra inversion between the data pin and the UART.
pub const INVERTED: &str = "The P1 data line is inverted (idle low, SPACE above 4 V). Exactly one inversion must sit \
                            between pin 5 and the UART: add an NPN transistor stage (1 kΩ into the base, 10 kΩ \
                            collector pull-up), or set the adapter's RX inversion (FT_Prog's \"Invert RXD\" on an \
                            FTDI; `inverted: true` on an ESP), or remove the second inverter if there are two (an \
                            RS-232 adapter already inverts)";

/// The open-collector data line without a pull-up: it never rises.
pub const NO_PULL_UP: &str = "The meter's data output (RJ12 pin 5) is an open collector: it only pulls the line low. \
                              Fit a pull-up of 1-10 kΩ (4.7 kΩ is usual) from pin 5 to +5 V (pin 1) or to the \
                              reader's supply, ahead of the inverter. If one is fitted, check for a crossed phone \
                              cable that swaps pins 3 and 5";

/// Request (pin 2) not held high: the meter sends nothing.
pub const REQUEST: &str = "Tie RJ12 pin 2 (Request) to +5 V (pin 1) on the board, or make the reader drive it to \
                           4-5.5 V while it reads (a GPIO or the adapter's RTS through a transistor); check that the \
                           cable is straight, not crossed";

/// Bytes lost or damaged now and then on a line whose framing is right.
pub const BIT_ERRORS: &str = "Look for noise and marginal levels: a shorter or shielded cable, a ground wire between \
                              the meter's pin 3 and the reader, decoupling at the board's supply, a pull-up of 4.7 \
                              kΩ, and a USB adapter that does not overrun";
