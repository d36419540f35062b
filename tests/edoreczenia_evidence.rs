//! A sent letter's evidences and legal state (issue 17), with the emulator in process on a
//! loopback port and the evidence worker stepped at injected times, on SQLite or PostgreSQL:
//! - deemed delivery on the right day, with the last day on Easter Monday moved to the next
//!   working day or not, as configured;
//! - bad input: an evidence whose seal is broken is kept but moves nothing; a listing that
//!   is not JSON is retried on the next pass; a letter to a string that is not an ADE, or
//!   with an attachment over the limit, is refused with a reason that names it.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
use eurzad::delivery::{DeliveryChannel, DeliveryError, OutgoingLetter};
use eurzad::edoreczenia::auth::{SystemCredentials, TokenSource};
use eurzad::edoreczenia::channel::EdoreczeniaChannel;
use eurzad::edoreczenia::client::{Pacing, READ_RETRIES, UaClient};
use eurzad::edoreczenia::evidence::DeemedDelivery;
use eurzad::edoreczenia::follow::EvidenceFollower;
use eurzad::emulator::demo_pki;
use eurzad::emulator::edoreczenia::{
    AddressEntry, REALM_PATH, TokenSettings, UaEmulator, UaSettings,
};
use eurzad::emulator::faults::{FaultKind, FaultRule};
use eurzad::store::Store;
use sqlx::Row as _;

const OFFICE: &str = "AE:PL-00000-00000-EURZD-00";
const CITIZEN: &str = "AE:PL-11111-22222-NIKTO-01";

struct Setup {
    _dir: tempfile::TempDir,
    emulator: UaEmulator,
    channel: EdoreczeniaChannel,
    store: Store,
    db: common::TestDatabase,
}

/// The emulator with its clock set so that a letter sent now has its D.1 at `d1`, and a
/// citizen who never picks letters up; a store; the office's channel.
async fn setup(d1: DateTime<Utc>) -> Setup {
    eurzad::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let realm = format!("{origin}{REALM_PATH}");
    let emulator = UaEmulator::open(UaSettings {
        state_dir: dir.path().join("emulator"),
        token: TokenSettings {
            realm: realm.clone(),
            systems: HashMap::from([(
                format!("{OFFICE}.SYSTEM.eurzad"),
                demo_pki::OFFICE_CERT.to_vec(),
            )]),
            token_lifetime: Duration::from_secs(600),
            leeway: Duration::from_secs(5),
        },
        operator_key: demo_pki::epuap_key(),
        addresses: vec![AddressEntry {
            ade: CITIZEN.into(),
            name: None,
            pesel: Some("02070803628".into()),
            nip: None,
            regon: None,
            krs: None,
            opens_after_days: None,
        }],
        clock_offset: d1 - Utc::now(),
        backdate: chrono::TimeDelta::zero(),
        task_delay: Duration::from_millis(20),
        box_delay: Duration::ZERO,
        paper_delivery: Duration::from_secs(3 * 86_400),
        seed: 3,
        fault_rate: None,
        slow_delay: Duration::from_millis(100),
    })
    .unwrap();
    let router = emulator.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let tokens = Arc::new(TokenSource::new(
        http.clone(),
        &realm,
        SystemCredentials {
            ade: OFFICE.parse().unwrap(),
            system_name: "eurzad".into(),
            private_key_pem: demo_pki::OFFICE_KEY.to_vec(),
            certificate_label: "the demo office certificate".into(),
        },
    ));
    let pacing = Pacing {
        poll_initial: Duration::from_millis(10),
        ..Pacing::default()
    };
    let client = UaClient::new(
        http,
        &format!("{origin}/api/v3"),
        OFFICE.parse().unwrap(),
        tokens,
        pacing,
    )
    .unwrap();
    let db = common::test_database(dir.path()).await;
    let store = Store::connect(&db.url, 4).await.unwrap();
    store.migrate().await.unwrap();
    Setup {
        _dir: dir,
        emulator,
        channel: EdoreczeniaChannel::electronic(client),
        store,
        db,
    }
}

fn letter(recipient: &str, content: Vec<u8>) -> OutgoingLetter {
    OutgoingLetter {
        recipient: recipient.into(),
        subject: "Informacja o rejestracji w portalu eUrząd, znak EUR.1".into(),
        file_name: "informacja-o-rejestracji-1.xml".into(),
        content,
        reference: "EUR.1".into(),
        deliver_by: None,
    }
}

