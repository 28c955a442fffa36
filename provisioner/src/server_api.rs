//! The Tapkit server's admin API, as the provisioner uses it: the affiliates that still
//! need a card (the batch's partner source) and card registration after a verified write.
//!
//! The token comes from `TAPKIT_ADMIN_TOKEN` or from a config file (see [`Credentials`]);
//! it is sent only in the `Authorization` header and never printed or journaled.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tapkit_core::code::ReferralCode;

use crate::partners::{Partner, RowError};

/// Why the server could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Not reachable (down, wrong address, network): worth retrying later.
    #[error(
        "cannot reach the Tapkit server at {url}: {reason}; check --server and the network (the journal keeps the card for a later retry)"
    )]
    Unreachable {
        /// The URL tried.
        url: String,
        /// Why.
        reason: String,
    },
    /// The token was refused.
    #[error(
        "the server refused the admin token (401); create one with `tapkit-server token create --name provisioner` and set TAPKIT_ADMIN_TOKEN"
    )]
    Unauthorized,
    /// The server answered with an error about this request.
    #[error("the server refused {what}: {message} (HTTP {status})")]
    Refused {
        /// What was asked.
        what: String,
        /// HTTP status.
        status: u16,
        /// The server's error message.
        message: String,
    },
    /// The server answered something that is not the admin API.
    #[error("{url} did not answer like a Tapkit server ({reason}); check --server")]
    NotTapkit {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Bad setting (URL, token, config file).
    #[error("{0}")]
    Config(String),
}

impl ServerError {
    /// Whether trying again later may succeed (the server was down or overloaded).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Refused { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// Where the server is and the admin token to use.
#[derive(Clone)]
pub struct Credentials {
    /// Base URL, e.g. `https://tapkit.example.com` (no trailing slash).
    pub base: String,
    token: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("base", &self.base)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// The provisioner config file (TOML): `server = "https://…"` and `token = "…"` or
/// `token_file = "/path"`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    server: Option<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
}

/// The default config file: `$XDG_CONFIG_HOME/tapkit/provisioner.toml` or
/// `~/.config/tapkit/provisioner.toml`.
pub fn default_config_path() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|d| d.join("tapkit").join("provisioner.toml"))
}

impl Credentials {
    /// Resolves the server URL (`--server`, else the config file) and the token
    /// (`env_token`, i.e. `TAPKIT_ADMIN_TOKEN`, else the config file's `token` or
    /// `token_file`).
    pub fn resolve(
        server: Option<&str>,
        env_token: Option<String>,
        config: Option<&Path>,
    ) -> Result<Self, ServerError> {
        let explicit = config.is_some();
        let path = config.map(Path::to_owned).or_else(default_config_path);
        let file = match &path {
            Some(p) => match std::fs::read_to_string(p) {
                Ok(text) => toml::from_str::<ConfigFile>(&text).map_err(|e| {
                    ServerError::Config(format!(
                        "{}: {}; it takes server = \"https://…\" and token = \"…\" or token_file = \"…\"",
                        p.display(),
                        e.message()
                    ))
                })?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                    ConfigFile::default()
                }
                Err(e) => {
                    return Err(ServerError::Config(format!(
                        "cannot read the config file {}: {e}",
                        p.display()
                    )));
                }
            },
            None => ConfigFile::default(),
        };
        let base = server.map(str::to_owned).or(file.server).ok_or_else(|| {
            ServerError::Config(
                "no server given: pass --server https://… (or server = \"…\" in the config file)"
                    .into(),
            )
        })?;
        let base = base.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("https://") || base.starts_with("http://"))
            || base.len() <= "https://".len()
            || base.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ServerError::Config(format!(
                "--server {base:?} is not an http(s) URL; give the server's address, like https://tapkit.example.com"
            )));
        }
        let token = match (
            env_token.filter(|t| !t.trim().is_empty()),
            file.token,
            file.token_file,
        ) {
            (Some(t), _, _) | (None, Some(t), _) => t,
            (None, None, Some(f)) => std::fs::read_to_string(&f).map_err(|e| {
                ServerError::Config(format!("cannot read token_file {}: {e}", f.display()))
            })?,
            (None, None, None) => {
                return Err(ServerError::Config(
                    "no admin token: set TAPKIT_ADMIN_TOKEN (from `tapkit-server token create --name provisioner`) or token = \"…\" in the config file"
                        .into(),
                ));
            }
        };
        let token = token.trim().to_owned();
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ServerError::Config(
                "the admin token is empty or holds spaces/control characters; paste it again"
                    .into(),
            ));
        }
        Ok(Self { base, token })
    }
}

/// A blocking client for the admin API.
#[derive(Debug)]
pub struct ServerApi {
    creds: Credentials,
    http: reqwest::blocking::Client,
}

/// What the server lists for an affiliate (only the fields used here).
#[derive(Debug, Deserialize)]
struct RemoteAffiliate {
    id: i64,
    name: String,
    kind: String,
    code: String,
    url: String,
    #[serde(default)]
    status: Option<String>,
}

