//! Charging members through the brand's payment system. Tapkit never sees a card: it
//! asks the brand's system (`[program.payments] charge_url`) to charge the payment
//! method the customer saved there, and books the answer.
//!
//! The request is a signed POST (the webhook scheme: `Tapkit-Signature:
//! t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` with the webhook secret) whose
//! JSON body holds `invoice_id`, `idempotency_key`, `amount_minor`, `currency`,
//! `customer_id`, `member_id` and `period`. The idempotency key is
//! `tapkit-invoice-<id>-attempt-<n>`: the same for every delivery of one attempt, so a
//! timeout, a 5xx or a lost answer is retried (with backoff) without charging twice,
//! and a new one for each dunning retry, which is a new charge.
//!
//! The answer: `200 {"status": "succeeded", "reference": "..."}` settles the invoice
//! ([`super::payments::settle`]); `200 {"status": "failed", "reason": "..."}` moves the
//! member along the dunning schedule ([`super::dunning`]) and emails them a link to
//! update their payment method; `202` means the outcome is not known yet, and the next
//! run asks again with the same key. Anything else (4xx, an answer that is not one of
//! these) changes nothing and is logged for the operator.
//!
//! Several replicas may run this at once: they send the same idempotency key, and each
//! answer is recorded only by the replica whose read of the member's standing is still
//! current (compare and set), so one failure moves the schedule once and one email goes.

use std::time::Duration;

use serde::Deserialize;

use super::dunning::{Charge, Standing};
use super::plans::MembershipConfig;
use crate::AppState;
use crate::store::StoreError;
use crate::store::member_money::ChargeFailure;
use crate::store::members::{Invoice, Member};

/// `[program.payments]`: the brand's payment system.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentsConfig {
    /// Where charges are asked for; unset: invoices stay open until the brand marks
    /// them paid (`POST /api/admin/invoices/{id}/paid`).
    pub charge_url: Option<String>,
    /// The page where a member updates their payment method, linked from the dunning
    /// email; `{customer_id}` is replaced by the member's customer id.
    pub update_payment_url: Option<String>,
    /// Seconds one delivery may take.
    pub timeout_secs: u64,
    /// Deliveries of one attempt before the run gives up until the next run.
    pub deliveries: u32,
    /// Milliseconds before the second delivery; doubled for each next one.
    pub backoff_ms: u64,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        Self {
            charge_url: None,
            update_payment_url: None,
            timeout_secs: 10,
            deliveries: 4,
            backoff_ms: 500,
        }
    }
}

impl PaymentsConfig {
    /// Checks the section; the message names the key and how to fix it.
    pub fn check(&self, has_secret: bool) -> Result<(), String> {
        let Some(url) = &self.charge_url else {
            return Ok(());
        };
        let web = |u: &str| u.starts_with("https://") || u.starts_with("http://");
        if !web(url) || url.chars().any(char::is_whitespace) {
            return Err(format!(
                "program.payments.charge_url {url:?} is not an http(s) URL such as https://pay.example.com/tapkit/charge"
            ));
        }
        match &self.update_payment_url {
            Some(u) if web(u) && !u.chars().any(char::is_whitespace) => {}
            Some(u) => {
                return Err(format!(
                    "program.payments.update_payment_url {u:?} is not an http(s) URL"
                ));
            }
            None => {
                return Err("program.payments.update_payment_url is required with charge_url: the dunning email links to it so members can update their card".to_owned());
            }
        }
        if !has_secret {
            return Err("program.payments.charge_url needs the webhook secret (TAPKIT_WEBHOOK_SECRET or TAPKIT_WEBHOOK_SECRET_FILE): charges are signed with it".to_owned());
        }
        if !(1..=120).contains(&self.timeout_secs) {
            return Err("program.payments.timeout_secs must be 1 to 120".to_owned());
        }
        if !(1..=10).contains(&self.deliveries) {
            return Err("program.payments.deliveries must be 1 to 10".to_owned());
        }
        if self.backoff_ms > 60_000 {
            return Err("program.payments.backoff_ms must be at most 60000".to_owned());
        }
        Ok(())
    }
}

