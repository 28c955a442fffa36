//! Memberships end to end, over three months on a shifted clock, with the real processes
//! on SQLite and on PostgreSQL: `tapkit-server`; the sample booking app
//! (`deploy/sample-site/booking_app.py`) as the brand's membership checkout and payment
//! system; and Python's SMTP server process receiving the dunning emails.
//!
//! - 16 January 2027: a customer taps a partner's card (its registered UID and a rising
//!   counter in the mirror, as a phone sends it) and joins Plus at the checkout, which
//!   sends the signed `membership_started` with the attribution cookie; three more join
//!   (Basic, Plus, Basic). One Basic member pauses for a month.
//! - 1 February: the renewal run; two cards decline. 4 February: both retries fail.
//!   8 February: the Basic member's card works again and the second retry recovers it;
//!   the other fails again. 10 February: the first member upgrades to Premium.
//!   15 February: the last retry fails and that member lapses.
//! - 1 March: the renewal run; the paused member is back.
//!
//! Each date is a restart of the server and the booking app on that clock (libfaketime,
//! relative offsets, so both share one clock), which also runs the renewal and the
//! charges as a server does at start. The invoices, the partner's commissions and the MRR
//! movements are compared with values computed by hand; the dunning emails are counted
//! at the SMTP server.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use serde_json::{Value, json};
use tapkit_e2e::{
    BookingApp, Database, KillOnDrop, Server, clock_at, drop_postgres_database, eventually,
    free_port, http_request, mail_recipients, postgres_database, smtp_server, sql,
};

const WEBHOOK_SECRET: &str = "e2e-memberships-webhook-secret";

/// The sample's plans (Basic $29 / 2 visits, Plus $49 / 4, Premium $79 / unlimited),
/// dunning on days 3, 7 and 14, and partners paid 10 % of a member's first three paid
/// months.
fn config(charge_url: &str) -> String {
    format!(
        r#"
[program]
name = "Shine Auto Detailing"
domain = "book.example.com"
booking_url = "https://book.example.com/"
cookie_days = 30

[program.fraud]
max_per_ip_per_day = 0
review_every = 0

[program.commission]
currency = "USD"

[[program.commission.rules]]
on = "membership"
affiliate_kind = "business"
months = 3
rewards = [{{ unit = "cash", percent_bp = 1000 }}]

[program.membership]
retry_days = [3, 7, 14]
grace_days = 7

[[program.membership.plans]]
id = "basic"
name = "Basic"
price_minor = 2900
visits = 2
add_on_discount_bp = 1000
priority = "standard"

[[program.membership.plans]]
id = "plus"
name = "Plus"
price_minor = 4900
visits = 4
add_on_discount_bp = 1500
priority = "high"

[[program.membership.plans]]
id = "premium"
name = "Premium"
price_minor = 7900
visits = "unlimited"
add_on_discount_bp = 2000
priority = "instant"

[program.payments]
charge_url = "{charge_url}"
update_payment_url = "https://book.example.com/account/card?customer={{customer_id}}"
backoff_ms = 50
"#
    )
}

struct World {
    server: Server,
    app: BookingApp,
    database: Database,
    smtp_out: std::path::PathBuf,
    _smtp: KillOnDrop,
}

impl World {
    /// Both processes restarted on `at`'s clock; the server's start runs the renewal and
    /// the charges.
    fn at(&mut self, at: &str) {
        let clock = clock_at(at);
        // The payment system first: the server charges as it starts.
        self.app.restart(&clock);
        self.server.kill();
        for (k, v) in &clock {
            self.server.set_env(k, v);
        }
        self.server.spawn();
    }

    fn api(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string());
        let (status, v) = self.server.api(method, path, body.as_deref());
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    fn member(&self, id: i64) -> Value {
        self.api("GET", &format!("/api/admin/members/{id}"), None)
    }

    /// The member joins at the brand's checkout; returns (member id, customer id).
    fn join(&self, name: &str, email: &str, plan: &str, attribution: &str) -> (i64, String) {
        let (status, page) = self.app.form(
            "/memberships/join",
            &[
                ("plan", plan),
                ("name", name),
                ("email", email),
                ("attribution", attribution),
            ],
        );
        assert_eq!(status, 200, "{page}");
        let strong = |id: &str| {
            let start = page.find(&format!("<strong id={id}>")).unwrap() + id.len() + 12;
            page[start..start + page[start..].find('<').unwrap()].to_owned()
        };
        (strong("member").parse().unwrap(), strong("customer"))
    }

