//! The tag simulator: an emulated ACR122U-class reader with an NTAG on it, usable
//! in-process ([`SimTransport`]) or served to the system's real `pcscd` through the
//! vsmartcard vpcd driver ([`vpcd`]).

pub mod ntag424;
pub mod reader;
pub mod tag;
pub mod vpcd;

use std::path::{Path, PathBuf};

pub use reader::{Fault, ReaderOutcome, SimReader};
pub use tag::{SimTag, SimTagKind, TagImage};

use super::{Cause, Transport, TransportError};

/// Why a tag image file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The file cannot be read.
    #[error("cannot read the tag image {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not JSON of a tag image.
    #[error("{path} is not a tag image")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        #[source]
        source: serde_json::Error,
    },
    /// The image does not describe a tag (wrong size, bad hex).
    #[error("{path} is not a usable tag image: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The file cannot be written.
    #[error("cannot write the tag image {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The in-process transport: the driver talks to an emulated reader directly.
#[derive(Debug)]
pub struct SimTransport {
    reader: SimReader,
    present: bool,
    atr: Vec<u8>,
    image: Option<PathBuf>,
    slept: std::time::Duration,
}

impl SimTransport {
    /// A reader with `tag` on it (powered, as after a PC/SC connect).
    pub fn new(tag: SimTag, faults: Vec<Fault>) -> Self {
        let mut reader = SimReader::new(tag, faults);
        reader.power_on();
        let atr = reader.atr();
        Self {
            reader,
            present: true,
            atr,
            image: None,
            slept: std::time::Duration::ZERO,
        }
    }

    /// A reader whose tag is loaded from `path` if it exists (else a fresh `kind` tag)
    /// and saved back to it after every change.
    pub fn with_image(
        path: &Path,
        kind: SimTagKind,
        faults: Vec<Fault>,
    ) -> Result<Self, ImageError> {
        let tag = match std::fs::read(path) {
            Ok(bytes) => {
                let img: TagImage =
                    serde_json::from_slice(&bytes).map_err(|source| ImageError::Parse {
                        path: path.to_owned(),
                        source,
                    })?;
                SimTag::from_image(&img).map_err(|reason| ImageError::Invalid {
                    path: path.to_owned(),
                    reason,
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                SimTag::with_seed(kind, random_seed())
            }
            Err(source) => {
                return Err(ImageError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let mut t = Self::new(tag, faults);
        t.image = Some(path.to_owned());
        t.save().map_err(|source| ImageError::Write {
            path: path.to_owned(),
            source,
        })?;
        Ok(t)
    }

    fn save(&mut self) -> std::io::Result<()> {
        if let Some(path) = &self.image {
            save_image(path, &self.reader.tag().image())?;
        }
        Ok(())
    }

    /// The emulated reader (to inspect the tag in tests).
    pub fn reader(&self) -> &SimReader {
        &self.reader
    }

    /// The emulated reader, to change its faults between placements.
    pub fn reader_mut(&mut self) -> &mut SimReader {
        &mut self.reader
    }

    /// Puts the (same) card back on the reader after a removal.
    pub fn reinsert(&mut self) {
        self.present = true;
        self.reader.power_on();
    }

    /// Total time the slow-card fault would have cost (not actually slept in-process).
    pub fn simulated_delay(&self) -> std::time::Duration {
        self.slept
    }
}

impl Transport for SimTransport {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        if !self.present {
            return Err(TransportError::CardRemoved);
        }
        if let Some(d) = self.reader.delay() {
            self.slept += d;
        }
        let outcome = self.reader.transmit(apdu);
        if self.reader.take_dirty() {
            self.save().map_err(|e| TransportError::SimImage {
                path: self
                    .image
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                cause: Cause::of(&e),
            })?;
        }
        match outcome {
            ReaderOutcome::Reply(r) if r.len() >= 2 => Ok(r),
            ReaderOutcome::Reply(_) => Err(TransportError::NoResponse),
            ReaderOutcome::ReplyThenRemove(r) => {
                self.present = false;
                Ok(r)
            }
            ReaderOutcome::TornAway => {
                self.present = false;
                Err(TransportError::NoResponse)
            }
            ReaderOutcome::ResetByOtherClient => Err(TransportError::CardReset),
        }
    }

    fn atr(&self) -> &[u8] {
        &self.atr
    }

    fn reader_name(&self) -> &str {
        "sim"
    }

    fn reconnect(&mut self) -> Result<(), TransportError> {
        if !self.present {
            return Err(TransportError::CardRemoved);
        }
        self.reader.power_off();
        self.reader.power_on();
        Ok(())
    }
}

/// Writes a tag image atomically (temp file + rename), so a crash never leaves half a file.
pub fn save_image(path: &Path, img: &TagImage) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(img).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, path)
}

/// A seed for a new tag's UID that differs between runs (no `rand` dependency needed).
pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}
