//! The p1sim conformance suite: a shared, versioned, golden corpus of P1 inputs with the outcome
//! a correct decoder must produce, and the runner that drives any decoder through an adapter.
//!
//! - [`suite::cases`] generates the cases from profiles, faults and seeds;
//! - [`expectation::render`] writes a case's expectation for humans (the golden snapshots);
//! - [`schema`] is the decoder output schema and its comparison rules;
//! - [`verdict::judge`] decides a case from a decoder's output;
//! - [`runner`] runs a decoder under test over the suite and [`report`] writes the results.

pub mod case;
pub mod expectation;
pub mod reference;
pub mod schema;
pub mod suite;
pub mod verdict;

pub use case::{Case, Class, ExpectedTelegram};