/// What the server lists for a member (only the fields used here).
#[derive(Debug, Deserialize)]
struct RemoteMember {
    id: i64,
    plan: String,
    #[serde(default)]
    plan_name: Option<String>,
    status: String,
    first_name: Option<String>,
    code: Option<String>,
    url: Option<String>,
}

/// The partners that still need a card, as listed by the server.
#[derive(Debug, Clone, Default)]
pub struct RemotePartners {
    /// Usable partners.
    pub partners: Vec<Partner>,
    /// Entries that could not be used (bad code …), numbered in list order.
    pub errors: Vec<RowError>,
    /// The brand domain the server builds its URLs with.
    pub domain: Option<String>,
}

impl ServerApi {
    /// A client with short timeouts: the admin is waiting at the reader.
    pub fn new(creds: Credentials) -> Result<Self, ServerError> {
        let http = reqwest::blocking::Client::builder()
            // One request per card, minutes apart: a fresh connection each time rather than
            // an idle pooled one that a proxy or NAT may have dropped meanwhile.
            .pool_max_idle_per_host(0)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("tapkit-provisioner/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ServerError::Config(format!("cannot set up HTTP: {e}")))?;
        Ok(Self { creds, http })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.creds.base
    }

    fn send(
        &self,
        what: &str,
        req: reqwest::blocking::RequestBuilder,
    ) -> Result<reqwest::blocking::Response, ServerError> {
        let resp =
            req.bearer_auth(&self.creds.token)
                .send()
                .map_err(|e| ServerError::Unreachable {
                    url: self.creds.base.clone(),
                    reason: tapkit_core::error_chain(&e),
                })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(ServerError::Unauthorized);
        }
        let body = resp.text().unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or_else(|| body.chars().take(200).collect());
        Err(ServerError::Refused {
            what: what.to_owned(),
            status: status.as_u16(),
            message,
        })
    }

    /// `GET /api/admin/affiliates[?needs_card=true]`: the affiliates that still need a
    /// card (`needs_card`), or every active one.
    pub fn partners(&self, needs_card: bool) -> Result<RemotePartners, ServerError> {
        let url = format!(
            "{}/api/admin/affiliates{}",
            self.creds.base,
            if needs_card { "?needs_card=true" } else { "" }
        );
        let resp = self.send("the affiliate list", self.http.get(&url))?;
        let list: Vec<RemoteAffiliate> = resp.json().map_err(|e| ServerError::NotTapkit {
            url: url.clone(),
            reason: tapkit_core::error_chain(&e),
        })?;
        let mut out = RemotePartners::default();
        for (i, a) in list.into_iter().enumerate() {
            if a.status.as_deref().is_some_and(|s| s != "active") {
                continue;
            }
            let entry = u64::try_from(i + 1).unwrap_or(u64::MAX);
            // The server checks names the same way; an older or foreign one may not have.
            if let Err(e) = crate::partners::check_name(&a.name) {
                out.errors.push(RowError {
                    line: entry,
                    message: format!("affiliate {}: {e}", a.id),
                });
                continue;
            }
            match ReferralCode::parse(&a.code) {
                Ok(code) => {
                    if out.domain.is_none() {
                        out.domain = a
                            .url
                            .strip_prefix("https://")
                            .and_then(|r| r.split('/').next())
                            .map(str::to_owned);
                    }
                    out.partners.push(Partner {
                        name: a.name,
                        code: code.into(),
                        kind: a.kind,
                        affiliate_id: Some(a.id),
                        member_id: None,
                    });
                }
                Err(e) => out.errors.push(RowError {
                    line: entry,
                    message: format!("affiliate {} ({:?}): code {e}", a.id, a.name),
                }),
            }
        }
        Ok(out)
    }

