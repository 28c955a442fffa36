//! Configuration: a TOML file (`--config`, see `server/tapkit.sample.toml`) with
//! environment overrides. Secrets never come from the file's text: the server secret is
//! read from `TAPKIT_SECRET_FILE` (or created, owner-only, in the data directory).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::store::Program;

/// The program section of the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProgramConfig {
    /// Program name.
    pub name: String,
    /// The brand's domain in card and QR URLs.
    pub domain: String,
    /// Where `/r/{code}` sends people.
    pub booking_url: String,
    /// Attribution cookie lifetime in days.
    pub cookie_days: i64,
    /// Last-touch attribution instead of first-touch.
    pub last_touch: bool,
    /// Cookie `Domain` attribute (e.g. `example.com` to share with `book.example.com`);
    /// none: host-only on the host that served `/r/`.
    pub cookie_domain: Option<String>,
    /// How old a webhook's signed timestamp may be (either way), in seconds.
    pub webhook_tolerance_secs: i64,
    /// Commission tiers and rules.
    pub commission: crate::money::rules::Commission,
    /// Fraud rules of the conversion webhook.
    pub fraud: Fraud,
    /// `[program.kiosk]`: the counter displays.
    pub kiosk: crate::kiosks::KioskConfig,
    /// `[program.membership]`: the plans members buy, and the dunning schedule.
    pub membership: crate::members::plans::MembershipConfig,
    /// `[program.payments]`: the brand's payment system that charges members.
    pub payments: crate::members::charges::PaymentsConfig,
    /// `[program.rewards]`: rewards issued at once and redeemed at the checkout; none:
    /// credit and vouchers wait for month close like cash.
    pub rewards: Option<crate::rewards::catalogue::RewardsConfig>,
    /// New referrers one device (the same IP address and user agent) may sign up at
    /// `/refer` per day (0: no self-service sign-up).
    pub referrer_signups_per_day: u32,
}

/// `[program.fraud]`: which conversions earn nothing, and which wait for a review.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Fraud {
    /// A conversion sooner than this after its click earns nothing (bots).
    pub min_seconds_after_click: i64,
    /// Every Nth attributed conversion is held for a manual review (0: none).
    pub review_every: u32,
    /// Held: this many attributed conversions in 24 hours whose clicks came from one
    /// hashed IP (0: off).
    pub max_per_ip_per_day: u32,
    /// Held: this many conversions for one affiliate in 24 hours from customers of one
    /// email domain, webmail providers excepted (0: off).
    pub max_per_email_domain_per_day: u32,
    /// Email domains shared by the public, never counted as one organisation.
    pub webmail_domains: Vec<String>,
}

