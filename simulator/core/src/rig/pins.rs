//! The rig's pin logic, written against the embedded-hal 1.0 traits so it runs on the RP2040
//! (embassy-rp's `Input` and `Output` implement them) and in host tests with mock pins: the
//! Request input as a stream of level changes, the gate that decides whether a telegram may go
//! out, and the status LED's blink patterns.
//!
//! Timing-critical gating stays in the PIO program (it checks Request before every slot); what
//! lives here are the decisions around it.

use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal_async::digital::Wait;

use super::RequestMode;

/// Whether a telegram may be on the line: always when Request is ignored, otherwise only while
/// Request is high (DSMR 5.0.2 §5.7.1: high impedance or low means stop).
pub const fn may_send(mode: RequestMode, request_high: bool) -> bool {
    match mode {
        RequestMode::Ignore => true,
        RequestMode::Honour => request_high,
    }
}

/// The Request input as level changes: an edge after which the pin reads the level it had
/// before (a pulse shorter than the time it takes to read the pin) is not reported, so every
/// reported change alternates high, low, high.
#[derive(Debug)]
pub struct RequestInput<P> {
    pin: P,
    high: bool,
}

impl<P: InputPin + Wait> RequestInput<P> {
    pub fn new(mut pin: P) -> Result<Self, P::Error> {
        let high = pin.is_high()?;
        Ok(RequestInput { pin, high })
    }

    /// The level last reported (or read at start).
    pub fn is_high(&self) -> bool {
        self.high
    }

    /// Waits for the level to differ from the last one reported and returns the new level.
    pub async fn changed(&mut self) -> Result<bool, P::Error> {
        loop {
            // Read before waiting too: a change between the last read and arming the edge
            // detector would otherwise go unnoticed until the next edge.
            let now = self.pin.is_high()?;
            if now != self.high {
                self.high = now;
                return Ok(now);
            }
            self.pin.wait_for_any_edge().await?;
        }
    }
}

/// What the status LED shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LedState {
    /// Off: no host has opened the serial port (host-driven build).
    Waiting,
    /// On: idle and ready.
    Ready,
    /// Blinking at 5 Hz: a telegram is on the line.
    Sending,
    /// A double flash: a frame or message was refused.
    Error,
}

/// Milliseconds per LED tick: the patterns below are drawn in these steps.
pub const LED_TICK_MS: u64 = 50;

impl LedState {
    /// Whether the LED is lit on tick `tick` (ticks of [`LED_TICK_MS`]).
    pub const fn lit(self, tick: u32) -> bool {
        match self {
            LedState::Waiting => false,
            LedState::Ready => true,
            LedState::Sending => tick % 4 < 2,
            LedState::Error => matches!(tick % 6, 0 | 2),
        }
    }
}

/// The status LED: call [`StatusLed::show`] every [`LED_TICK_MS`] with the state to show.
#[derive(Debug)]
pub struct StatusLed<P> {
    pin: P,
    tick: u32,
    state: Option<LedState>,
}

impl<P: OutputPin> StatusLed<P> {
    pub fn new(pin: P) -> Self {
        StatusLed { pin, tick: 0, state: None }
    }

