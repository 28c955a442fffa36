//! Unknown codes and card UIDs on `/r/{code}`: a flood of well-formed values the
//! database does not hold costs one database read per distinct value, not one per tap
//! (the directory remembers misses until its next reload), and a reload forgets them,
//! so a card registered a moment later works at once. SQLite and PostgreSQL.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::*;
use tapkit_core::code::ReferralCode;

impl Server {
    /// A tap of `path`: its status and how many cookies it set.
    async fn tap_cookies(&self, path: &str) -> usize {
        let r = self
            .call(
                Request::builder()
                    .uri(path)
                    .header(header::USER_AGENT, UA)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status(), StatusCode::FOUND, "{path}");
        r.headers().get_all(header::SET_COOKIE).iter().count()
    }

    /// `tapkit_directory_lookups_total` from `/metrics`.
    async fn lookups(&self) -> u64 {
        let r = self
            .call(
                Request::builder()
                    .uri("/metrics")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        let text = String::from_utf8(
            axum::body::to_bytes(r.into_body(), 1 << 20)
                .await
                .unwrap()
                .to_vec(),
        )
        .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("tapkit_directory_lookups_total "))
            .unwrap_or_else(|| panic!("no lookups counter in:\n{text}"))
            .parse()
            .unwrap()
    }

    async fn reasons(&self, reason: &str) -> i64 {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) AS n FROM clicks WHERE reason = $1")
            .bind(reason)
            .fetch_one(&self.pool().await)
            .await
            .unwrap()
            .get::<i64, _>("n")
    }
}

async fn a_flood_of_unknown_values_reads_the_database_once_each(backend: Backend) {
    let Some(s) = server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let (a, code) = s.affiliate("Iron Gym", "business").await;
    let start = s.lookups().await;

    // A well-formed code (its check symbol is right) that no affiliate has.
    let nobody = ReferralCode::generate("Nobody Here", 0x5eed).to_string();
    for _ in 0..5 {
        assert_eq!(s.tap_cookies(&format!("/r/{nobody}")).await, 0);
    }
    // A card UID nobody registered, with rising counters as a phone sends them.
    for n in 1..=5 {
        let path = format!("/r/{code}?m=04FFFFFFFFFFFFx{n:06X}");
        assert_eq!(s.tap_cookies(&path).await, 0);
    }
    assert_eq!(
        s.lookups().await - start,
        2,
        "one database read for the code, one for the card"
    );
    // Every tap is still recorded, with why it earned nothing.
    assert_eq!(s.reasons("unknown_code").await, 5);
    assert_eq!(s.reasons("card_not_registered").await, 5);

    // The card is registered now: the directory reloads and forgets the miss.
    let (st, _) = s
        .admin(
            Method::POST,
            "/api/admin/cards",
            &format!(r#"{{"affiliate_id":{a},"uid":"04FFFFFFFFFFFF"}}"#),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(
        s.tap_cookies(&format!("/r/{code}?m=04FFFFFFFFFFFFx000006"))
            .await,
        2,
        "the registered card attributes at once"
    );
    assert_eq!(s.reasons("card_not_registered").await, 5);
}

on_both_databases!(a_flood_of_unknown_values_reads_the_database_once_each);
