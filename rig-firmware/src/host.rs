//! The USB side: a CDC-ACM serial port carrying `p1sim_core::rig` frames. One task reads
//! frames and dispatches the host's messages, one writes the event queue out as frames.
//!
//! A frame that cannot be read is answered with an `Error` event and forgotten; the reader
//! resynchronises at the next frame delimiter, so nothing the host sends can wedge the rig.

use embassy_executor::Spawner;
use embassy_rp::Peri;
use embassy_rp::peripherals::USB;
use embassy_rp::usb::Driver;
use embassy_usb::class::cdc_acm::{CdcAcmClass, Receiver, Sender, State};
use embassy_usb::driver::EndpointError;
use embassy_usb::{Builder, Config, UsbDevice};
use heapless::Vec;
use p1sim_core::rig::frame::{self, FrameReader};
use p1sim_core::rig::{
    DeviceMsg, ErrorCode, Hello, HostMsg, MAX_BODY, MAX_CHUNK, MAX_FRAME, Mode, PROTOCOL_VERSION, caps,
};
use static_cell::StaticCell;

use crate::Irqs;
use crate::shared::{self, CAPTURE, CONTROL, Control, EVENTS, JOBS, Job, PINS};

type UsbDriver = Driver<'static, USB>;

/// Full-speed bulk packets.
const PACKET: usize = 64;

/// Sets up the USB device and spawns its tasks.
pub fn start(spawner: &Spawner, usb: Peri<'static, USB>, irqs: Irqs) {
    let driver = Driver::new(usb, irqs);
    // The Raspberry Pi vendor ID with the Pico SDK's CDC product ID, as most Pico serial
    // firmware uses; the host tells a rig from other Pico serial ports by its Hello.
    let mut config = Config::new(0x2E8A, 0x000A);
    config.manufacturer = Some("p1sim");
    config.product = Some("p1sim rig");
    config.serial_number = Some(env!("CARGO_PKG_VERSION"));
    config.max_power = 500;
    config.max_packet_size_0 = 64;

    static CONFIG_DESC: StaticCell<[u8; 256]> = StaticCell::new();
    static BOS_DESC: StaticCell<[u8; 64]> = StaticCell::new();
    static CONTROL_BUF: StaticCell<[u8; 64]> = StaticCell::new();
    static CDC_STATE: StaticCell<State> = StaticCell::new();
    let mut builder = Builder::new(
        driver,
        config,
        CONFIG_DESC.init([0; 256]),
        BOS_DESC.init([0; 64]),
        &mut [],
        CONTROL_BUF.init([0; 64]),
    );
    let class = CdcAcmClass::new(&mut builder, CDC_STATE.init(State::new()), PACKET as u16);
    let device = builder.build();
    let (tx, rx) = class.split();
    spawner.spawn(usb_task(device).unwrap());
    spawner.spawn(reader_task(rx).unwrap());
    spawner.spawn(writer_task(tx).unwrap());
}

#[embassy_executor::task]
async fn usb_task(mut device: UsbDevice<'static, UsbDriver>) {
    device.run().await
}

#[embassy_executor::task]
async fn reader_task(mut rx: Receiver<'static, UsbDriver>) {
    static READER: StaticCell<FrameReader<MAX_FRAME>> = StaticCell::new();
    let reader = READER.init(FrameReader::new());
    let mut packet = [0u8; PACKET];
    loop {
        rx.wait_connection().await;
        shared::set_usb_up(true);
        // Whatever a previous host left half-sent is not the start of this one's frame.
        reader.reset();
        loop {
            let n = match rx.read_packet(&mut packet).await {
                Ok(n) => n,
                Err(EndpointError::Disabled) => break,
                Err(EndpointError::BufferOverflow) => continue,
            };
            let mut pos = 0;
            while pos < n {
                let (used, frame) = reader.push_versioned(&packet[pos..n]);
                pos += used;
                match frame {
                    None => {}
                    Some(Ok(received)) => {
                        shared::set_host_version(received.version);
                        match frame::decode_host(received.body) {
                            Ok(msg) => handle(msg).await,
                            Err(e) => refuse(e.code()).await,
                        }
                    }
                    Some(Err(e)) => refuse(e.code()).await,
                }
            }
        }
        shared::set_usb_up(false);
    }
}