/// Sends a letter to the citizen and records it as the reply step does: sent, its legal
/// state following the evidences. Its id.
async fn send_and_record(s: &Setup) -> i64 {
    let receipt = s
        .channel
        .deliver(&letter(CITIZEN, b"<Pismo>tresc</Pismo>".to_vec()))
        .await
        .unwrap();
    let pool = common::any_pool(&s.db.url).await;
    let now = Utc::now().to_rfc3339();
    let at = if s.db.kind == "postgres" {
        "CAST($4 AS TIMESTAMPTZ)"
    } else {
        "$4"
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO outbound_document (key, channel, kind, recipient, file_name, content, status, \
         document_identifier, legal_state, created_at, updated_at) \
         VALUES ('reply:1', 'edoreczenia', 'registration_info', $1, 'a.xml', $2, 'sent', $3, 'sent', {at}, {at})"
    )))
    .bind(CITIZEN)
    .bind(b"x".to_vec())
    .bind(&receipt.document_identifier)
    .bind(&now)
    .execute(&pool)
    .await
    .unwrap();
    let id: i64 = sqlx::query_scalar("SELECT id FROM outbound_document WHERE key = 'reply:1'")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    id
}

fn follower(s: &Setup, moves_off_holidays: bool) -> EvidenceFollower {
    EvidenceFollower {
        store: s.store.clone(),
        client: s.channel.client.clone(),
        deemed: DeemedDelivery {
            days: 14,
            moves_off_holidays,
            zone: chrono_tz::Europe::Warsaw,
        },
        operator_certificate: Some(demo_pki::EPUAP_CERT.to_vec()),
        recheck_after: Duration::ZERO,
        batch: 10,
    }
}

async fn state_of(s: &Setup, key: &str) -> (String, Option<NaiveDate>) {
    let standing = s.store.letter_standing(key).await.unwrap().unwrap();
    (
        standing.legal_state.unwrap().to_string(),
        standing.deemed_on,
    )
}

