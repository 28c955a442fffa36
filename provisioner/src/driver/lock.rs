//! Permanent locking: the CC goes read-only, the dynamic and static lock bits are set and
//! the configuration is frozen (CFGLCK), so neither the URL nor the mirror can change.

use serde::Serialize;
use tapkit_core::ntag::access;

use super::{DriverError, LockState, TagDriver};
use crate::reader::Transport;

/// What `lock` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockReport {
    /// Tag type.
    #[serde(rename = "type")]
    pub tag_type: tapkit_core::ntag::TagType,
    /// UID, hex.
    pub uid: String,
    /// The URL now frozen on the card, if any.
    pub url: Option<String>,
    /// The card was already fully locked.
    pub already_locked: bool,
    /// Pages written.
    pub pages_written: usize,
}

impl<T: Transport> TagDriver<T> {
    /// Locks the card for good. Refuses unless `permanent` is true.
    pub fn lock(
        &mut self,
        permanent: bool,
        password: Option<[u8; 4]>,
    ) -> Result<LockReport, DriverError> {
        let info = self.read()?;
        if let Some(reason) = info.unsupported {
            return Err(DriverError::Unsupported {
                tag: info.tag_type,
                reason,
            });
        }
        let layout = info.tag_type.layout().ok_or(DriverError::Locked)?;
        let snap = self.snapshot(layout, 3)?;
        let (static_bits, dyn_bits) = layout.full_lock_bytes();
        let cc = [
            snap.memory[12],
            snap.memory[13],
            snap.memory[14],
            snap.memory[15],
        ];
        let lock = [snap.memory[10], snap.memory[11]];
        let mut writes: Vec<(u8, [u8; 4])> = Vec::new();
        if cc[3] & 0x0F != 0x0F {
            writes.push((3, [0, 0, 0, 0x0F]));
        }
        if snap.dyn_lock[..3] != dyn_bits {
            writes.push((layout.dyn_lock, [dyn_bits[0], dyn_bits[1], dyn_bits[2], 0]));
        }
        if snap.cfg1[0] & access::CFGLCK == 0 {
            let mut c1 = snap.cfg1;
            c1[0] |= access::CFGLCK;
            writes.push((layout.cfg1, c1));
        }
        if lock != static_bits {
            writes.push((2, [0, 0, static_bits[0], static_bits[1]])); // static bits last
        }
        if writes.is_empty() {
            return Ok(LockReport {
                tag_type: info.tag_type,
                uid: info.uid,
                url: info.url,
                already_locked: true,
                pages_written: 0,
            });
        }
        if !permanent {
            return Err(DriverError::NeedsConfirmation);
        }
        if info.password_protected {
            self.pwd_auth(password.ok_or(DriverError::PasswordRequired)?)?;
        }
        for &(p, d) in &writes {
            self.write_page(p, d)?;
        }
        let after = self.read()?;
        if after.lock != LockState::ReadOnly || !after.config_locked {
            return Err(DriverError::VerifyFailed {
                page: 2,
                expected: "read-only".into(),
                found: format!("{:?}", after.lock),
            });
        }
        Ok(LockReport {
            tag_type: info.tag_type,
            uid: info.uid,
            url: info.url,
            already_locked: false,
            pages_written: writes.len(),
        })
    }
}
