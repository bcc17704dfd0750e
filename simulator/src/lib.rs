//! p1sim: a smart-meter simulator and test rig for the P1 port.
//!
//! The telegram engine, meter model and decoder live in `p1sim-core` (no_std, no IO). This crate
//! adds what touches the outside world: the command line, files, and (in later modules) live
//! outputs, the rig and the conformance runner.

pub mod advice;
pub mod bench;
pub mod capture;
pub mod cli;
pub mod doctor;
pub mod emit;
pub mod household;
pub mod learn;
pub mod live;
pub mod port_error;
pub mod replay;
pub mod rig;
pub mod signals;
pub mod start;
pub mod state;
pub mod wire;

pub use p1sim_core as core;
