//! The portal's views show a represented party's data only through a representation that is
//! active, within its validity, of an active account, and in scope. Rows are written straight
//! into a migrated database (SQLite, or PostgreSQL with EURZAD_TEST_POSTGRES_URL), and every
//! read the views allow is checked.

mod common;

use common::*;
use sqlx::Row;

#[tokio::test(flavor = "multi_thread")]
async fn views_respect_status_validity_and_scope() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_database(dir.path()).await;
    let store = eurzad::store::Store::connect(&db.url, 2).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    let pool = any_pool(&db.url).await;
    let ts = "'2026-11-01 10:00:00+00:00'";
    seed_request(&pool).await;
    for (id, pesel, status) in [
        (1, "85031412347", "active"),
        (2, "90010112349", "active"),
        (3, "75122498769", "blocked"),
    ] {
        exec(&pool, &format!(
            "INSERT INTO account (id, pesel, given_name, surname, status, created_at, updated_at) \
             VALUES ({id}, '{pesel}', 'G', 'S', '{status}', {ts}, {ts})")).await;
    }
    // (id, agent, principal type, principal id, from, to, status, scopes)
    let representations = [
        (
            1,
            1,
            "PESEL",
            "90010112349",
            "2026-01-01",
            None,
            "active",
            vec!["korespondencja", "podatki"],
        ),
        (
            2,
            1,
            "NIP",
            "5252955037",
            "2026-01-01",
            None,
            "active",
            vec!["podatki"],
        ),
        (
            3,
            1,
            "PESEL",
            "44051401359",
            "2025-01-01",
            Some("2025-12-31"),
            "active",
            vec!["korespondencja"],
        ),
        (
            4,
            1,
            "PESEL",
            "02070803628",
            "2026-01-01",
            None,
            "revoked",
            vec!["korespondencja"],
        ),
        (
            5,
            1,
            "PESEL",
            "88071501239",
            "2999-01-01",
            None,
            "active",
            vec!["korespondencja"],
        ),
        (
            6,
            3,
            "PESEL",
            "90010112349",
            "2026-01-01",
            None,
            "active",
            vec!["korespondencja"],
        ),
    ];
    for (id, agent, kind, principal, from, to, status, scopes) in &representations {
        let to = to.map(|t| format!("'{t}'")).unwrap_or("NULL".into());
        exec(&pool, &format!(
            "INSERT INTO representation (id, agent_account_id, principal_kind, principal_name, principal_id_type, \
             principal_id, basis, valid_from, valid_to, status, source_request_id, source_document_id, verified_by, \
             verified_at) VALUES ({id}, {agent}, 'F', 'N', '{kind}', '{principal}', 'upowaznienie', '{from}', {to}, \
             '{status}', 1, 1, 'test', {ts})")).await;
        for scope in scopes {
            exec(&pool, &format!(
                "INSERT INTO representation_scope (representation_id, scope) VALUES ({id}, '{scope}')")).await;
        }
    }
    // Letters from: Jan himself, Anna (represented, korespondencja), the company (podatki
    // only), an expired, a revoked and a not-yet-valid representation's principal.
    let letters = [
        (1, "PESEL", "85031412347"),
        (2, "PESEL", "90010112349"),
        (3, "NIP", "5252955037"),
        (4, "PESEL", "44051401359"),
        (5, "PESEL", "02070803628"),
        (6, "PESEL", "88071501239"),
    ];
    for (id, kind, party) in letters {
        exec(&pool, &format!(
            "INSERT INTO inbound_document (id, identity_key, box_address, podmiot_identyfikator, podmiot_typ_osoby, \
             podmiot_zgoda, data_nadania, nazwa_skrytki, adres_skrytki, czy_testowe, dane_dodatkowe, nazwa_pliku, \
             content, content_sha256, skrot, received_at) VALUES ({}, 'k{id}', '/b', 'p', 'F', false, 'x', 's', '/b', \
             false, '', 'l.xml', '', 'h', 's', {ts})", id + 10)).await;
        exec(&pool, &format!(
            "INSERT INTO correspondence (id, document_id, party_id_type, party_id, form_type, title, body, box_address, \
             received_at) VALUES ({id}, {}, '{kind}', '{party}', 'general_letter', 'T{id}', 'B', '/b', {ts})", id + 10)).await;
    }
    let seen = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query(sql)
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get::<i64, _>(0), r.get::<String, _>(1)))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        seen("SELECT viewer_account_id, access || ':' || title FROM portal_correspondence ORDER BY viewer_account_id, title").await,
        vec![
            (1, "own:T1".to_string()),
            (1, "representation:T2".to_string()),
            (2, "own:T2".to_string()),
        ],
        "Jan sees his own and Anna's; Anna her own; the blocked account nothing"
    );
    assert_eq!(
        seen("SELECT agent_account_id, principal_id || ':' || scope FROM portal_representations ORDER BY agent_account_id, principal_id, scope").await,
        vec![
            (1, "5252955037:podatki".to_string()),
            (1, "90010112349:korespondencja".to_string()),
            (1, "90010112349:podatki".to_string()),
        ]
    );
    let accounts: Vec<String> =
        sqlx::query("SELECT pesel FROM portal_accounts WHERE status = 'active' ORDER BY pesel")
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(accounts, ["85031412347", "90010112349"]);
    pool.close().await;
}