/// Midnight at the start of `day` in Warsaw.
fn warsaw_midnight(day: &str) -> DateTime<Utc> {
    let day: NaiveDate = day.parse().unwrap();
    chrono_tz::Europe::Warsaw
        .from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unclaimed_letter_is_deemed_delivered_on_the_right_day_easter_counted() {
    // D.1 on Monday 23 March 2026: 14 days later is Easter Monday, 6 April.
    let d1 = Utc.with_ymd_and_hms(2026, 3, 23, 9, 0, 0).unwrap();
    for (moves, day) in [(true, "2026-04-07"), (false, "2026-04-06")] {
        let s = setup(d1).await;
        let id = send_and_record(&s).await;
        let follower = follower(&s, moves);
        let deemed: NaiveDate = day.parse().unwrap();
        let before = warsaw_midnight(&(deemed.succ_opt().unwrap()).to_string())
            - chrono::TimeDelta::seconds(1);
        let passed = follower
            .follow_at(d1 + chrono::TimeDelta::hours(1))
            .await
            .unwrap();
        assert_eq!((passed.letters, passed.evidences), (1, 2), "A.1 and D.1");
        assert_eq!(state_of(&s, "reply:1").await.0, "awaiting_pickup");
        follower.follow_at(before).await.unwrap();
        assert_eq!(
            state_of(&s, "reply:1").await,
            ("awaiting_pickup".into(), None),
            "the last second of {day} (moves off holidays: {moves})"
        );
        let passed = follower
            .follow_at(before + chrono::TimeDelta::seconds(1))
            .await
            .unwrap();
        assert_eq!(passed.moved, 1);
        assert_eq!(
            state_of(&s, "reply:1").await,
            ("deemed_delivered".into(), Some(deemed)),
            "moves off holidays: {moves}"
        );
        // Final: no longer asked for.
        let passed = follower
            .follow_at(before + chrono::TimeDelta::days(1))
            .await
            .unwrap();
        assert_eq!(passed.letters, 0);
        // Kept distinct from delivered: the letter's sending status is still `sent`.
        let standing = s.store.letter_standing("reply:1").await.unwrap().unwrap();
        assert_eq!(standing.status, "sent");
        assert_eq!(standing.letter_id, id);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_seal_or_a_malformed_listing_moves_nothing_and_the_worker_goes_on() {
    let d1 = Utc::now() - chrono::TimeDelta::hours(1);
    let s = setup(d1).await;
    send_and_record(&s).await;
    let follower = follower(&s, true);
    // The listing is cut in the middle: not JSON. Nothing is stored, the pass goes on.
    s.emulator.add_fault(FaultRule {
        kind: FaultKind::Drop,
        operation: Some("evidences".into()),
        probability: None,
        // Every try of the read: the first and each retry.
        count: Some(u64::from(READ_RETRIES) + 1),
        delay_ms: 0,
    });
    let passed = follower.follow_at(Utc::now()).await.unwrap();
    assert_eq!((passed.letters, passed.failed, passed.evidences), (1, 1, 0));
    assert!(s.store.letter_evidences(1).await.unwrap().is_empty());
    // Each evidence document comes with its body changed after sealing.
    s.emulator.add_fault(FaultRule {
        kind: FaultKind::TamperedBody,
        operation: Some("evidence_file".into()),
        probability: None,
        count: Some(2),
        delay_ms: 0,
    });
    let passed = follower.follow_at(Utc::now()).await.unwrap();
    assert_eq!(passed.evidences, 2);
    let stored = s.store.letter_evidences(1).await.unwrap();
    assert_eq!(stored.len(), 2, "kept as received");
    for e in &stored {
        assert_eq!(e.seal, "invalid", "{}", e.code);
        assert!(
            e.seal_reason.as_deref().unwrap_or("").contains("digest"),
            "{:?}",
            e.seal_reason
        );
    }
    assert_eq!(
        state_of(&s, "reply:1").await.0,
        "sent",
        "a broken seal moves nothing"
    );
    // The audit log names it.
    let pool = common::any_pool(&s.db.url).await;
    let audited: i64 =
        sqlx::query("SELECT COUNT(*) FROM audit_log WHERE action = 'evidence_seal_invalid'")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
    assert_eq!(audited, 2);
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_letter_to_a_wrong_address_or_over_the_limit_is_refused_with_its_reason() {
    let s = setup(Utc::now()).await;
    let err = s
        .channel
        .deliver(&letter("AE:PL-1111-22222-NIKTO-01", b"<a/>".to_vec()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DeliveryError::Refused(e) if e.contains("AE:PL-1111-22222-NIKTO-01") && e.contains("five digits")),
        "{err}"
    );
    let huge = vec![b'a'; 50 * 1024 * 1024 + 1];
    let err = s.channel.deliver(&letter(CITIZEN, huge)).await.unwrap_err();
    assert!(
        matches!(&err, DeliveryError::Refused(e) if e.contains("52428801 bytes") && e.contains("informacja-o-rejestracji-1.xml")),
        "{err}"
    );
    // An address the operator does not know: its refusal names the field.
    let err = s
        .channel
        .deliver(&letter("AE:PL-99999-99999-NOONE-09", b"<a/>".to_vec()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DeliveryError::Refused(e) if e.contains("to[0]") && e.contains("not an active address")),
        "{err}"
    );
    assert!(s.emulator.sent().is_empty(), "nothing was sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_letter_over_15_mb_goes_through_a_draft_whole() {
    let s = setup(Utc::now()).await;
    // One byte over what a message may carry at once.
    let big: Vec<u8> = (0..15 * 1024 * 1024 + 1).map(|i| (i % 251) as u8).collect();
    let receipt = s
        .channel
        .deliver(&letter(CITIZEN, big.clone()))
        .await
        .unwrap();
    let sent = s.emulator.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].message_id, receipt.document_identifier);
    assert_eq!(sent[0].to, CITIZEN);
    let (name, size, sha256) = &sent[0].attachments[0];
    assert_eq!(name, "informacja-o-rejestracji-1.xml");
    assert_eq!(*size, big.len() as u64);
    assert_eq!(
        *sha256,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&big)),
        "byte for byte"
    );
    // The direct path would have refused it: the emulator holds the client to the drafts.
    let counters = s.emulator.counters();
    assert_eq!(counters.refused_sends, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn deemed_delivery_waits_while_an_evidence_could_not_be_had() {
    let d1 = Utc::now() - chrono::TimeDelta::days(30);
    let s = setup(d1).await;
    send_and_record(&s).await;
    let follower = follower(&s, true);
    // The worker sees A.1 and D.1 an hour after D.1.
    follower
        .follow_at(d1 + chrono::TimeDelta::hours(1))
        .await
        .unwrap();
    assert_eq!(state_of(&s, "reply:1").await.0, "awaiting_pickup");
    // The recipient opens it that day (E.1), but the worker asks only 30 days later, and
    // the E.1 document cannot be had then. Concluding from A.1 and D.1 alone would make the
    // letter deemed delivered, for good.
    let message = s.emulator.sent()[0].message_id.clone();
    s.emulator.open_message(&message).unwrap();
    s.emulator.add_fault(FaultRule {
        kind: FaultKind::Http500,
        operation: Some("evidence_file".into()),
        probability: None,
        count: Some(u64::from(READ_RETRIES) + 1),
        delay_ms: 0,
    });
    let passed = follower.follow_at(Utc::now()).await.unwrap();
    assert_eq!((passed.failed, passed.evidences), (1, 0));
    assert_eq!(state_of(&s, "reply:1").await.0, "awaiting_pickup");
    follower.follow_at(Utc::now()).await.unwrap();
    assert_eq!(state_of(&s, "reply:1").await, ("delivered".into(), None));
}
