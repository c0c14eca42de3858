//! The whole pile firmware as it would be linked for a Cortex-M4F: twelve
//! sockets, each with a BL0942 meter, an NTC, a relay and an RCD fault
//! line, ticked once a second, and the Modbus RTU slave answering frames.
//!
//! It exists to measure the release code size for the MCU target (see
//! docs/firmware.md and docs/BENCHMARKS.md); the "peripherals" are volatile
//! reads and writes at fixed addresses so the optimiser keeps everything.
//! It is built only with the `mcu-example` feature:
//!
//! ```text
//! cargo build -p gridwatch-firmware --release --target thumbv7em-none-eabihf \
//!     --example pile_mcu --features mcu-example
//! ```

#![no_std]
#![no_main]

use core::convert::Infallible;
use core::ptr::{read_volatile, write_volatile};

use embedded_hal::digital::{ErrorType, InputPin, OutputPin};
use embedded_hal_nb::nb;
use embedded_hal_nb::serial;
use gridwatch_firmware::controller::{
    Measurement, PileController, PileLimits, Protections, SocketController,
};
use gridwatch_firmware::drivers::bl0942::Bl0942;
use gridwatch_firmware::drivers::ntc::Ntc;
use gridwatch_firmware::drivers::relay::Relay;
use gridwatch_firmware::drivers::residual::FaultInput;
use gridwatch_firmware::slave::rtu::{respond, FrameReceiver, MAX_ADU};

const SOCKETS: usize = 12;
const UART_DATA: usize = 0x4000_4400;
const GPIO_OUT: usize = 0x4002_0014;
const GPIO_IN: usize = 0x4002_0010;
const ADC_DATA: usize = 0x4001_204C;
const TICK_MS: usize = 0x2000_0000;

/// A UART data register; the status flags are left out of this sketch.
struct Uart(usize);

impl serial::ErrorType for Uart {
    type Error = Infallible;
}

impl serial::Read<u8> for Uart {
    fn read(&mut self) -> nb::Result<u8, Infallible> {
        // SAFETY: a fixed MMIO address on the target; never run on a host.
        Ok(unsafe { read_volatile(self.0 as *const u8) })
    }
}

impl serial::Write<u8> for Uart {
    fn write(&mut self, word: u8) -> nb::Result<(), Infallible> {
        // SAFETY: as above.
        unsafe { write_volatile(self.0 as *mut u8, word) };
        Ok(())
    }

    fn flush(&mut self) -> nb::Result<(), Infallible> {
        Ok(())
    }
}

/// One bit of a GPIO port.
struct Gpio(u32);

impl ErrorType for Gpio {
    type Error = Infallible;
}

impl OutputPin for Gpio {
    fn set_low(&mut self) -> Result<(), Infallible> {
        // SAFETY: as above.
        unsafe { write_volatile(GPIO_OUT as *mut u32, !self.0) };
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        // SAFETY: as above.
        unsafe { write_volatile(GPIO_OUT as *mut u32, self.0) };
        Ok(())
    }
}

impl InputPin for Gpio {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        // SAFETY: as above.
        Ok(unsafe { read_volatile(GPIO_IN as *const u32) } & self.0 != 0)
    }

    fn is_low(&mut self) -> Result<bool, Infallible> {
        self.is_high().map(|h| !h)
    }
}

fn now_ms() -> u64 {
    // SAFETY: as above.
    unsafe { read_volatile(TICK_MS as *const u64) }
}

#[no_mangle]
pub extern "C" fn _start() -> ! {
    let Ok(socket) = SocketController::new(Protections::default()) else {
        halt()
    };
    let mut pile = PileController::new(
        [const { None::<SocketController> }; SOCKETS].map(|_| socket.clone()),
        PileLimits::default(),
    );
    let mut meters = [0usize; SOCKETS].map(|_| Bl0942::new(Uart(UART_DATA)));
    let mut relays = [0u32; SOCKETS].map(|_| Relay::new(Gpio(1)).ok());
    let mut rcds = [0u32; SOCKETS].map(|_| FaultInput::new(Gpio(2)));
    let ntc = Ntc::default();
    let mut rx = FrameReceiver::new(9600);
    let mut reply = [0u8; MAX_ADU];
    let mut uart = Uart(UART_DATA + 4);
    loop {
        let now = now_ms();
        let mut readings = [Measurement::default(); SOCKETS];
        for (i, m) in readings.iter_mut().enumerate() {
            let meter = meters[i].read().ok();
            // SAFETY: as above.
            let raw = unsafe { read_volatile((ADC_DATA + 4 * i) as *const u16) };
            *m = Measurement {
                voltage_v: meter.map_or(0.0, |r| r.voltage_v),
                current_a: meter.map_or(0.0, |r| r.current_a),
                power_w: meter.map_or(0.0, |r| r.power_w),
                temperature_c: ntc.celsius(raw).unwrap_or(f32::MAX),
                residual_ma: 0,
                residual_fault: rcds[i].is_tripped().unwrap_or(true),
            };
        }
        pile.tick(now, |n| readings[usize::from(n - 1)], |_, _| {});
        for (i, relay) in relays.iter_mut().enumerate() {
            if let (Some(relay), Ok(c)) = (relay, pile.socket(i as u16 + 1)) {
                let _ = relay.set(c.relay_on());
            }
        }
        if let Ok(byte) = serial::Read::read(&mut uart) {
            rx.push(byte, now * 1000);
        }
        if let Some(frame) = rx.poll(now * 1000) {
            let mut copy = [0u8; MAX_ADU];
            let n = frame.len();
            copy[..n].copy_from_slice(frame);
            let len = respond(&mut pile, 1, &copy[..n], &mut reply);
            for &b in &reply[..len] {
                let _ = serial::Write::write(&mut uart, b);
            }
        }
    }
}

fn halt() -> ! {
    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    halt()
}