/// What one charge run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChargeRun {
    /// Charges answered "succeeded" (invoices settled).
    pub succeeded: u64,
    /// Charges answered "failed" (the dunning schedule moved).
    pub failed: u64,
    /// Members who lapsed.
    pub lapsed: u64,
    /// Dunning emails sent.
    pub emailed: u64,
    /// Charges whose outcome is not known yet (202, or no answer after every delivery).
    pub pending: u64,
}

/// The processor's answer.
#[derive(Debug, Deserialize)]
struct Answer {
    status: String,
    reference: Option<String>,
    reason: Option<String>,
}

enum Outcome {
    Succeeded(Option<String>),
    Failed(String),
    Pending,
}

/// The most invoices one run charges (the next run takes the rest).
const BATCH: i64 = 500;

/// Charges what is due on `now`: invoices never charged, and dunning retries whose day
/// has come. Without `charge_url` it does nothing.
pub async fn run(s: &AppState, now: i64) -> Result<ChargeRun, StoreError> {
    let pay = &s.config.program.payments;
    let cfg = &s.config.program.membership;
    let mut done = ChargeRun::default();
    let (Some(url), Some(secret)) = (&pay.charge_url, &s.config.webhook_secret) else {
        return Ok(done);
    };
    let day = now.div_euclid(86_400_000);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(pay.timeout_secs))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| StoreError::Config(format!("cannot build the HTTP client: {e}")))?;
    for (inv, m) in s.store.chargeable_invoices(s.program.id, BATCH).await? {
        let standing = standing_of(&m);
        if inv.status == "failed" && !standing.retry_due(day, cfg) {
            continue;
        }
        let outcome = if inv.amount_minor == 0 {
            Outcome::Succeeded(None)
        } else {
            ask(&client, url, &secret.0, pay, &inv, &m).await
        };
        match outcome {
            Outcome::Pending => done.pending += 1,
            Outcome::Succeeded(reference) => {
                let r = super::payments::settle(
                    &s.store,
                    &s.config.program.commission,
                    s.program.id,
                    inv.id,
                    reference.as_deref(),
                    now,
                )
                .await;
                match r {
                    Ok(o) if o.changed => done.succeeded += 1,
                    Ok(_) => {}
                    Err(super::service::MemberError::Store(e)) => return Err(e),
                    Err(e) => {
                        tracing::error!(invoice = inv.id, %e, "a paid charge could not be booked")
                    }
                }
            }
            Outcome::Failed(reason) => {
                let booked = book_failure(s, &inv, &m, &reason, now).await?;
                if booked.recorded {
                    done.failed += 1;
                    done.lapsed += u64::from(booked.lapsed);
                    done.emailed += u64::from(booked.emailed);
                }
            }
        }
    }
    Ok(done)
}

/// What booking one failed charge did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureBooked {
    /// Whether this call recorded it (`false`: another replica, or another delivery of
    /// the same answer, did first).
    pub recorded: bool,
    /// Whether the member lapsed.
    pub lapsed: bool,
    /// Whether the dunning email went.
    pub emailed: bool,
}