    /// Every invoice as `member|period|kind|plan|amount|status|failures`, by id.
    fn invoices(&self) -> Vec<String> {
        sql(
            &self.database,
            &self.server.dir,
            "SELECT member_id, period, kind, plan, amount_minor, status, charge_failures \
             FROM invoices ORDER BY member_id, id",
        )
    }

    /// Waits until `ok` holds of the members' API answers (the charges of a start run in
    /// the background).
    fn until(&self, what: &str, ok: impl Fn(&World) -> bool) {
        assert!(
            eventually(Duration::from_secs(30), || ok(self)),
            "{what}; invoices: {:#?}\nserver log:\n{}",
            self.invoices(),
            self.server.log()
        );
    }

    /// The charges the payment system made, by idempotency key.
    fn charges(&self) -> Value {
        self.app.staff_call("GET", "/staff/payments")
    }
}

/// The phone's tap: `/r/{code}` with the card's UID and counter; the attribution
/// token is the readable cookie the redirect sets.
fn tap(server: &Server, code: &str, uid: &str, counter: u32) -> String {
    let (status, head, _) = http_request(
        &server.addr,
        "GET",
        &format!("/r/{code}?m={uid}x{counter:06X}"),
        "User-Agent: Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1\r\n",
        None,
    );
    assert_eq!(status, 302, "{head}");
    head.lines()
        .filter_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie")
                .then_some(value.trim())
        })
        .find_map(|c| c.strip_prefix("tapkit_ref_js="))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no tapkit_ref_js cookie: {head}"))
}

#[test]
fn three_months_of_memberships_on_sqlite() {
    three_months(false);
}

#[test]
fn three_months_of_memberships_on_postgres() {
    three_months(true);
}

