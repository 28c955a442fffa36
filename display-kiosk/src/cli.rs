//! The command line: `enroll`, `run` and `snapshot` (clap derive; `main` parses it and
//! hands it to [`crate::run`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::frame::Pad;

/// The Tapkit counter display: the brand, "tap your phone here to book", and a QR code
/// for phones without NFC, whose URL carries a token that rotates every minute and is
/// signed by this kiosk, so the server knows the scan came from this counter.
///
/// Set up once: the admin creates a kiosk for the partner (POST /api/admin/kiosks) and
/// gives you an enrolment code; run `display-kiosk enroll`. Then `display-kiosk run`
/// serves the display on 127.0.0.1 for a browser in kiosk mode (see docs/kiosk.md). It
/// keeps working offline from its cache and reports its health to the server.
#[derive(Debug, Parser)]
#[command(name = "display-kiosk", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
#[allow(rustdoc::bare_urls)] // the doc comments are the `--help` text, read in a terminal
pub enum Command {
    /// Trade a one-time enrolment code for this kiosk's identity (stored owner-only in
    /// the state directory), and fetch the display settings once.
    Enroll {
        /// The Tapkit server, e.g. https://book.example.com (where /api/kiosk/... is served).
        #[arg(long)]
        server: String,
        /// The enrolment code the admin gave you, e.g. 7KQ2M-9XD4P (case and hyphens do
        /// not matter; codes are single-use and expire after a day).
        #[arg(long)]
        code: String,
        /// Where the kiosk keeps its state [default: $STATE_DIRECTORY, else
        /// $XDG_STATE_HOME/tapkit-kiosk, else ~/.local/state/tapkit-kiosk].
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Serve the display on 127.0.0.1 and keep it in sync with the server (forever:
    /// network errors, a bad config from the server or a full disk never stop it).
    Run {
        /// Where the kiosk keeps its state (as for enroll).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Where to serve the page; point the kiosk browser at it.
        #[arg(long, default_value = "127.0.0.1:8088")]
        listen: SocketAddr,
        /// Where the NFC pad sits relative to the screen; the pointer points there.
        #[arg(long, value_enum, default_value = "below")]
        pad: Pad,
        /// Longest wait between retries while the server is unreachable, seconds.
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(2..=3600))]
        max_backoff_secs: u64,
        /// Check members in at this front desk: watch this PC/SC reader (its name, or a
        /// unique part of it, as `provisioner readers` lists them). A member card placed on
        /// it is checked in with the server, and the answer (first name, plan, visits left,
        /// add-on discount, priority, or why not) fills the screen for a few seconds. While
        /// the server is unreachable, members are checked in from the signed roster and
        /// the check-ins are queued on disk until it is back.
        #[arg(long, value_name = "NAME")]
        reader: Option<String>,
        /// With --reader: how long a check-in's answer stays on the screen, seconds.
        #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u64).range(2..=120))]
        checkin_secs: u64,
    },
    /// Render the frame the screen shows right now to a PNG (from the cached settings;
    /// no network needed).
    Snapshot {
        /// Where the kiosk keeps its state (as for enroll).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Screen size, WIDTHxHEIGHT, e.g. 800x480 or 1080x1920 (portrait).
        #[arg(long, value_parser = parse_size)]
        size: (u32, u32),
        /// Where the NFC pad sits relative to the screen.
        #[arg(long, value_enum, default_value = "below")]
        pad: Pad,
        /// The PNG to write.
        out: PathBuf,
    },
}

/// Reads `WIDTHxHEIGHT`, each 160 to 7680 pixels.
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{s:?} is not a size like 800x480 (width x height, 160 to 7680 each)");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h): (u32, u32) = (
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    );
    if !(160..=7680).contains(&w) || !(160..=7680).contains(&h) {
        return Err(bad());
    }
    Ok((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_read_like_800x480() {
        assert_eq!(parse_size("800x480"), Ok((800, 480)));
        assert_eq!(parse_size("1080X1920"), Ok((1080, 1920)));
        assert_eq!(parse_size(" 160 x 7680 "), Ok((160, 7680)));
        for bad in [
            "800by480", "800x", "x480", "159x480", "800x7681", "-800x480", "",
        ] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.contains("800x480"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn run_has_its_defaults() {
        let cli = Cli::try_parse_from(["display-kiosk", "run"]).unwrap();
        let Command::Run {
            listen,
            pad,
            max_backoff_secs,
            state_dir,
            reader,
            checkin_secs,
        } = cli.command
        else {
            panic!("not run: {cli:?}");
        };
        assert_eq!(listen.to_string(), "127.0.0.1:8088");
        assert_eq!(
            (pad, max_backoff_secs, state_dir, reader, checkin_secs),
            (Pad::Below, 300, None, None, 6)
        );
        assert!(Cli::try_parse_from(["display-kiosk", "run", "--max-backoff-secs", "1"]).is_err());
    }
}