    /// Sets the LED for this tick. A new state starts its pattern from the beginning, so an
    /// error always shows its first flash at once.
    pub fn show(&mut self, state: LedState) -> Result<(), P::Error> {
        if self.state != Some(state) {
            self.state = Some(state);
            self.tick = 0;
        }
        let lit = state.lit(self.tick);
        self.tick = self.tick.wrapping_add(1);
        if lit { self.pin.set_high() } else { self.pin.set_low() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::convert::Infallible;
    use core::future::Future;
    use core::pin::pin;
    use core::task::{Context, Poll, Waker};
    use embedded_hal::digital::ErrorType;
    use std::collections::VecDeque;

    /// A Request pin that plays back levels: each wait for an edge moves to the next one;
    /// with none left the wait never ends.
    struct ScriptedPin {
        level: bool,
        next: VecDeque<bool>,
        waits: usize,
    }

    impl ErrorType for ScriptedPin {
        type Error = Infallible;
    }

    impl InputPin for ScriptedPin {
        fn is_high(&mut self) -> Result<bool, Infallible> {
            Ok(self.level)
        }
        fn is_low(&mut self) -> Result<bool, Infallible> {
            Ok(!self.level)
        }
    }

    impl Wait for ScriptedPin {
        async fn wait_for_high(&mut self) -> Result<(), Infallible> {
            unreachable!("RequestInput waits for edges only")
        }
        async fn wait_for_low(&mut self) -> Result<(), Infallible> {
            unreachable!("RequestInput waits for edges only")
        }
        async fn wait_for_rising_edge(&mut self) -> Result<(), Infallible> {
            unreachable!("RequestInput waits for edges only")
        }
        async fn wait_for_falling_edge(&mut self) -> Result<(), Infallible> {
            unreachable!("RequestInput waits for edges only")
        }
        async fn wait_for_any_edge(&mut self) -> Result<(), Infallible> {
            self.waits += 1;
            match self.next.pop_front() {
                Some(level) => {
                    self.level = level;
                    Ok(())
                }
                None => core::future::pending().await,
            }
        }
    }

    /// Polls a future once: the mock pins never return Pending unless nothing is left.
    fn poll_once<F: Future>(f: F) -> Option<F::Output> {
        let mut f = pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        }
    }

    fn request(level: bool, script: &[bool]) -> RequestInput<ScriptedPin> {
        RequestInput::new(ScriptedPin { level, next: script.iter().copied().collect(), waits: 0 }).unwrap()
    }

    #[test]
    fn changes_alternate_and_bounces_are_swallowed() {
        // low; a pulse that is back low by the time it is read; high; high again; low.
        let mut r = request(false, &[false, true, true, false]);
        assert!(!r.is_high());
        assert_eq!(poll_once(r.changed()), Some(Ok(true)));
        assert_eq!(r.pin.waits, 2, "the first edge left the level low");
        assert_eq!(poll_once(r.changed()), Some(Ok(false)));
        assert!(!r.is_high());
        assert_eq!(poll_once(r.changed()), None, "no more edges: still waiting");
    }

    #[test]
    fn a_change_before_the_wait_is_not_lost() {
        let mut r = request(false, &[]);
        r.pin.level = true; // changed after `new` read it, before anyone waited
        assert_eq!(poll_once(r.changed()), Some(Ok(true)));
        assert_eq!(r.pin.waits, 0);
    }

    #[test]
    fn the_gate_follows_the_mode() {
        assert!(may_send(RequestMode::Ignore, false));
        assert!(may_send(RequestMode::Honour, true));
        assert!(!may_send(RequestMode::Honour, false));
    }

    /// An LED that records every level it was set to.
    #[derive(Default)]
    struct RecordingPin(Vec<bool>);

    impl ErrorType for RecordingPin {
        type Error = Infallible;
    }

    impl OutputPin for RecordingPin {
        fn set_low(&mut self) -> Result<(), Infallible> {
            self.0.push(false);
            Ok(())
        }
        fn set_high(&mut self) -> Result<(), Infallible> {
            self.0.push(true);
            Ok(())
        }
    }

    fn pattern(led: &mut StatusLed<RecordingPin>, state: LedState, ticks: usize) -> Vec<bool> {
        led.pin.0.clear();
        for _ in 0..ticks {
            led.show(state).unwrap();
        }
        led.pin.0.clone()
    }

    #[test]
    fn led_patterns() {
        let mut led = StatusLed::new(RecordingPin::default());
        assert_eq!(pattern(&mut led, LedState::Waiting, 3), [false; 3]);
        assert_eq!(pattern(&mut led, LedState::Ready, 3), [true; 3]);
        assert_eq!(pattern(&mut led, LedState::Sending, 8), [true, true, false, false, true, true, false, false]);
        // A double flash per 300 ms, and a new state restarts its pattern at once.
        assert_eq!(pattern(&mut led, LedState::Error, 7), [true, false, true, false, false, false, true]);
        led.show(LedState::Ready).unwrap();
        assert_eq!(pattern(&mut led, LedState::Error, 1), [true]);
    }
}