async fn refuse((code, arg): (ErrorCode, u32)) {
    shared::flag_error();
    EVENTS.send(DeviceMsg::Error { code, arg }).await;
}

/// Acts on one host message. Replies wait for room in the event queue: the host asked.
async fn handle(msg: HostMsg<'_>) {
    match msg {
        HostMsg::Hello => EVENTS.send(DeviceMsg::Hello(hello())).await,
        HostMsg::ConfigureLine(cfg) => match crate::line::check(&cfg) {
            Ok(()) => CONTROL.send(Control::Line(cfg)).await,
            Err(e) => refuse((ErrorCode::Config, e.code())).await,
        },
        HostMsg::SetRequestMode(mode) => CONTROL.send(Control::Request(mode)).await,
        HostMsg::ConfigureCapture(cfg) => match crate::capture::check(&cfg) {
            Ok(()) => {
                let status = shared::update_status(|s| s.capture = cfg);
                CAPTURE.signal(cfg);
                EVENTS.send(DeviceMsg::Status(status)).await;
            }
            Err(e) => refuse((ErrorCode::Config, e.code())).await,
        },
        HostMsg::Send(chunk) => {
            if cfg!(feature = "standalone") {
                return refuse((ErrorCode::Unsupported, 0)).await;
            }
            let Ok(data) = Vec::from_slice(chunk.data) else {
                return refuse((ErrorCode::Oversize, MAX_CHUNK as u32)).await;
            };
            let job = Job { id: chunk.id, offset: chunk.offset, last: chunk.last, plan: chunk.plan, data };
            JOBS.send(job).await;
        }
        HostMsg::Cancel => {
            JOBS.clear();
            CONTROL.send(Control::Cancel).await;
        }
        HostMsg::Measure(request) => {
            if shared::sensor_caps() == 0 {
                return refuse((ErrorCode::Unsupported, 0)).await;
            }
            CONTROL.send(Control::Measure(request)).await;
        }
    }
}

fn hello() -> Hello<'static> {
    let mut capabilities = caps::CAPTURE | caps::REQUEST | caps::OPEN_DRAIN | shared::sensor_caps();
    let (mode, profile) = standalone_identity();
    if mode == Mode::Standalone {
        capabilities |= caps::STANDALONE;
    } else {
        capabilities |= caps::SEND;
    }
    Hello {
        protocol: PROTOCOL_VERSION,
        firmware: env!("CARGO_PKG_VERSION"),
        mode,
        profile,
        pins: PINS,
        capabilities,
        max_chunk: MAX_CHUNK as u16,
        status: shared::status(),
    }
}

#[cfg(feature = "standalone")]
fn standalone_identity() -> (Mode, &'static str) {
    (Mode::Standalone, crate::pocket::PROFILE_NAME)
}

#[cfg(not(feature = "standalone"))]
fn standalone_identity() -> (Mode, &'static str) {
    (Mode::HostDriven, "")
}

#[embassy_executor::task]
async fn writer_task(mut tx: Sender<'static, UsbDriver>) {
    static BUFS: StaticCell<([u8; MAX_BODY], [u8; MAX_FRAME])> = StaticCell::new();
    let (scratch, out) = BUFS.init(([0; MAX_BODY], [0; MAX_FRAME]));
    loop {
        tx.wait_connection().await;
        loop {
            let msg = match shared::take_events_lost() {
                Some(overrun) => overrun,
                None => EVENTS.receive().await,
            };
            // Every message fits by construction (the core's round-trip tests check the
            // largest); one that does not is dropped rather than sent half.
            let Ok(n) = frame::encode_versioned(shared::host_version(), &msg, scratch, out) else { continue };
            if write_all(&mut tx, &out[..n]).await.is_err() {
                break;
            }
        }
    }
}

async fn write_all(tx: &mut Sender<'static, UsbDriver>, bytes: &[u8]) -> Result<(), EndpointError> {
    for packet in bytes.chunks(PACKET) {
        tx.write_packet(packet).await?;
    }
    Ok(())
}