/// Books the payment system's "failed" for the invoice's outstanding attempt, as read
/// in `inv` and `m`: the member moves one step along the dunning schedule and gets the
/// dunning email. Compare and set on both reads, so each attempt's failure moves the
/// schedule once, whichever of the charge run and the `payment_failed` event (or two
/// replicas) books it.
pub async fn book_failure(
    s: &AppState,
    inv: &Invoice,
    m: &Member,
    reason: &str,
    now: i64,
) -> Result<FailureBooked, StoreError> {
    let cfg = &s.config.program.membership;
    let day = now.div_euclid(86_400_000);
    let next = standing_of(m).after(Charge::Failed, day, cfg);
    let (failed_on, retries) = match next {
        Standing::PastDue { failed_on, retries } => {
            (Some(failed_on), i64::try_from(retries).unwrap_or(i64::MAX))
        }
        _ => (m.failed_on, m.retries),
    };
    let recorded = s
        .store
        .record_charge_failure(
            &ChargeFailure {
                invoice_id: inv.id,
                member_id: m.id,
                from_status: &m.status,
                from_retries: m.retries,
                from_failures: inv.charge_failures,
                status: next.as_str(),
                failed_on,
                retries,
                failure: reason,
            },
            now,
        )
        .await?;
    if !recorded {
        return Ok(FailureBooked::default());
    }
    let emailed = match dunning_email(s, m, inv, next, cfg).await {
        Ok(sent) => sent,
        Err(e) => {
            tracing::error!(member = m.id, %e, "the dunning email was not sent");
            false
        }
    };
    Ok(FailureBooked {
        recorded: true,
        lapsed: next == Standing::Lapsed,
        emailed,
    })
}

/// The member's standing as stored.
pub fn standing_of(m: &Member) -> Standing {
    match m.status.as_str() {
        "past_due" => Standing::PastDue {
            failed_on: m.failed_on.unwrap_or(0),
            retries: usize::try_from(m.retries).unwrap_or(0),
        },
        "lapsed" => Standing::Lapsed,
        _ => Standing::Active,
    }
}

/// The idempotency key of the invoice's next attempt.
pub fn idempotency_key(inv: &Invoice) -> String {
    format!(
        "tapkit-invoice-{}-attempt-{}",
        inv.id,
        inv.charge_failures + 1
    )
}