    /// `GET /api/admin/members?needs_card=true`: the live members without a card, each
    /// with the page code the server gave it (`/m/{code}`); or (`needs_card` false)
    /// every live member that has a page code, e.g. to print their cards. The printed
    /// name is the member's first name and plan.
    pub fn members(&self, needs_card: bool) -> Result<RemotePartners, ServerError> {
        let url = format!(
            "{}/api/admin/members{}",
            self.creds.base,
            if needs_card { "?needs_card=true" } else { "" }
        );
        let resp = self.send("the member list", self.http.get(&url))?;
        let list: Vec<RemoteMember> = resp.json().map_err(|e| ServerError::NotTapkit {
            url: url.clone(),
            reason: tapkit_core::error_chain(&e),
        })?;
        let mut out = RemotePartners::default();
        for (i, m) in list.into_iter().enumerate() {
            let live = matches!(m.status.as_str(), "active" | "past_due" | "paused");
            if !needs_card && (!live || m.code.is_none()) {
                continue;
            }
            let entry = u64::try_from(i + 1).unwrap_or(u64::MAX);
            let code = m
                .code
                .as_deref()
                .ok_or_else(|| "the server gave it no page code".to_owned())
                .and_then(crate::partners::MemberCode::parse);
            let (code, url) = match (code, m.url) {
                (Ok(c), Some(u)) => (c, u),
                (Err(e), _) => {
                    out.errors.push(RowError {
                        line: entry,
                        message: format!("member {}: {e}", m.id),
                    });
                    continue;
                }
                (Ok(_), None) => {
                    out.errors.push(RowError {
                        line: entry,
                        message: format!("member {}: the server gave no card URL", m.id),
                    });
                    continue;
                }
            };
            let first = m
                .first_name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .unwrap_or("Member");
            let name = format!("{first} · {}", m.plan_name.as_deref().unwrap_or(&m.plan));
            if let Err(e) = crate::partners::check_name(&name) {
                out.errors.push(RowError {
                    line: entry,
                    message: format!("member {}: {e}", m.id),
                });
                continue;
            }
            if out.domain.is_none() {
                out.domain = url
                    .strip_prefix("https://")
                    .and_then(|r| r.split('/').next())
                    .map(str::to_owned);
            }
            out.partners.push(Partner {
                name,
                code: crate::partners::CardCode::Member(code),
                kind: "member".into(),
                affiliate_id: None,
                member_id: Some(m.id),
            });
        }
        Ok(out)
    }

    /// `POST /api/admin/members/{id}/cards`: binds the card UID to the member. The same
    /// binding twice is fine; a UID bound elsewhere is refused by the server.
    pub fn register_member_card(&self, member_id: i64, uid: &str) -> Result<(), ServerError> {
        let url = format!("{}/api/admin/members/{member_id}/cards", self.creds.base);
        self.send(
            &format!("card {uid}"),
            self.http
                .post(&url)
                .json(&serde_json::json!({ "uid": uid })),
        )
        .map(drop)
    }

    /// `POST /api/admin/cards`: binds the card UID to the affiliate. Registering the same
    /// binding twice is fine; a UID bound to another affiliate is refused by the server.
    /// A SUN card (NTAG 424 DNA) is registered with its `key_version`.
    pub fn register_card(
        &self,
        affiliate_id: i64,
        uid: &str,
        key_version: Option<u8>,
    ) -> Result<(), ServerError> {
        let url = format!("{}/api/admin/cards", self.creds.base);
        let mut body = serde_json::json!({ "affiliate_id": affiliate_id, "uid": uid });
        if let Some(v) = key_version {
            body["key_version"] = v.into();
        }
        self.send(&format!("card {uid}"), self.http.post(&url).json(&body))
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tapkit-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn credentials_from_flag_env_and_file() {
        let c = Credentials::resolve(
            Some("http://127.0.0.1:8080/"),
            Some("tok".into()),
            Some(&tmp("empty.toml", "")),
        )
        .unwrap();
        assert_eq!(c.base, "http://127.0.0.1:8080");
        assert!(!format!("{c:?}").contains("tok\""), "the token is redacted");
        let f = tmp(
            "full.toml",
            "server = \"https://t.example.com\"\ntoken = \" abc \"\n",
        );
        let c = Credentials::resolve(None, None, Some(&f)).unwrap();
        assert_eq!(
            (c.base.as_str(), c.token.as_str()),
            ("https://t.example.com", "abc")
        );
        // The environment wins over the file.
        let c = Credentials::resolve(None, Some("envtok".into()), Some(&f)).unwrap();
        assert_eq!(c.token, "envtok");
    }

    #[test]
    fn credential_errors_say_what_to_do() {
        let empty = tmp("e.toml", "");
        let e = Credentials::resolve(Some("http://x.example"), None, Some(&empty)).unwrap_err();
        assert!(e.to_string().contains("TAPKIT_ADMIN_TOKEN"), "{e}");
        let e =
            Credentials::resolve(Some("x.example"), Some("t".into()), Some(&empty)).unwrap_err();
        assert!(e.to_string().contains("not an http(s) URL"), "{e}");
        let bad = tmp("bad.toml", "sever = 1\n");
        let e = Credentials::resolve(None, None, Some(&bad)).unwrap_err();
        assert!(e.to_string().contains("bad.toml"), "{e}");
        let e =
            Credentials::resolve(None, None, Some(Path::new("/nonexistent/x.toml"))).unwrap_err();
        assert!(e.to_string().contains("cannot read the config file"), "{e}");
    }

    #[test]
    fn unreachable_is_transient() {
        let api = ServerApi::new(
            Credentials::resolve(
                Some("http://127.0.0.1:9"),
                Some("t".into()),
                Some(&tmp("e2.toml", "")),
            )
            .unwrap(),
        )
        .unwrap();
        let e = api.register_card(1, "04A1B2C3D4E5F6", None).unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert!(e.to_string().contains("127.0.0.1:9"), "{e}");
    }
}