impl Default for Fraud {
    fn default() -> Self {
        Self {
            min_seconds_after_click: 2,
            review_every: 25,
            max_per_ip_per_day: 3,
            max_per_email_domain_per_day: 3,
            webmail_domains: [
                "gmail.com",
                "googlemail.com",
                "outlook.com",
                "hotmail.com",
                "live.com",
                "yahoo.com",
                "icloud.com",
                "me.com",
                "aol.com",
                "proton.me",
                "protonmail.com",
                "gmx.com",
                "gmx.de",
                "web.de",
                "mail.com",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// A secret value: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Default for ProgramConfig {
    fn default() -> Self {
        Self {
            name: "Tapkit demo program".into(),
            domain: "book.example.com".into(),
            booking_url: "https://book.example.com/".into(),
            cookie_days: 30,
            last_touch: false,
            cookie_domain: None,
            webhook_tolerance_secs: 300,
            commission: crate::money::rules::Commission::default(),
            fraud: Fraud::default(),
            kiosk: crate::kiosks::KioskConfig::default(),
            membership: crate::members::plans::MembershipConfig::default(),
            payments: crate::members::charges::PaymentsConfig::default(),
            rewards: None,
            referrer_signups_per_day: 3,
        }
    }
}

/// The config file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// Listen address.
    pub listen: Option<SocketAddr>,
    /// Database URL.
    pub database_url: Option<String>,
    /// Data directory (SQLite file and generated secret).
    pub data_dir: Option<PathBuf>,
    /// Clicks per hour from one hashed IP before attribution stops (0 = no limit).
    pub rate_limit_per_hour: Option<u32>,
    /// SQLite durability: `full` (default: a committed click survives power loss) or
    /// `normal` (survives a crash of the server process, not of the machine).
    pub sqlite_synchronous: Option<String>,
    /// Where people reach this server (sign-in links in emails use it), e.g.
    /// `https://book.example.com`; default `https://{program.domain}`.
    pub public_url: Option<String>,
    /// The From address of sign-in emails.
    pub mail_from: Option<String>,
    /// Reverse proxies (addresses or blocks like `10.0.0.0/8`) whose `X-Forwarded-For`
    /// names the customer; empty: the connecting address is the customer.
    pub trusted_proxies: Option<Vec<String>>,
    /// The default program.
    pub program: ProgramConfig,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Database URL.
    pub database_url: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Per-IP click limit per hour (0 = off).
    pub rate_limit_per_hour: u32,
    /// SQLite `synchronous` pragma: `FULL` or `NORMAL`.
    pub sqlite_synchronous: crate::store::SqliteSync,
    /// The default program.
    pub program: ProgramConfig,
    /// The default program's webhook signing secret (`TAPKIT_WEBHOOK_SECRET` or the
    /// file named by `TAPKIT_WEBHOOK_SECRET_FILE`); none: `/api/conversions` answers 503.
    pub webhook_secret: Option<Secret>,
    /// The brand's NTAG 424 DNA master keys by version (`TAPKIT_SUN_KEYS_FILE`, the
    /// provisioner's key file); none: SUN taps (`?e=…&c=…`) earn nothing.
    pub sun_keys: Option<std::sync::Arc<crate::tap::sun::SunKeys>>,
    /// Origin of sign-in links (no trailing slash).
    pub public_url: String,
    /// SMTP server for sign-in emails (`TAPKIT_SMTP_URL` or the file named by
    /// `TAPKIT_SMTP_URL_FILE`, e.g. `smtps://user:password@mail.example.com`); none:
    /// links are shown to the admin and written to the log.
    pub smtp_url: Option<Secret>,
    /// From address of sign-in emails.
    pub mail_from: String,
    /// Proxies whose `X-Forwarded-For` is believed (`TAPKIT_TRUSTED_PROXIES`).
    pub trusted_proxies: crate::tap::client_ip::TrustedProxies,
}

/// Reads the config file (if any) and applies `TAPKIT_*` environment overrides.
pub fn load(path: Option<&Path>) -> Result<Config, String> {
    let file: FileConfig = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| format!("cannot read config {}: {e}", p.display()))?;
            toml::from_str(&text).map_err(|e| format!("config {}: {e}", p.display()))?
        }
        None => FileConfig::default(),
    };
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let data_dir = env("TAPKIT_DATA_DIR")
        .map(PathBuf::from)
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from("tapkit-data"));
    let listen = match env("TAPKIT_LISTEN") {
        Some(v) => v
            .parse()
            .map_err(|_| format!("TAPKIT_LISTEN={v:?} is not an address like 127.0.0.1:8080"))?,
        None => file
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
    };
    let database_url = env("TAPKIT_DATABASE_URL")
        .or(file.database_url)
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("tapkit.db").display()));
    let rate_limit_per_hour = match env("TAPKIT_RATE_LIMIT_PER_HOUR") {
        Some(v) => v.parse().map_err(|_| {
            format!(
                "TAPKIT_RATE_LIMIT_PER_HOUR={v:?} is not a whole number (0 turns the limit off)"
            )
        })?,
        None => file.rate_limit_per_hour.unwrap_or(50),
    };
    let sqlite_synchronous = match env("TAPKIT_SQLITE_SYNCHRONOUS")
        .or(file.sqlite_synchronous)
        .map(|v| v.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("full") => crate::store::SqliteSync::Full,
        Some("normal") => crate::store::SqliteSync::Normal,
        Some(other) => {
            return Err(format!(
                "sqlite_synchronous {other:?} is not full or normal (full: clicks survive power loss; normal: they survive a server crash)"
            ));
        }
    };
    let p = &file.program;
    if !p.booking_url.starts_with("https://") && !p.booking_url.starts_with("http://") {
        return Err(format!(
            "program.booking_url {:?} must be an http(s) URL",
            p.booking_url
        ));
    }
    // Control characters: a header cannot carry them (every redirect would be a 500),
    // except a tab, which is no part of a URL either.
    if p.booking_url.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(format!(
            "program.booking_url {:?} contains a control character (a line break or tab?); remove it",
            p.booking_url
        ));
    }
    if let Some(d) = &p.cookie_domain
        && !d
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err(format!(
            "program.cookie_domain {d:?} must be a domain name like example.com (letters, digits, dots and hyphens; an internationalised name in its xn-- form)"
        ));
    }
    if !(1..=400).contains(&p.cookie_days) {
        return Err(format!(
            "program.cookie_days is {}; use 1 to 400 days",
            p.cookie_days
        ));
    }
    p.commission
        .validate()
        .map_err(|e| format!("program.{e}"))?;
    p.kiosk.validate().map_err(|e| format!("program.{e}"))?;
    if let Some(r) = &p.rewards {
        r.validate(&p.commission)
            .map_err(|e| format!("program.{e}"))?;
    }
    p.membership.check(p.commission.max_amount_minor)?;
    if p.kiosk.brand_name.is_none() && p.name.chars().count() > 40 {
        return Err(format!(
            "program.name {:?} is longer than the 40 characters a counter display shows; set program.kiosk.brand_name to a shorter name",
            p.name
        ));
    }
    if !(1..=86_400).contains(&p.webhook_tolerance_secs) {
        return Err(format!(
            "program.webhook_tolerance_secs is {}; use 1 to 86400 seconds (300 is usual)",
            p.webhook_tolerance_secs
        ));
    }
    let public_url = env("TAPKIT_PUBLIC_URL")
        .or(file.public_url)
        .unwrap_or_else(|| format!("https://{}", p.domain))
        .trim_end_matches('/')
        .to_owned();
    if !(public_url.starts_with("https://") || public_url.starts_with("http://"))
        || public_url.len() > 200
    {
        return Err(format!(
            "public_url {public_url:?} must be an http(s) origin like https://book.example.com"
        ));
    }
    let mail_from = env("TAPKIT_MAIL_FROM")
        .or(file.mail_from)
        .unwrap_or_else(|| {
            format!(
                "{} <no-reply@{}>",
                p.name.replace(['<', '>', '"'], ""),
                p.domain
            )
        });
    let trusted_proxies = match env("TAPKIT_TRUSTED_PROXIES") {
        Some(v) => crate::tap::client_ip::TrustedProxies::parse_list(&v)
            .map_err(|e| format!("TAPKIT_TRUSTED_PROXIES: {e}"))?,
        None => crate::tap::client_ip::TrustedProxies::parse_list(
            &file.trusted_proxies.unwrap_or_default().join(","),
        )
        .map_err(|e| format!("trusted_proxies: {e}"))?,
    };
    let smtp_url = secret_setting("TAPKIT_SMTP_URL", 1)?;
    if let Some(u) = &smtp_url {
        let text = String::from_utf8_lossy(&u.0);
        if !(text.starts_with("smtp://") || text.starts_with("smtps://")) {
            return Err(
                "TAPKIT_SMTP_URL must look like smtps://user:password@mail.example.com (implicit TLS) or smtp://host:25?tls=required"
                    .into(),
            );
        }
    }
    let webhook_secret = webhook_secret()?;
    file.program.payments.check(webhook_secret.is_some())?;
    Ok(Config {
        trusted_proxies,
        public_url,
        smtp_url,
        mail_from,
        listen,
        database_url,
        data_dir,
        rate_limit_per_hour,
        sqlite_synchronous,
        program: file.program,
        webhook_secret,
        sun_keys: crate::tap::sun::SunKeys::from_env()?.map(std::sync::Arc::new),
    })
}