#[allow(clippy::too_many_lines)] // one story, told in order
fn three_months(on_postgres: bool) {
    let tag = if on_postgres { "postgres" } else { "sqlite" };
    let pg = if on_postgres {
        let Some(pg) = postgres_database(&format!("members_{tag}")) else {
            return;
        };
        Some(pg)
    } else {
        None
    };
    let database = pg
        .as_ref()
        .map_or(Database::Sqlite, |(url, _)| Database::Postgres(url.clone()));
    let dir = std::env::temp_dir().join(format!(
        "tapkit-membership-world-{tag}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let smtp_out = dir.join("smtp.out");
    let (smtp, smtp_port) = smtp_server(&smtp_out);
    let app_addr = format!("127.0.0.1:{}", free_port());
    std::fs::write(
        dir.join("tapkit.toml"),
        config(&format!("http://{app_addr}/payments/charge")),
    )
    .unwrap();

    // ---- 16 January 2027 -----------------------------------------------------------
    let jan = clock_at("2027-01-16T12:00:00Z");
    let mut env: Vec<(String, String)> = vec![
        (
            "TAPKIT_CONFIG".into(),
            dir.join("tapkit.toml").display().to_string(),
        ),
        ("TAPKIT_WEBHOOK_SECRET".into(), WEBHOOK_SECRET.into()),
        (
            "TAPKIT_SMTP_URL".into(),
            format!("smtp://127.0.0.1:{smtp_port}"),
        ),
        (
            "TAPKIT_MAIL_FROM".into(),
            "Shine <members@book.example.com>".into(),
        ),
    ];
    env.extend(jan.iter().cloned());
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start(
        &format!("members-{tag}"),
        pg.as_ref().map(|(url, _)| url.as_str()),
        &env_ref,
    );
    let app = BookingApp::start_at(&app_addr, &dir, &server.addr, WEBHOOK_SECRET, &jan);
    let mut w = World {
        server,
        app,
        database,
        smtp_out,
        _smtp: smtp,
    };

    // The partner, its card registered after the write, and a customer's tap.
    let gym = w.api(
        "POST",
        "/api/admin/affiliates",
        Some(json!({"name": "Iron Gym", "kind": "business"})),
    );
    let (gym_id, gym_code) = (
        gym["id"].as_i64().unwrap(),
        gym["code"].as_str().unwrap().to_owned(),
    );
    let uid = "04A1B2C3D4E5F6";
    w.api(
        "POST",
        "/api/admin/cards",
        Some(json!({"affiliate_id": gym_id, "uid": uid})),
    );
    let token = tap(&w.server, &gym_code, uid, 7);

    let (ana, _) = w.join("Ana", "ana@example.com", "plus", &token);
    let (bo, bo_customer) = w.join("Bo", "bo@example.com", "basic", "");
    let (cy, cy_customer) = w.join("Cy", "cy@example.com", "plus", "");
    let (di, _) = w.join("Di", "di@example.com", "basic", "");
    assert_eq!(
        w.member(ana)["affiliate_id"],
        gym_id,
        "Ana came through the gym's card"
    );
    assert_eq!(w.member(bo)["affiliate_id"], Value::Null);
    for (id, plan, visits) in [
        (ana, "plus", 4),
        (bo, "basic", 2),
        (cy, "plus", 4),
        (di, "basic", 2),
    ] {
        let m = w.member(id);
        assert_eq!(
            (m["status"].as_str(), m["plan"].as_str()),
            (Some("active"), Some(plan))
        );
        assert_eq!(
            m["visits_left"], visits,
            "the full visits from the first period: {m}"
        );
    }
    // Di freezes February.
    let paused = w.api(
        "POST",
        &format!("/api/admin/members/{di}/pause"),
        Some(json!({"periods": 1})),
    );
    assert_eq!(paused["paused_until"], "2027-03", "{paused}");

    // A few minutes later (a restart runs the charges): the four first invoices are paid.
    w.at("2027-01-16T12:05:00Z");
    w.until("the first invoices are paid", |w| {
        [ana, bo, cy, di].iter().all(|id| {
            w.member(*id)["open_invoices"]
                .as_array()
                .unwrap()
                .is_empty()
        })
    });
    // Bo's and Cy's cards will decline.
    w.app
        .staff_call("POST", &format!("/staff/customers/{bo_customer}/declines"));
    w.app
        .staff_call("POST", &format!("/staff/customers/{cy_customer}/declines"));

    // ---- 1 February: renewals; two declines ----------------------------------------
    w.at("2027-02-01T09:00:00Z");
    w.until("Bo and Cy are past due", |w| {
        w.member(bo)["status"] == "past_due" && w.member(cy)["status"] == "past_due"
    });
    w.until("Ana's February is paid", |w| {
        w.member(ana)["open_invoices"]
            .as_array()
            .unwrap()
            .is_empty()
            && w.member(ana)["period"] == "2027-02"
    });
    assert_eq!(w.member(di)["status"], "paused");
    assert_eq!(w.member(di)["visits_left"], 0, "no visits while paused");
    // Ana used none of January's four: they roll over into February.
    let a = w.member(ana);
    assert_eq!(
        (a["rolled_over_visits"].as_i64(), a["visits_left"].as_i64()),
        (Some(4), Some(8)),
        "{a}"
    );

    // ---- 4 February: the first retries fail -----------------------------------------
    let retried = |w: &World, invoice_member: i64, attempt: u32| {
        let charges = w.charges();
        charges.as_object().unwrap().iter().any(|(key, c)| {
            key.ends_with(&format!("-attempt-{attempt}"))
                && c["customer_id"]
                    == if invoice_member == bo {
                        bo_customer.as_str()
                    } else {
                        cy_customer.as_str()
                    }
        })
    };
    w.at("2027-02-04T09:00:00Z");
    w.until("both retried once", |w| {
        retried(w, bo, 2) && retried(w, cy, 2)
    });
    w.until("both are still past due", |w| {
        w.member(bo)["status"] == "past_due" && w.member(cy)["status"] == "past_due"
    });
    // Bo updates the card.
    w.app
        .staff_call("POST", &format!("/staff/customers/{bo_customer}/card-ok"));

    // ---- 8 February: the second retry recovers Bo; Cy's fails -----------------------
    w.at("2027-02-08T09:00:00Z");
    w.until("Bo is active again", |w| w.member(bo)["status"] == "active");
    w.until("Cy retried a second time", |w| retried(w, cy, 3));
    assert_eq!(w.member(cy)["status"], "past_due");

    // ---- 10 February: Ana upgrades to Premium ---------------------------------------
    w.at("2027-02-10T12:00:00Z");
    let up = w.api(
        "POST",
        &format!("/api/admin/members/{ana}/plan"),
        Some(json!({"plan": "premium"})),
    );
    // (7900 − 4900) × 19 / 28 = 2035.71 → 2036.
    assert_eq!(up["upgrade_invoice"]["amount_minor"], 2036, "{up}");
    assert_eq!(up["visits_left"], Value::Null, "unlimited at once: {up}");
    w.at("2027-02-10T12:05:00Z");
    w.until("the upgrade is paid", |w| {
        w.member(ana)["open_invoices"]
            .as_array()
            .unwrap()
            .is_empty()
    });

    // ---- 15 February: Cy's last retry fails: lapsed ---------------------------------
    w.at("2027-02-15T09:00:00Z");
    w.until("Cy lapsed", |w| w.member(cy)["status"] == "lapsed");
    assert_eq!(w.member(cy)["status_reason"], "payment_failed");

    // ---- 1 March: renewals; Di is back ----------------------------------------------
    w.at("2027-03-01T09:00:00Z");
    w.until("March is renewed and paid", |w| {
        [ana, bo, di].iter().all(|id| {
            let m = w.member(*id);
            m["period"] == "2027-03" && m["open_invoices"].as_array().unwrap().is_empty()
        })
    });
    let d = w.member(di);
    assert_eq!(
        (d["status"].as_str(), d["visits_left"].as_i64()),
        (Some("active"), Some(2)),
        "{d}"
    );

    // ---- What it all came to ----------------------------------------------------------
    // Invoices, by hand: January has 31 days, so joining on the 16th pays 16/31 of the
    // month (Plus 4900 × 16 / 31 = 2529.03 → 2529; Basic 2900 × 16 / 31 = 1496.77 →
    // 1497). Cy's unpaid February is void once Cy lapsed.
    let row = |m: i64, p: &str, k: &str, plan: &str, amount: i64, status: &str, failures: i64| {
        format!("{m}|{p}|{k}|{plan}|{amount}|{status}|{failures}")
    };
    assert_eq!(
        w.invoices(),
        [
            row(ana, "2027-01", "first", "plus", 2529, "paid", 0),
            row(ana, "2027-02", "renewal", "plus", 4900, "paid", 0),
            row(ana, "2027-02", "upgrade", "premium", 2036, "paid", 0),
            row(ana, "2027-03", "renewal", "premium", 7900, "paid", 0),
            row(bo, "2027-01", "first", "basic", 1497, "paid", 0),
            row(bo, "2027-02", "renewal", "basic", 2900, "paid", 2),
            row(bo, "2027-03", "renewal", "basic", 2900, "paid", 0),
            row(cy, "2027-01", "first", "plus", 2529, "paid", 0),
            row(cy, "2027-02", "renewal", "plus", 4900, "void", 4),
            row(di, "2027-01", "first", "basic", 1497, "paid", 0),
            row(di, "2027-03", "renewal", "basic", 2900, "paid", 0),
        ]
    );
    // The payment system charged each attempt once: 4 firsts, 3 February renewals
    // (Bo's and Cy's first attempts declined), Bo's 2 retries, Cy's 3, the upgrade and
    // 3 March renewals.
    assert_eq!(
        w.charges().as_object().unwrap().len(),
        4 + 3 + 2 + 3 + 1 + 3
    );

    // The gym's commissions: 10 % (rounded down) of Ana's first three paid months,
    // the upgrade included in February: 252 + 490 + 203 + 790.
    let earned = w.api(
        "GET",
        &format!("/api/admin/affiliates/{gym_id}/earnings"),
        None,
    );
    assert_eq!(
        earned["owed"],
        json!([{"unit": "USD", "amount_minor": 252 + 490 + 203 + 790}]),
        "{earned}"
    );

    // MRR, by hand. January: Ana 4900 + Bo 2900 + Cy 4900 + Di 2900, all new. February:
    // Ana on Premium (+3000 expansion), Bo 2900; Cy (never paid) and Di (paused)
    // churned, 2 of 4 members. March: Di reactivated.
    let mrr = w.api(
        "GET",
        "/api/admin/memberships/mrr?from=2027-01&to=2027-03",
        None,
    );
    let months: Vec<Value> = mrr["months"]
        .as_array()
        .unwrap_or_else(|| panic!("{mrr}"))
        .iter()
        .map(|m| {
            json!([
                m["month"],
                m["mrr_minor"],
                m["new_minor"],
                m["expansion_minor"],
                m["contraction_minor"],
                m["churned_minor"],
                m["reactivated_minor"],
                m["members"],
                m["churn_rate_bp"]
            ])
        })
        .collect();
    assert_eq!(
        months,
        [
            json!(["2027-01", 15600, 15600, 0, 0, 0, 0, 4, 0]),
            json!(["2027-02", 10800, 0, 3000, 0, 7800, 0, 2, 5000]),
            json!(["2027-03", 13700, 0, 0, 0, 0, 2900, 3, 0]),
        ],
        "{mrr}"
    );

    // Dunning emails at the SMTP server: Bo twice (1 and 4 February), Cy four times
    // (1, 4, 8 and 15 February).
    let to = mail_recipients(&w.smtp_out);
    let count = |who: &str| to.iter().filter(|t| t.as_str() == who).count();
    assert_eq!(
        (count("bo@example.com"), count("cy@example.com")),
        (2, 4),
        "{to:?}"
    );
    assert_eq!(to.len(), 6, "{to:?}");
    drop(w);
    if let Some((url, base)) = pg {
        drop_postgres_database(&url, &base);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
