//! Serves a [`SimReader`] to the system's `pcscd` through the vsmartcard vpcd driver.
//!
//! vpcd (inside pcscd) listens on TCP; we connect to it, and an open connection means a
//! card is on the reader. Every frame both ways is a 2-byte big-endian length and the
//! payload. One-byte payloads from vpcd are control codes (0 power off, 1 power on,
//! 2 reset, 4 get ATR — the only one that takes a reply); longer ones are APDUs.
//!
//! vpcd writes length and payload in two `send()` calls without TCP_NODELAY, so Nagle
//! on its side waits for our delayed ACK: 40–90 ms per message. Turning `TCP_QUICKACK`
//! on before every read (Linux resets it) brings a round trip down to ~70 µs
//! (`shared/docs/virtual-reader.md` §7).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use socket2::SockRef;

use super::{ReaderOutcome, SimReader, save_image};

/// How the bridge behaves around removals.
#[derive(Debug, Clone)]
pub struct VpcdOptions {
    /// Where vpcd listens (127.0.0.1:35963 for slot 0 by default).
    pub addr: SocketAddr,
    /// Save the tag image here after every change.
    pub image: Option<PathBuf>,
    /// After a pulled or torn card, put the same card back after this long.
    pub reinsert_after: Duration,
    /// How long to keep trying to reach vpcd at start (pcscd may still be starting).
    pub connect_timeout: Duration,
}

/// Serves `reader` until `stop` is set. Returns an error when vpcd cannot be reached.
pub fn serve(mut reader: SimReader, opts: &VpcdOptions, stop: &AtomicBool) -> io::Result<()> {
    loop {
        let mut stream = connect(opts.addr, opts.connect_timeout, stop)?;
        tracing::info!(addr = %opts.addr, "card presented to vpcd");
        let removed = session(&mut stream, &mut reader, opts, stop)?;
        drop(stream); // closing the connection takes the card off the reader
        if !removed || stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        tracing::info!(after = ?opts.reinsert_after, "card removed; presenting it again");
        let until = Instant::now() + opts.reinsert_after;
        while Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn connect(addr: SocketAddr, timeout: Duration, stop: &AtomicBool) -> io::Result<TcpStream> {
    let deadline = Instant::now() + timeout;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(s) => {
                s.set_nodelay(true)?;
                s.set_read_timeout(Some(Duration::from_millis(200)))?;
                return Ok(s);
            }
            Err(e) if Instant::now() < deadline && !stop.load(Ordering::Relaxed) => {
                tracing::debug!(%e, "vpcd not reachable yet");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot reach the vpcd virtual reader at {addr}: {e}"),
                ));
            }
        }
    }
}

/// Fills `buf`; `Ok(false)` when vpcd closed the connection or we were stopped.
fn read_full(s: &mut TcpStream, buf: &mut [u8], stop: &AtomicBool) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        // Linux clears QUICKACK after use; without it every exchange stalls ~40 ms.
        SockRef::from(&*s).set_tcp_quickack(true)?;
        match s.read(&mut buf[got..]) {
            Ok(0) => return Ok(false),
            Ok(k) => got += k,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if stop.load(Ordering::Relaxed) {
                    return Ok(false);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Reads one frame; `Ok(None)` when vpcd closed the connection or we were stopped.
fn read_frame(s: &mut TcpStream, stop: &AtomicBool) -> io::Result<Option<Vec<u8>>> {
    let mut header = [0u8; 2];
    if !read_full(s, &mut header, stop)? {
        return Ok(None);
    }
    let mut payload = vec![0u8; usize::from(u16::from_be_bytes(header))];
    if !read_full(s, &mut payload, stop)? {
        return Ok(None);
    }
    Ok(Some(payload))
}

fn write_frame(s: &mut TcpStream, data: &[u8]) -> io::Result<()> {
    let len = u16::try_from(data.len()).map_err(|_| io::Error::other("frame too large"))?;
    let mut frame = Vec::with_capacity(2 + data.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(data);
    s.write_all(&frame) // header and payload in one write
}

/// Runs one card presence; returns `true` when the card was pulled or torn (to be
/// presented again), `false` when vpcd went away or we were stopped.
fn session(
    s: &mut TcpStream,
    reader: &mut SimReader,
    opts: &VpcdOptions,
    stop: &AtomicBool,
) -> io::Result<bool> {
    while let Some(frame) = read_frame(s, stop)? {
        match frame.as_slice() {
            [0] => reader.power_off(),
            [1] => reader.power_on(),
            [2] => {
                reader.power_off();
                reader.power_on();
            }
            [4] => write_frame(s, &reader.atr())?,
            [other] => tracing::warn!(code = other, "unknown vpcd control code"),
            apdu => {
                if let Some(d) = reader.delay() {
                    std::thread::sleep(d);
                }
                tracing::trace!(apdu = %tapkit_core::ndef::Hex(apdu), "vpcd →");
                let outcome = match reader.transmit(apdu) {
                    // vpcd cannot tell the client about a reset: the command runs on
                    // the freshly reset tag, as after another client's SCardReconnect.
                    ReaderOutcome::ResetByOtherClient => reader.transmit(apdu),
                    other => other,
                };
                if reader.take_dirty()
                    && let Some(path) = &opts.image
                {
                    save_image(path, &reader.tag().image())?;
                }
                match outcome {
                    ReaderOutcome::Reply(r) => {
                        tracing::trace!(resp = %tapkit_core::ndef::Hex(&r), "vpcd ←");
                        write_frame(s, &r)?;
                    }
                    ReaderOutcome::ReplyThenRemove(r) => {
                        write_frame(s, &r)?;
                        return Ok(true);
                    }
                    ReaderOutcome::TornAway => return Ok(true),
                    ReaderOutcome::ResetByOtherClient => write_frame(s, &[0x63, 0x00])?,
                }
            }
        }
    }
    Ok(false)
}
