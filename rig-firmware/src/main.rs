//! The p1sim rig firmware for a Raspberry Pi Pico: it drives a real P1 data signal into an
//! interface board under test and reads the board's TTL output back, steered by the `p1sim`
//! host over USB CDC-ACM with the protocol in `p1sim_core::rig` (or, in the `standalone`
//! build, generating telegrams itself from a compiled-in profile).
//!
//! Tasks: `host` (USB, frames in and out), `line` (the data output through PIO0 SM0, Request
//! handling, and the measurements of `sensors` with their edge timers on SM2 and SM3), `capture`
//! (PIO0 SM1 UART receiver), `request` (edges of the Request input), the LED and the watchdog.
//! They talk through the channels in `shared`.

#![no_std]
#![no_main]

mod capture;
mod feed;
mod host;
mod line;
#[cfg(feature = "standalone")]
mod pocket;
// PIO instruction literals are grouped by field (opcode, delay/side-set, operand, data).
#[allow(clippy::unusual_byte_groupings)]
mod programs;
mod ring;
#[cfg(feature = "sensors")]
mod sensors;
mod shared;
mod slots;

use embassy_executor::Spawner;
use embassy_rp::gpio::{Input, Level, Output, Pull};
use embassy_rp::peripherals::{PIO0, USB};
use embassy_rp::pio::Pio;
use embassy_rp::watchdog::Watchdog;
use embassy_rp::{bind_interrupts, pio, usb};
use embassy_time::{Duration, Ticker};
use panic_halt as _;

use p1sim_core::rig::pins::{LED_TICK_MS, StatusLed};

use crate::shared::PINS;

bind_interrupts!(struct Irqs {
    USBCTRL_IRQ => usb::InterruptHandler<USB>;
    PIO0_IRQ_0 => pio::InterruptHandler<PIO0>;
    PIO0_IRQ_1 => feed::FeedHandler;
});

#[embassy_executor::main(executor = "embassy_rp::executor::Executor", entry = "cortex_m_rt::entry")]
async fn main(spawner: Spawner) {
    let p = embassy_rp::init(Default::default());

    // A panic halts the core (panic-halt); the watchdog then resets the board, so a rig that
    // met a bug comes back instead of hanging the test run.
    let mut watchdog = Watchdog::new(p.WATCHDOG);
    watchdog.start(Duration::from_millis(500));
    spawner.spawn(watchdog_task(watchdog).unwrap());

    #[allow(unused_variables, unused_mut)]
    let Pio { mut common, sm0, sm1, sm2, sm3, .. } = Pio::new(p.PIO0, Irqs);
    let rx_program = programs::CaptureProgram::load(&mut common);
    let capture_pin = common.make_pio_pin(p.PIN_5);
    let data_pin = common.make_pio_pin(p.PIN_0);
    #[cfg(feature = "sensors")]
    let sensors = {
        // The sense input's GPIO: an ordinary input the edge timers read through `jmp pin`.
        static SENSE: static_cell::StaticCell<Input<'static>> = static_cell::StaticCell::new();
        SENSE.init(Input::new(p.PIN_6, Pull::None));
        let parts = sensors::Parts {
            adc: p.ADC,
            line: p.PIN_26,
            request: p.PIN_27,
            output: p.PIN_28,
            load: p.PIN_7,
            i2c: p.I2C0,
            sda: p.PIN_8,
            scl: p.PIN_9,
        };
        let s = sensors::Sensors::new(parts, &mut common, sm2, sm3, &data_pin);
        shared::set_sensor_caps(s.capabilities());
        Some(s)
    };
    #[cfg(not(feature = "sensors"))]
    let sensors = None;
    // The Request sense divider holds the pin low when nothing drives Request ("high
    // impedance" = stop, DSMR 5.0.2 §5.7.1); the pull-down covers an unconnected pin.
    let request = Input::new(p.PIN_3, Pull::Down);
    let led = Output::new(p.PIN_25, Level::Low);
    debug_assert_eq!(PINS.led, 25);

    // The slot feed and capture interrupt; the tasks it serves start below.
    feed::init();
    spawner.spawn(capture::task(sm1, capture_pin, rx_program).unwrap());
    spawner.spawn(line::task(common, sm0, data_pin, sensors).unwrap());
    spawner.spawn(line::request_task(request).unwrap());
    spawner.spawn(led_task(led).unwrap());
    host::start(&spawner, p.USB, Irqs);

    #[cfg(feature = "standalone")]
    spawner.spawn(pocket::task().unwrap());
}

/// Feeds the watchdog while the executor runs.
#[embassy_executor::task]
async fn watchdog_task(mut watchdog: Watchdog) {
    let mut ticker = Ticker::every(Duration::from_millis(100));
    loop {
        watchdog.feed(Duration::from_millis(500));
        ticker.next().await;
    }
}

/// The LED: off with no host (host-driven build), on when idle and ready, blinking while a
/// telegram is on the line, and a quick double flash after an error (`rig::pins::LedState`).
#[embassy_executor::task]
async fn led_task(led: Output<'static>) {
    let mut led = StatusLed::new(led);
    let mut ticker = Ticker::every(Duration::from_millis(LED_TICK_MS));
    loop {
        // embassy-rp's pins cannot fail (`Infallible`).
        let Ok(()) = led.show(shared::led_state());
        ticker.next().await;
    }
}
