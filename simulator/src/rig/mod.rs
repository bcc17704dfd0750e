//! The host side of the RP2040 rig: a client for the rig's USB serial port (protocol in
//! `p1sim_core::rig`), the rig as an output of `p1sim run`, and a simulated rig for tests.
//!
//! - [`transport`]: the byte stream to a rig (the CDC-ACM serial port, or an in-memory link) and
//!   the connector that reopens it.
//! - [`client`]: [`Rig`]: Hello and version check, configuration, chunked telegrams with bit
//!   faults, events over a channel, reconnection after the rig is unplugged.
//! - [`output`]: the rig fed by a live meter (`p1sim run --rig DEV`): telegrams at their interval
//!   boundaries as the Request line allows, captured board output to a file, counters.
//! - [`fake`]: a rig that exists only in memory, speaking the device side of the protocol; with
//!   a board model wired between its output and capture ([`twin`]), the virtual twin of a board
//!   under test.

pub mod client;
pub mod fake;
pub mod output;
pub mod transport;
pub mod twin;

#[cfg(test)]
mod tests;

pub use client::{Info, Rig, RigEvent, RigSender, Settings, protocol_plan};
pub use transport::{Connector, SerialConnector, Transport};
