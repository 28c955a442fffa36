//! The referrer's emails: "your friend booked" when a referred booking is paid, and
//! "your reward is ready" when a reward is issued. Sent after the money transaction
//! commits (never inside it: a slow mail server holds no lock), to customer referrers
//! with an email address, each with a one-click unsubscribe link (RFC 8058).

use crate::AppState;
use crate::store::StoreError;
use crate::store::rewards::Reward;
use crate::store::vocab::RewardKind;

/// What a reward is worth, in words ("10.00 USD credit: any booking", "15 % off: your
/// next service").
pub fn worth_text(r: &Reward, currency: &str) -> String {
    let money = crate::money::payouts::money;
    let off = match r.kind {
        RewardKind::Credit => money(r.issued_minor, &r.unit),
        RewardKind::Fixed => format!("{} off", money(r.value_minor.unwrap_or(0), currency)),
        RewardKind::Percent => format!("{} off", percent_text(r.percent_bp.unwrap_or(0))),
        RewardKind::Free => "free".to_owned(),
    };
    format!("{off}: {}", r.applies_to)
}

/// Basis points as people read a percentage: `15 %`, `12.50 %`.
pub fn percent_text(bp: i64) -> String {
    match bp % 100 {
        0 => format!("{} %", bp / 100),
        rest => format!("{}.{rest:02} %", bp / 100),
    }
}

/// The unsubscribe link of an affiliate's referral emails.
pub fn unsubscribe_url(s: &AppState, affiliate_id: i64) -> String {
    format!(
        "{}/refer/unsubscribe/{affiliate_id}.{}",
        s.config.public_url,
        s.keys
            .web_mac("referral emails off", &affiliate_id.to_string())
    )
}

/// The affiliate an unsubscribe token names, if it is genuine.
pub fn unsubscribe_token(s: &AppState, token: &str) -> Option<i64> {
    let (id, mac) = token.split_once('.')?;
    let id: i64 = id.parse().ok()?;
    s.keys
        .web_verify("referral emails off", &id.to_string(), mac)
        .then_some(id)
}

/// After a commit: emails the referrer about their friend's booking and the rewards just
/// issued (in the background; failures are logged).
pub fn after_commit(s: &AppState, affiliate_id: i64, friend_booked: bool, issued: Vec<String>) {
    if !friend_booked && issued.is_empty() {
        return;
    }
    let s = s.clone();
    tokio::spawn(async move {
        if let Err(e) = send(&s, affiliate_id, friend_booked, &issued).await {
            tracing::error!(affiliate = affiliate_id, error = %e, "referral email not sent");
        }
    });
}

async fn send(
    s: &AppState,
    affiliate_id: i64,
    friend_booked: bool,
    issued: &[String],
) -> Result<(), StoreError> {
    let a = s.store.affiliate(affiliate_id).await?;
    let Some(to) = a.contact.as_deref().filter(|c| c.contains('@')) else {
        return Ok(());
    };
    if a.kind != "customer" || s.store.emails_off(affiliate_id).await? {
        return Ok(());
    }
    let program = &s.program.name;
    let off = unsubscribe_url(s, affiliate_id);
    let footer = format!(
        "\nYou get this because you refer friends to {program}. Turn these emails off: {off}\n"
    );
    let mut mails = Vec::new();
    if friend_booked {
        mails.push((
            format!("Your friend booked with {program}"),
            format!(
                "Hello {},\n\nSomeone you referred just booked with {program} through your link. When their visit is done, your reward is issued at once and emailed to you.\n{footer}",
                a.name
            ),
        ));
    }
    if !issued.is_empty() {
        let currency = &s.config.program.commission.currency;
        let mut lines = String::new();
        for code in issued {
            if let Some(r) = s.store.reward_by_code(s.program.id, code).await? {
                lines.push_str(&format!(
                    "  {}  {}  (use by {})\n",
                    r.code,
                    worth_text(&r, currency),
                    tapkit_core::date::format_date(r.expires_at.div_euclid(86_400_000))
                ));
            }
        }
        mails.push((
            format!("Your {program} reward is ready"),
            format!(
                "Hello {},\n\nThank you for referring a friend: their visit is done, and your reward is ready.\n\n{lines}\nGive the code at checkout. A credit can be used over several visits.\n{footer}",
                a.name
            ),
        ));
    }
    for (subject, body) in mails {
        match crate::web::auth::send_mail_with(s, to, &subject, body, Some(&off)).await {
            Ok(true) => tracing::info!(affiliate = affiliate_id, %subject, "referral email sent"),
            Ok(false) => tracing::info!(
                affiliate = affiliate_id,
                %subject,
                "referral email not sent: no mail server configured (TAPKIT_SMTP_URL)"
            ),
            Err(e) => {
                tracing::error!(affiliate = affiliate_id, error = %e, "referral email failed")
            }
        }
    }
    Ok(())
}
