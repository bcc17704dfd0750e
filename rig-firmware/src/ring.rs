//! A single-producer, single-consumer ring between a task and an interrupt handler: the line
//! task fills slot words that the PIO interrupt feeds to the state machine, and the interrupt
//! fills captured characters that the capture task takes.
//!
//! The Cortex-M0+ has atomic loads and stores but no compare-and-swap; one side only ever
//! writes `head` and the other only `tail`, so loads and stores are all it takes, and neither
//! side ever waits for the other.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicUsize, Ordering};

/// `N` entries of `T`; one side calls only `push`, the other only `pop`. `N` is a power of two
/// so indices wrap with a mask; they count up forever and their difference is the length.
pub struct Ring<T: Copy, const N: usize> {
    buf: UnsafeCell<[MaybeUninit<T>; N]>,
    head: AtomicUsize,
    tail: AtomicUsize,
}

// SAFETY: an entry is written by the producer before `head` is published (Release) and read by
// the consumer only after it sees that `head` (Acquire), and the producer reuses an entry only
// after the consumer has published a `tail` past it; so no entry is accessed by both at once.
unsafe impl<T: Copy + Send, const N: usize> Sync for Ring<T, N> {}

impl<T: Copy, const N: usize> Ring<T, N> {
    const MASK: usize = {
        assert!(N.is_power_of_two());
        N - 1
    };

    pub const fn new() -> Self {
        Ring { buf: UnsafeCell::new([MaybeUninit::uninit(); N]), head: AtomicUsize::new(0), tail: AtomicUsize::new(0) }
    }

    pub fn len(&self) -> usize {
        self.head.load(Ordering::Acquire).wrapping_sub(self.tail.load(Ordering::Acquire))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Producer side: appends `v`, or returns `false` when the ring is full.
    pub fn push(&self, v: T) -> bool {
        let head = self.head.load(Ordering::Relaxed);
        if head.wrapping_sub(self.tail.load(Ordering::Acquire)) >= N {
            return false;
        }
        // SAFETY: the entry at `head` is outside what the consumer may read (see `Sync`).
        unsafe { (*self.buf.get())[head & Self::MASK] = MaybeUninit::new(v) };
        self.head.store(head.wrapping_add(1), Ordering::Release);
        true
    }

    /// Consumer side: takes the oldest entry.
    pub fn pop(&self) -> Option<T> {
        let tail = self.tail.load(Ordering::Relaxed);
        if tail == self.head.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: the producer published this entry before moving `head` past it.
        let v = unsafe { (*self.buf.get())[tail & Self::MASK].assume_init() };
        self.tail.store(tail.wrapping_add(1), Ordering::Release);
        Some(v)
    }

    /// Consumer side (or either side while the other is stopped): drops everything queued.
    pub fn clear(&self) {
        self.tail.store(self.head.load(Ordering::Acquire), Ordering::Release);
    }
}
