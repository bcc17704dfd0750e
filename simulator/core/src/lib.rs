//! The no_std heart of p1sim: the DSMR/P1 telegram model and its rendering, CRC-16/ARC, the
//! reference decoder, Smarty encryption, the household and meter model, and the profiles.
//!
//! Nothing here does IO. Time comes in as Unix seconds, bytes go out into buffers; the `p1sim`
//! binary and the rig firmware decide where they come from and go to.
//!
//! Features: without any, the crate builds for `thumbv6m-none-eabi` with no allocator and offers
//! the CRC, OBIS, line settings, formatting and the Smarty frame parser. `alloc` adds the telegram
//! model, profiles, generator, meter model and decoder; `std` adds profile loading from TOML and
//! the built-in profile table.

#![cfg_attr(not(any(test, feature = "std")), no_std)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod clock;
pub mod crc;
pub mod format;
pub mod noise;
pub mod obis;
pub mod rig;
pub mod smarty;
pub mod spec;
pub mod tariff;
pub mod wire;

#[cfg(feature = "alloc")]
pub mod decode;
#[cfg(feature = "alloc")]
pub mod fault;
#[cfg(feature = "alloc")]
pub mod generator;
#[cfg(feature = "alloc")]
pub mod household;
#[cfg(feature = "alloc")]
pub mod identity;
#[cfg(feature = "alloc")]
pub mod meter;
#[cfg(feature = "alloc")]
pub mod profile;
#[cfg(feature = "alloc")]
pub mod readings;
#[cfg(feature = "alloc")]
pub mod render;
#[cfg(feature = "alloc")]
pub mod telegram;

#[cfg(feature = "std")]
pub mod builtin;
#[cfg(feature = "std")]
pub mod events;
#[cfg(feature = "std")]
pub mod input;

pub use obis::Obis;
pub use spec::{Country, Framing, LineSettings, Parity, Spec};
