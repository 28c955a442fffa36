//! `provisioner keys new` and `keys rotate`: the brand's NTAG 424 DNA key file
//! ([`tapkit_core::ntag424::keyfile`]), created owner-only. No key is ever printed.

use std::path::{Path, PathBuf};

use tapkit_core::ntag424::crypto::Key;
use tapkit_core::ntag424::keyfile::KeyFile;

use crate::cli::CliError;

fn fresh_key() -> Result<Key, CliError> {
    let mut k = [0u8; 16];
    getrandom::fill(&mut k).map_err(|e| CliError::KeyFileIo {
        doing: "make a key for",
        path: PathBuf::from("(random source)"),
        error: std::io::Error::other(e.to_string()),
    })?;
    Ok(k)
}

/// Writes `text` to `path` readable by its owner only: a new file with `create_new`,
/// else (rotation) a temporary file synced and renamed over the old one, so a crash
/// leaves the old file or the new one, never half of either.
fn write_private(path: &Path, text: &str, replace: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let target = if replace {
        let mut t = path.as_os_str().to_owned();
        t.push(".new");
        let t = PathBuf::from(t);
        // A leftover of a crashed rotation holds nothing the old file lacks.
        let _ = std::fs::remove_file(&t);
        t
    } else {
        path.to_owned()
    };
    let mut f = opts.open(&target)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    if replace {
        std::fs::rename(&target, path)?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// `keys new --out FILE`.
pub fn new(out: &Path) -> Result<(), CliError> {
    if out.exists() {
        return Err(CliError::KeyFileExists {
            path: out.to_owned(),
        });
    }
    let file = KeyFile::new(fresh_key()?);
    write_private(out, &file.render(), false).map_err(|error| {
        if error.kind() == std::io::ErrorKind::AlreadyExists {
            CliError::KeyFileExists {
                path: out.to_owned(),
            }
        } else {
            CliError::KeyFileIo {
                doing: "write",
                path: out.to_owned(),
                error,
            }
        }
    })?;
    println!(
        "created {} with key version 1 (readable by you only)\n\
         verify their taps:   give the server the same file as TAPKIT_SUN_KEYS_FILE\n\
         keep a copy safe: without it no card keyed with it can be re-keyed",
        out.display()
    );
    Ok(())
}

/// Reads and parses a key file.
pub fn load(path: &Path) -> Result<KeyFile, CliError> {
    let text = std::fs::read_to_string(path).map_err(|error| CliError::KeyFileIo {
        doing: "read",
        path: path.to_owned(),
        error,
    })?;
    KeyFile::parse(&text).map_err(|error| CliError::KeyFileBad {
        path: path.to_owned(),
        error,
    })
}

/// `keys rotate --keys FILE`.
pub fn rotate(path: &Path) -> Result<(), CliError> {
    let mut file = load(path)?;
    let version = file
        .rotate(fresh_key()?)
        .ok_or_else(|| CliError::KeyVersionsFull {
            path: path.to_owned(),
        })?;
    write_private(path, &file.render(), true).map_err(|error| CliError::KeyFileIo {
        doing: "write",
        path: path.to_owned(),
        error,
    })?;
    println!(
        "added key version {version} to {}: cards written from now on get it; cards of older versions still verify\n\
         copy the file to the server (TAPKIT_SUN_KEYS_FILE) and restart it before writing new cards",
        path.display()
    );
    Ok(())
}
