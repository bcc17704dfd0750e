//! The pocket meter (`standalone` feature): the core's generator runs on the Pico itself,
//! with the profile, seed and key build.rs compiled in, and its telegrams go through the same
//! line task as the host's, at the profile's interval, baud rate and framing, honouring Request.
//!
//! Like a meter, it renders a telegram every interval whether or not anyone listens, and sends
//! it only if Request is high at that moment: a telegram is never held back and sent late.

use core::mem::MaybeUninit;

use embassy_time::{Duration, Instant, Timer};
use embedded_alloc::LlffHeap as Heap;
use heapless::Vec as HVec;
use p1sim_core::generator::Generator;
use p1sim_core::profile::Profile;
use p1sim_core::rig::{DeviceMsg, Drive, ErrorCode, FaultPlan, LineConfig, MAX_CHUNK, Polarity, RequestMode};

use crate::shared::{self, CONTROL, Control, JOBS, Job};

/// The compiled-in profile's name, reported in Hello.
pub const PROFILE_NAME: &str = include_str!(concat!(env!("OUT_DIR"), "/profile_name.txt"));
static PROFILE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/profile.bin"));
static SEED: [u8; 8] = *include_bytes!(concat!(env!("OUT_DIR"), "/seed.bin"));
static KEY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/key.bin"));

/// The meter's clock starts here at power-up (2026-01-01T00:00:00Z): there is no RTC to ask.
const EPOCH: i64 = 1_767_225_600;

/// Heap for the generator: the meter model, the compiled template and one telegram.
const HEAP_SIZE: usize = 64 * 1024;

#[global_allocator]
static HEAP: Heap = Heap::empty();

#[embassy_executor::task]
pub async fn task() {
    static mut HEAP_MEM: [MaybeUninit<u8>; HEAP_SIZE] = [MaybeUninit::uninit(); HEAP_SIZE];
    // SAFETY: called once, before anything allocates; HEAP_MEM is used by nothing else.
    unsafe { HEAP.init(core::ptr::addr_of_mut!(HEAP_MEM) as usize, HEAP_SIZE) };

    let Ok(profile) = postcard::from_bytes::<Profile>(PROFILE) else {
        return fail();
    };
    let key = <[u8; 16]>::try_from(KEY).ok();
    let line = LineConfig {
        baud: profile.line.baud,
        framing: profile.line.framing,
        polarity: Polarity::Inverted,
        drive: Drive::OpenDrain,
        oversampling: LineConfig::P1.oversampling,
    };
    CONTROL.send(Control::Line(line)).await;
    CONTROL.send(Control::Request(RequestMode::Honour)).await;
    let household = profile.household.clone();
    let Ok(mut generator) = Generator::new(profile, household, u64::from_le_bytes(SEED), EPOCH, key) else {
        return fail();
    };
    let booted = Instant::now();
    let mut telegram = alloc::vec::Vec::with_capacity(2048);
    let mut id: u16 = 0;
    loop {
        telegram.clear();
        let emitted = generator.next_into(&mut telegram);
        let due = booted + Duration::from_secs(u64::try_from(emitted.at - EPOCH).unwrap_or(0));
        Timer::at(due).await;
        // A meter with Request low renders and discards; one still sending the previous
        // telegram (a slow baud rate) skips this one rather than queue it late.
        if !shared::status().request_high || !JOBS.is_empty() {
            continue;
        }
        id = id.wrapping_add(1);
        let chunks = telegram.len().div_ceil(MAX_CHUNK);
        for (i, part) in telegram.chunks(MAX_CHUNK).enumerate() {
            let Ok(data) = HVec::from_slice(part) else { break };
            let offset = (i * MAX_CHUNK) as u32;
            JOBS.send(Job { id, offset, last: i + 1 == chunks, plan: FaultPlan::default(), data }).await;
        }
    }
}

/// The compiled-in profile cannot run (the build checks this, so only a corrupted image gets
/// here): tell the host, show it on the LED, and stay silent on the line.
fn fail() {
    shared::flag_error();
    shared::emit(DeviceMsg::Error { code: ErrorCode::Unsupported, arg: 1 });
}

extern crate alloc;