async fn ask(
    client: &reqwest::Client,
    url: &str,
    secret: &[u8],
    pay: &PaymentsConfig,
    inv: &Invoice,
    m: &Member,
) -> Outcome {
    let body = serde_json::json!({
        "invoice_id": inv.id,
        "idempotency_key": idempotency_key(inv),
        "amount_minor": inv.amount_minor,
        "currency": inv.currency,
        "customer_id": m.customer_id,
        "member_id": m.id,
        "period": inv.period,
        "description": format!("{} membership, {} ({})", inv.plan, inv.period, inv.kind),
    })
    .to_string();
    let mut wait = Duration::from_millis(pay.backoff_ms);
    for delivery in 1..=pay.deliveries {
        let t = crate::store::now_ms().div_euclid(1000);
        let sent = client
            .post(url)
            .header("content-type", "application/json")
            .header(
                crate::money::wire::SIGNATURE_HEADER,
                crate::money::wire::sign(body.as_bytes(), secret, t),
            )
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == reqwest::StatusCode::ACCEPTED => return Outcome::Pending,
            Ok(r) if r.status().is_success() => match r.json::<Answer>().await {
                Ok(a) if a.status == "succeeded" => {
                    // A reference the invoice cannot keep is dropped, not the payment.
                    return Outcome::Succeeded(
                        a.reference
                            .filter(|r| super::payments::check_reference(Some(r)).is_ok()),
                    );
                }
                Ok(a) if a.status == "failed" => {
                    let mut reason = a.reason.unwrap_or_else(|| "declined".to_owned());
                    reason.retain(|c| !c.is_control());
                    return Outcome::Failed(reason.chars().take(200).collect());
                }
                Ok(a) => {
                    tracing::error!(invoice = inv.id, status = %a.status, "the payment system answered a status that is neither succeeded nor failed; nothing was booked");
                    return Outcome::Pending;
                }
                Err(e) => {
                    tracing::warn!(invoice = inv.id, delivery, %e, "the payment system's answer is not the JSON expected; retrying");
                }
            },
            Ok(r) if r.status().is_server_error() => {
                tracing::warn!(invoice = inv.id, delivery, status = %r.status(), "the payment system failed; retrying");
            }
            Ok(r) => {
                tracing::error!(invoice = inv.id, status = %r.status(), "the payment system refused the charge request; check program.payments.charge_url and the webhook secret");
                return Outcome::Pending;
            }
            Err(e) => {
                tracing::warn!(invoice = inv.id, delivery, error = %e, "the payment system did not answer; retrying");
            }
        }
        if delivery < pay.deliveries {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    Outcome::Pending
}

/// The dunning email: what failed, what happens next, and the link to fix it.
async fn dunning_email(
    s: &AppState,
    m: &Member,
    inv: &Invoice,
    next: Standing,
    cfg: &MembershipConfig,
) -> Result<bool, String> {
    let link = s
        .config
        .program
        .payments
        .update_payment_url
        .as_deref()
        .unwrap_or_default()
        .replace("{customer_id}", &percent(&m.customer_id));
    let amount = crate::money::payout_report::money(inv.amount_minor, &inv.currency);
    let program = &s.program.name;
    let then = match (next, next.next_retry(cfg)) {
        (Standing::PastDue { failed_on, .. }, Some(d)) => format!(
            "We will try again on {}. Your membership stays usable until {}.",
            tapkit_core::date::format_date(d),
            tapkit_core::date::format_date(failed_on + i64::from(cfg.grace_days) - 1)
        ),
        _ => "This was the last try, so your membership has ended. You are welcome to join again at any time.".to_owned(),
    };
    let body = format!(
        "Hello,\n\nThe payment of {amount} for your {plan} membership ({period}) did not go through.\n\n{then}\n\nUpdate your payment method here:\n{link}\n\n{program}\n",
        plan = inv.plan,
        period = inv.period,
    );
    crate::web::auth::send_mail(
        s,
        &m.email,
        &format!("Your {program} membership payment did not go through"),
        body,
    )
    .await
}

fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Runs the charges every `every` until the process ends (a failure is logged and
/// tried again at the next tick). Each tick brings the renewal up to date first (it is
/// idempotent, and cheap when nothing is due), so the invoices a new month issues are
/// charged in the same tick rather than one later.
pub fn spawn(s: AppState, every: Duration) {
    if s.config.program.payments.charge_url.is_none() {
        return;
    }
    super::every(every, move || {
        let s = s.clone();
        async move {
            let now = crate::store::now_ms();
            let p = &s.config.program;
            if let Err(e) = super::renewal::run(
                &s.store,
                &p.membership,
                s.program.id,
                &p.commission.currency,
                now,
            )
            .await
            {
                tracing::error!(%e, "membership renewal before the charges failed; charging what is issued");
            }
            match run(&s, now).await {
                Ok(r) if r != ChargeRun::default() => tracing::info!(
                    succeeded = r.succeeded,
                    failed = r.failed,
                    lapsed = r.lapsed,
                    emailed = r.emailed,
                    pending = r.pending,
                    "membership charges"
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(%e, "membership charges failed; retrying at the next tick")
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_ids_are_escaped_in_the_link() {
        assert_eq!(percent("cus_a b/c"), "cus_a%20b%2Fc");
    }

    #[test]
    fn the_section_names_what_is_missing() {
        let mut p = PaymentsConfig {
            charge_url: Some("ftp://x".into()),
            ..PaymentsConfig::default()
        };
        assert!(p.check(true).unwrap_err().contains("charge_url"));
        p.charge_url = Some("https://pay.example.com/charge".into());
        assert!(p.check(true).unwrap_err().contains("update_payment_url"));
        p.update_payment_url = Some("https://book.example.com/card".into());
        assert!(p.check(false).unwrap_err().contains("webhook secret"));
        assert_eq!(p.check(true), Ok(()));
        assert_eq!(PaymentsConfig::default().check(false), Ok(()));
    }
}
