//! Why a command failed, and the exit status each failure gives. Every message says
//! what failed and what to do; `main` prints it after `display-kiosk: `.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::state::StateError;

/// The process's exit status. `run` never ends by itself on a network or server problem,
/// so a non-zero status from it means it could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitStatus {
    /// Done (or `run` stopped by SIGTERM / Ctrl-C).
    Ok = 0,
    /// Something on this box failed: the state directory, the listen address, a file.
    Failed = 1,
    /// The command line was wrong (clap exits with this too).
    Usage = 2,
    /// Not enrolled, or the identity file is damaged: run `display-kiosk enroll`.
    NotEnrolled = 3,
    /// The server could not be reached: check the network and try again.
    Unreachable = 4,
    /// The server refused the enrolment, or answered something unreadable: get a new
    /// code from the admin.
    Refused = 5,
    /// `snapshot` before any display settings were cached.
    NoConfig = 6,
}

impl ExitStatus {
    /// The number the process exits with.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(s: ExitStatus) -> Self {
        Self::from(s.code())
    }
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KioskError {
    /// No async runtime (the OS refused threads or an event loop).
    #[error("cannot start: {0}")]
    Runtime(#[source] std::io::Error),
    /// `--server` is not an http(s) URL.
    #[error("--server {server:?} must be a URL like https://book.example.com")]
    ServerUrl {
        /// What was given.
        server: String,
    },
    /// The state directory cannot be created or opened.
    #[error("state directory: {0}")]
    OpenState(#[source] StateError),
    /// The identity cannot be read (not enrolled, damaged, unreadable).
    #[error("{0}")]
    Identity(#[source] StateError),
    /// The identity cannot be written.
    #[error("cannot save the identity: {0}")]
    SaveIdentity(#[source] StateError),
    /// The HTTP client cannot be built (TLS roots, for one).
    #[error("cannot set up HTTP: {0}")]
    Http(#[source] reqwest::Error),
    /// The server did not answer the enrolment.
    #[error(
        "cannot reach {server} ({message}); check the URL and this box's network, then try again"
    )]
    Unreachable {
        /// The server.
        server: String,
        /// What the network said.
        message: String,
    },
    /// The server refused the enrolment code.
    #[error("enrolment refused: {message}")]
    EnrollRefused {
        /// The server's explanation.
        message: String,
    },
    /// The server accepted the code but its answer does not read as an enrolment.
    #[error(
        "{server} accepted the code but its answer does not read ({message}); check that --server is a Tapkit server of a matching version, then ask the admin for a new code (this one is probably used up)"
    )]
    EnrollAnswer {
        /// The server.
        server: String,
        /// What is wrong with the answer.
        message: String,
    },
    /// The display's address cannot be bound.
    #[error("cannot serve the display on {listen}: {source}; pick another address with --listen")]
    Listen {
        /// The address.
        listen: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Serving the page stopped with an error.
    #[error("serving the display failed: {0}")]
    Serve(#[source] std::io::Error),
    /// `snapshot` found no usable cached settings.
    #[error(
        "no usable display settings in {}: run `display-kiosk run` once with the server reachable",
        dir.display()
    )]
    NoConfig {
        /// The state directory.
        dir: PathBuf,
    },
    /// The snapshot PNG cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    WritePng {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: image::ImageError,
    },
}

impl KioskError {
    /// The exit status this failure gives.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Self::ServerUrl { .. } => ExitStatus::Usage,
            Self::Identity(StateError::NotEnrolled(_) | StateError::Damaged { .. }) => {
                ExitStatus::NotEnrolled
            }
            Self::Unreachable { .. } => ExitStatus::Unreachable,
            Self::EnrollRefused { .. } | Self::EnrollAnswer { .. } => ExitStatus::Refused,
            Self::NoConfig { .. } => ExitStatus::NoConfig,
            Self::Runtime(_)
            | Self::OpenState(_)
            | Self::Identity(_)
            | Self::SaveIdentity(_)
            | Self::Http(_)
            | Self::Listen { .. }
            | Self::Serve(_)
            | Self::WritePng { .. } => ExitStatus::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_status_and_says_what_to_do() {
        let cases = [
            (
                KioskError::Identity(StateError::NotEnrolled("/s/identity.json".into())),
                ExitStatus::NotEnrolled,
                "display-kiosk enroll --server URL --code CODE",
            ),
            (
                KioskError::Identity(StateError::Io {
                    path: "/s/identity.json".into(),
                    source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
                }),
                ExitStatus::Failed,
                "/s/identity.json",
            ),
            (
                KioskError::ServerUrl {
                    server: "book.example.com".into(),
                },
                ExitStatus::Usage,
                "https://book.example.com",
            ),
            (
                KioskError::Unreachable {
                    server: "https://b.example".into(),
                    message: "timed out".into(),
                },
                ExitStatus::Unreachable,
                "try again",
            ),
            (
                KioskError::EnrollRefused {
                    message: "this enrolment code was already used".into(),
                },
                ExitStatus::Refused,
                "already used",
            ),
            (
                KioskError::NoConfig { dir: "/s".into() },
                ExitStatus::NoConfig,
                "display-kiosk run",
            ),
        ];
        for (e, status, says) in cases {
            assert_eq!(e.exit_status(), status, "{e}");
            assert!(e.to_string().contains(says), "{e}");
        }
        assert_eq!(
            [ExitStatus::Ok, ExitStatus::Usage, ExitStatus::NoConfig].map(ExitStatus::code),
            [0, 2, 6]
        );
    }
}
