//! State and channels the tasks share: the settings in force, the event queue to the host, the
//! telegram queue to the line, and the Request level.
//!
//! Producers of events never wait for USB: when the queue is full the event is counted and an
//! `Overrun { Events }` is reported once there is room, so a missing host never stalls the line.

use core::cell::Cell;

use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::channel::Channel;
use embassy_sync::signal::Signal;
use embassy_sync::watch::Watch;
use heapless::Vec;
use p1sim_core::rig::pins::LedState;
use p1sim_core::rig::{
    Buffer, CaptureConfig, DeviceMsg, FaultPlan, LineConfig, MAX_CHUNK, MeasureRequest, PROTOCOL_VERSION, PinMap,
    RequestMode, Status,
};
use portable_atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};

type Cs = CriticalSectionRawMutex;

/// GPIO assignment; README.md documents the circuit around it.
pub const PINS: PinMap = PinMap { data: 0, request: 3, capture: 5, led: 25 };

/// Settings at power-up: a P1 port that obeys Request, and a capture of a TTL 115200 8N1 board.
const DEFAULT_STATUS: Status = Status {
    line: LineConfig::P1,
    capture: CaptureConfig::TTL,
    request_mode: RequestMode::Honour,
    request_high: false,
};

static STATUS: Mutex<Cs, Cell<Status>> = Mutex::new(Cell::new(DEFAULT_STATUS));

pub fn status() -> Status {
    STATUS.lock(Cell::get)
}

pub fn update_status(f: impl FnOnce(&mut Status)) -> Status {
    STATUS.lock(|s| {
        let mut v = s.get();
        f(&mut v);
        s.set(v);
        v
    })
}

/// Events for the host, oldest first.
pub static EVENTS: Channel<Cs, DeviceMsg<'static>, 8> = Channel::new();
static EVENTS_LOST: AtomicU32 = AtomicU32::new(0);

/// Queues an event for the host without waiting; counts it when the queue is full.
pub fn emit(msg: DeviceMsg<'static>) {
    if EVENTS.try_send(msg).is_err() {
        EVENTS_LOST.fetch_add(1, Ordering::Relaxed);
    }
}

/// The overrun report for events dropped since the last call, if any.
pub fn take_events_lost() -> Option<DeviceMsg<'static>> {
    match EVENTS_LOST.swap(0, Ordering::Relaxed) {
        0 => None,
        lost => Some(DeviceMsg::Overrun { buffer: Buffer::Events, lost }),
    }
}

/// Part of a telegram waiting for the line.
#[derive(Debug)]
pub struct Job {
    pub id: u16,
    pub offset: u32,
    pub last: bool,
    pub plan: FaultPlan,
    pub data: Vec<u8, MAX_CHUNK>,
}

/// Telegram chunks for the line. Three chunks of queue keep the line busy while USB delivers
/// the next; when it is full the host reader waits, which throttles the host through USB.
pub static JOBS: Channel<Cs, Job, 3> = Channel::new();

/// Commands for the line task, which owns the data state machine.
#[derive(Debug, Clone, Copy)]
pub enum Control {
    Line(LineConfig),
    Request(RequestMode),
    Cancel,
    /// Take the sensors' measurements with the line idle.
    Measure(MeasureRequest),
}

pub static CONTROL: Channel<Cs, Control, 4> = Channel::new();

/// New capture settings for the capture task.
pub static CAPTURE: Signal<Cs, CaptureConfig> = Signal::new();

/// The Request input's level, as last seen by the request task.
pub static REQUEST: Watch<Cs, bool, 2> = Watch::new();

/// The protocol version the host framed its last message in: answers go out in it, so a host of
/// an older release still reads them.
static HOST_VERSION: AtomicU8 = AtomicU8::new(PROTOCOL_VERSION);

pub fn set_host_version(v: u8) {
    HOST_VERSION.store(v, Ordering::Relaxed);
}

pub fn host_version() -> u8 {
    HOST_VERSION.load(Ordering::Relaxed)
}

/// The sensor capability bits, once the sensors are set up.
static SENSOR_CAPS: AtomicU32 = AtomicU32::new(0);

#[cfg(feature = "sensors")]
pub fn set_sensor_caps(caps: u32) {
    SENSOR_CAPS.store(caps, Ordering::Relaxed);
}

pub fn sensor_caps() -> u32 {
    SENSOR_CAPS.load(Ordering::Relaxed)
}

static USB_UP: AtomicBool = AtomicBool::new(false);
static SENDING: AtomicBool = AtomicBool::new(false);
/// LED ticks (50 ms) left to show an error.
static ERROR_TICKS: AtomicU8 = AtomicU8::new(0);

pub fn set_usb_up(up: bool) {
    USB_UP.store(up, Ordering::Relaxed);
}

pub fn set_sending(on: bool) {
    SENDING.store(on, Ordering::Relaxed);
}

pub fn flag_error() {
    ERROR_TICKS.store(12, Ordering::Relaxed);
}

/// What the LED should show now; called every LED tick (an error shows for 12 ticks).
pub fn led_state() -> LedState {
    let err = ERROR_TICKS.load(Ordering::Relaxed);
    if err > 0 {
        ERROR_TICKS.store(err - 1, Ordering::Relaxed);
        return LedState::Error;
    }
    if SENDING.load(Ordering::Relaxed) {
        LedState::Sending
    } else if USB_UP.load(Ordering::Relaxed) || cfg!(feature = "standalone") {
        LedState::Ready
    } else {
        LedState::Waiting
    }
}