/// A secret from the environment (`NAME`) or a file (`NAME_FILE`), never from the config
/// file's text; shorter than `min` characters is refused.
fn secret_setting(name: &str, min: usize) -> Result<Option<Secret>, String> {
    let value = match (
        std::env::var(name).ok().filter(|v| !v.is_empty()),
        std::env::var_os(format!("{name}_FILE")),
    ) {
        (Some(v), _) => v,
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map_err(|e| {
                format!(
                    "cannot read {name}_FILE {}: {e}",
                    std::path::Path::new(&path).display()
                )
            })?
            .trim()
            .to_owned(),
        (None, None) => return Ok(None),
    };
    if value.len() < min {
        return Err(format!("{name} is shorter than {min} characters"));
    }
    Ok(Some(Secret(value.into_bytes())))
}

/// `TAPKIT_WEBHOOK_SECRET`, else the contents of `TAPKIT_WEBHOOK_SECRET_FILE`.
fn webhook_secret() -> Result<Option<Secret>, String> {
    let Some(Secret(value)) = secret_setting("TAPKIT_WEBHOOK_SECRET", 0)? else {
        return Ok(None);
    };
    if value.len() < 16 {
        return Err(
            "the webhook secret is shorter than 16 characters; use a long random value (openssl rand -hex 32)"
                .into(),
        );
    }
    Ok(Some(Secret(value)))
}

impl Config {
    /// The default program row.
    pub fn program_row(&self) -> Program {
        Program {
            id: 1,
            name: self.program.name.clone(),
            domain: self.program.domain.clone(),
            booking_url: self.program.booking_url.clone(),
            cookie_days: self.program.cookie_days,
            last_touch: self.program.last_touch,
        }
    }

    /// The server secret: `TAPKIT_SECRET_FILE`, else `<data dir>/secret`, created with
    /// owner-only permissions on first start.
    pub fn secret(&self) -> Result<Vec<u8>, String> {
        let path = std::env::var_os("TAPKIT_SECRET_FILE")
            .map_or_else(|| self.data_dir.join("secret"), PathBuf::from);
        match std::fs::read_to_string(&path) {
            Ok(s) if s.trim().len() >= 32 => Ok(s.trim().as_bytes().to_vec()),
            Ok(_) => Err(format!(
                "the secret in {} is shorter than 32 characters; put a long random value there",
                path.display()
            )),
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && std::env::var_os("TAPKIT_SECRET_FILE").is_none() =>
            {
                std::fs::create_dir_all(&self.data_dir)
                    .map_err(|e| format!("cannot create {}: {e}", self.data_dir.display()))?;
                let secret = crate::keys::new_secret();
                write_private(&path, &secret)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                tracing::info!(path = %path.display(), "created a new server secret");
                Ok(secret.into_bytes())
            }
            Err(e) => Err(format!(
                "cannot read the secret file {}: {e}",
                path.display()
            )),
        }
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}
