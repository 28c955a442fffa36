//! The overview: clicks, visitors and conversions per day and channel, flagged traffic, the affiliates' table.

use super::prelude::*;

use crate::store::Affiliate;
use crate::web::auth::AdminSession;
use crate::web::{channel_name, chart, day_range, shell};

pub(super) async fn overview(
    AdminSession(sess): AdminSession,
    State(s): State<AppState>,
    QueryFields(q): QueryFields,
) -> Result<Response, WebError> {
    let (from, to, range_error) = match day_range(q.get("from"), q.get("to")) {
        Ok((f, t)) => (f, t, None),
        Err(e) => {
            let (f, t) = day_range(None, None).unwrap_or((0, 0));
            (f, t, Some(e))
        }
    };
    let result = async {
        let (days, _) = s.store.analytics(from, to, None).await?;
        let conv = s.store.conversions_per_day(s.program.id, from, to).await?;
        let flagged = s.store.flagged_reasons(from, to).await?;
        let affiliates = s.store.affiliates(false).await?;
        let kiosks = crate::kiosks::admin::kiosks_of(&s, None).await?;
        let funnel = s.store.referral_funnel(s.program.id).await?;
        let outstanding = s.store.rewards_outstanding(s.program.id).await?;
        Ok::<_, crate::store::StoreError>((
            days,
            conv,
            flagged,
            affiliates,
            kiosks,
            funnel,
            outstanding,
        ))
    }
    .await;
    let (days, conv, flagged, affiliates, kiosks, funnel, outstanding) = result?;
    let n_days = usize::try_from(to - from + 1).unwrap_or(0);
    let labels: Vec<String> = (from..=to).map(tapkit_core::date::format_date).collect();
    let mut per_day = vec![vec![0i64; 4]; n_days];
    let mut conv_day = vec![vec![0i64; 1]; n_days];
    let mut by_channel = [0i64; 4];
    let (mut clicks, mut attributed, mut visitors, mut flagged_n, mut previews) = (0, 0, 0, 0, 0);
    let mut per_aff: std::collections::BTreeMap<i64, [i64; 5]> = Default::default();
    for d in &days {
        if let Some(row) = usize::try_from(d.day - from)
            .ok()
            .and_then(|i| per_day.get_mut(i))
        {
            for (k, v) in d.by_channel.iter().enumerate() {
                row[k] += v;
            }
        }
        for (k, v) in d.by_channel.iter().enumerate() {
            by_channel[k] += v;
        }
        clicks += d.clicks;
        attributed += d.attributed;
        visitors += d.visitors;
        flagged_n += d.flagged;
        previews += d.previews;
        let e = per_aff.entry(d.affiliate_id).or_default();
        e[0] += d.clicks;
        e[1] += d.attributed;
        e[2] += d.visitors;
        e[3] += d.flagged;
        e[4] += d.previews;
    }
    let mut conversions = 0;
    for (day, n) in &conv {
        if let Some(row) = usize::try_from(day - from)
            .ok()
            .and_then(|i| conv_day.get_mut(i))
        {
            row[0] += n;
        }
        conversions += n;
    }
    let names: std::collections::HashMap<i64, &Affiliate> =
        affiliates.iter().map(|a| (a.id, a)).collect();
    let now = now_ms();
    let online = kiosks
        .iter()
        .filter(|k| crate::kiosks::admin::is_online(&s, k, now))
        .count();
    let active_kiosks = kiosks.iter().filter(|k| k.status == "active").count();
    let series: Vec<&str> = CHANNELS.iter().map(|c| channel_name(c)).collect();
    let body = html! {
        h1 { "Overview" }
        @if let Some(e) = &range_error { (error_notice(e)) }
        form.row method="get" action="/admin" aria-label="Date range" {
            div { label for="from" { "From" } input id="from" name="from" type="date" value=(tapkit_core::date::format_date(from)); }
            div { label for="to" { "To" } input id="to" name="to" type="date" value=(tapkit_core::date::format_date(to)); }
            div { button type="submit" class="secondary" { "Show" } }
        }
        h2 { "Totals" }
        div.cards {
            div.stat { span.v { (clicks) } "clicks" }
            div.stat { span.v { (visitors) } "unique visitors" }
            div.stat { span.v { (attributed) } "attributed clicks" }
            div.stat { span.v { (conversions) } "conversions" }
            div.stat { span.v { (flagged_n) } "flagged (not counted)" }
            div.stat { span.v { (previews) } "link previews (not counted)" }
            div.stat { span.v { (online) " / " (active_kiosks) } "counter displays online" }
        }
        h2 { "Clicks per day, by channel" }
        (chart::stacked_bars("clicks-day", "Clicks per day by channel", &labels, &series, &per_day))
        h2 { "Conversions per day" }
        (chart::stacked_bars("conv-day", "Attributed conversions per day", &labels, &["Conversions"], &conv_day))
        h2 { "Clicks by channel" }
        (chart::hbars("by-channel", "Clicks by channel", &CHANNELS.iter().zip(by_channel).map(|(c, v)| (channel_name(c).to_owned(), v)).collect::<Vec<_>>()))
        h2 { "By affiliate" }
        @if per_aff.is_empty() {
            p.muted { "No clicks in this range." }
        } @else {
            div.scroll { table {
                caption.muted { "Flagged traffic and previews are shown apart and never counted as clicks." }
                thead { tr {
                    th scope="col" { "Affiliate" } th.n scope="col" { "Clicks" } th.n scope="col" { "Attributed" }
                    th.n scope="col" { "Visitors" } th.n scope="col" { "Flagged" } th.n scope="col" { "Previews" }
                } }
                tbody {
                    @for (id, v) in &per_aff {
                        tr {
                            th scope="row" { a href={"/admin/affiliates/" (id)} { (names.get(id).map_or("(unknown)", |a| a.name.as_str())) } }
                            td.n { (v[0]) } td.n { (v[1]) } td.n { (v[2]) } td.n { (v[3]) } td.n { (v[4]) }
                        }
                    }
                }
            } }
        }
        h2 { "Referral funnel" }
        @if funnel.is_empty() {
            p.muted { "No referrers yet." }
        } @else {
            div.scroll tabindex="0" role="region" aria-label="Referral funnel" { table {
                caption.muted { "All time, by kind of referrer: their links and cards, the taps they brought, the bookings, the rewards issued and the rewards used at the checkout." }
                thead { tr {
                    th scope="col" { "Referrers" } th.n scope="col" { "Links" } th.n scope="col" { "Taps" }
                    th.n scope="col" { "Bookings" } th.n scope="col" { "Rewards" } th.n scope="col" { "Redeemed" }
                } }
                tbody { @for f in &funnel { tr {
                    th scope="row" { (kind_name(&f.kind)) }
                    td.n { (f.referrers) } td.n { (f.taps) } td.n { (f.bookings) } td.n { (f.rewards) } td.n { (f.redemptions) }
                } } }
            } }
        }
        h2 { "Rewards outstanding" }
        @if outstanding.is_empty() {
            p.muted { "No reward is waiting to be used." }
        } @else {
            p.muted { "Issued to referrers and not yet used or expired: what the brand owes in rewards." }
            div.cards { @for o in &outstanding {
                div.stat { span.v { (crate::web::money(o.balance, &o.unit)) } (o.rewards) " open rewards" }
            } }
        }
        h2 { "Flagged traffic" }
        @if flagged.is_empty() {
            p.muted { "Nothing flagged in this range." }
        } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Kind" } th scope="col" { "Reason" } th.n scope="col" { "Count" } } }
                tbody { @for r in &flagged { tr {
                    td { @if r.outcome == "preview" { "Link preview" } @else { "Flagged" } }
                    td { (reason_text(&r.reason)) }
                    td.n { (r.n) }
                } } }
            } }
        }
    };
    Ok(shell(&s, &sess, "Overview", "/admin", body))
}

fn kind_name(kind: &str) -> &str {
    match kind {
        "customer" => "Customers",
        "business" => "Businesses",
        "influencer" => "Influencers",
        other => other,
    }
}

pub(super) fn reason_text(r: &str) -> String {
    match r {
        "rate_limited" => "Too many clicks from one address (rate limit)".into(),
        "replayed_counter" => "Card tap counter did not increase (copied or replayed URL)".into(),
        "preview" | "" => "Link preview or crawler".into(),
        "bad_sun_mac" => "Signed card tap whose signature did not verify (altered or forged URL)".into(),
        "bad_sun_data" => "Signed card tap under keys this server does not hold (another deployment's card, or forged)".into(),
        "card_needs_sun" => "Plain card URL naming a signed NTAG 424 DNA card (made up)".into(),
        "sun_keys_missing" => "Signed card tap, but the server has no SUN key file (TAPKIT_SUN_KEYS_FILE)".into(),
        other => other.replace('_', " "),
    }
}
