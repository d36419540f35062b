//! What each ledger entry type does to the portal's figures, on the hand-checked set of
//! fixtures/registers/entries (its README holds the table this test checks), and the art. 62
//! allocation of payments that name no installment. Both backends (PostgreSQL with
//! EURZAD_TEST_POSTGRES_URL).
// Amounts are written as złoty_grosze (400_00 is 400,00 zł), as the fixture's README reads.
#![allow(clippy::inconsistent_digit_grouping)]

mod common;

use common::*;
use eurzad::registers::csv_source::FileEncoding;
use eurzad::registers::register;
use eurzad::store::Store;
use eurzad::store::registers::SyncMode;
use sqlx::Row;

const REGISTERS: [&str; 7] = [
    "parties",
    "accounts",
    "obligors",
    "installments",
    "ledger",
    "assessments",
    "assessment_components",
];

/// A migrated database holding the hand-checked set, with accounts for Jan (1) and Anna (2).
async fn loaded(dir: &std::path::Path) -> (TestDatabase, Store, sqlx::AnyPool) {
    let db = test_database(dir).await;
    let store = Store::connect(&db.creating_url(), 2).await.unwrap();
    store.migrate().await.unwrap();
    for name in REGISTERS {
        let path = fixture(&format!("registers/entries/{name}.csv"));
        store
            .sync_file(
                register(name).unwrap(),
                &path,
                SyncMode::Full,
                FileEncoding::Auto,
                "test",
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let pool = any_pool(&db.url).await;
    let ts = "'2026-11-01 10:00:00+00:00'";
    for (id, pesel) in [(1, "85031412347"), (2, "90010112349")] {
        exec(&pool, &format!(
            "INSERT INTO account (id, pesel, given_name, surname, status, created_at, updated_at) \
             VALUES ({id}, '{pesel}', 'G', 'S', 'active', {ts}, {ts})"
        ))
        .await;
    }
    (db, store, pool)
}

/// (account, nrb, charged, paid, due, overdue, party name) per liability row of a viewer.
async fn liabilities(
    pool: &sqlx::AnyPool,
    viewer: i64,
) -> Vec<(String, String, i64, i64, i64, i64, String)> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT account_id, nrb, CAST(charged_gr AS BIGINT), CAST(paid_gr AS BIGINT), CAST(due_gr AS BIGINT), \
         CAST(overdue AS BIGINT), party_name FROM portal_liabilities WHERE viewer_account_id = {viewer} ORDER BY account_id"
    )))
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6)))
    .collect()
}

/// (installment, paid, allocated, outstanding, overdue) of one account, as viewer 1 sees it.
async fn installments(
    pool: &sqlx::AnyPool,
    viewer: i64,
    account: &str,
) -> Vec<(String, i64, i64, i64, i64)> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT installment_id, CAST(paid_gr AS BIGINT), CAST(allocated_gr AS BIGINT), CAST(outstanding_gr AS BIGINT), \
         CAST(overdue AS BIGINT) FROM portal_installments WHERE viewer_account_id = {viewer} AND account_id = '{account}' \
         ORDER BY due_date"
    )))
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
    .collect()
}

/// One run of `register_name` over `text`, written to `dir/name`.
async fn sync_text(
    store: &Store,
    dir: &std::path::Path,
    name: &str,
    register_name: &str,
    text: String,
) -> Result<eurzad::store::registers::SyncOutcome, eurzad::store::registers::SyncError> {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    store
        .sync_file(
            register(register_name).unwrap(),
            &path,
            SyncMode::Full,
            FileEncoding::Auto,
            "test",
        )
        .await
}

fn s(v: &str) -> String {
    v.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_entry_type_moves_the_figures_as_the_definitions_say() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store, pool) = loaded(dir.path()).await;
    // Jan: his own K1 (with Anna) and K3; the NRBs were printed with groups and a PL prefix.
    assert_eq!(
        liabilities(&pool, 1).await,
        vec![
            (
                s("K1"),
                s("07109010140000000000000001"),
                400_00,
                400_00,
                0,
                0,
                s("Jan Kowalski")
            ),
            (
                s("K3"),
                s("77109010140000000000000002"),
                300_00,
                150_00,
                150_00,
                1,
                s("Jan Kowalski")
            ),
        ]
    );
    // Anna, a co-obligor of K1 only, sees it named after its party.
    assert_eq!(
        liabilities(&pool, 2).await,
        vec![(
            s("K1"),
            s("07109010140000000000000001"),
            400_00,
            400_00,
            0,
            0,
            s("Jan Kowalski")
        )]
    );
    // K2 and K4 are the firm's: seen through a representation by its REGON, in scope.
    seed_request(&pool).await;
    exec(&pool, "INSERT INTO representation (id, agent_account_id, principal_kind, principal_name, principal_id_type, \
        principal_id, basis, valid_from, valid_to, status, source_request_id, source_document_id, verified_by, verified_at) \
        VALUES (1, 2, 'P', 'Transport Testowy', 'REGON', '123456785', 'KRS', '2026-01-01', NULL, 'active', 1, 1, 't', \
        '2026-11-01 10:00:00+00:00')").await;
    exec(
        &pool,
        "INSERT INTO representation_scope (representation_id, scope) VALUES (1, 'podatki')",
    )
    .await;
    let anna = liabilities(&pool, 2).await;
    assert_eq!(
        anna[1..],
        [
            (
                s("K2"),
                s("50109010140000000000000003"),
                796_00,
                500_00,
                296_00,
                1,
                s("Transport Testowy Sp. z o.o.")
            ),
            (
                s("K4"),
                s("23109010140000000000000004"),
                3846_00,
                3923_00,
                -77_00,
                0,
                s("Transport Testowy Sp. z o.o.")
            ),
        ]
    );
    // Installment by installment, as the fixture's README lists them.
    assert_eq!(
        installments(&pool, 1, "K1").await,
        (1..=4)
            .map(|n| (format!("K1-R{n}"), 100_00, 100_00, 0, 0))
            .collect::<Vec<_>>(),
        "a payment naming no installment and covering everything leaves nothing overdue"
    );
    assert_eq!(
        installments(&pool, 1, "K3").await,
        vec![
            (s("K3-R1"), 150_00, 150_00, 0, 0),
            (s("K3-R2"), 0, 0, 150_00, 1)
        ],
        "half paid: the earliest installment is paid first"
    );
    assert_eq!(
        installments(&pool, 2, "K2").await,
        vec![
            (s("K2-R1"), 400_00, 0, 0, 0),
            (s("K2-R2"), 100_00, 100_00, 300_00, 1)
        ]
    );
    assert_eq!(
        installments(&pool, 2, "K4").await,
        vec![
            (s("K4-R1"), 2000_00, 0, 0, 0),
            (s("K4-R2"), 1923_00, 0, 0, 0)
        ],
        "an overpaid installment shows what was paid, and nothing outstanding"
    );
    // The components behind the figures, to the grosz.
    let components: Vec<(String, String, i64)> = sqlx::query(
        "SELECT component_id, subject, CAST(amount_gr AS BIGINT) FROM portal_tax_components \
         WHERE viewer_account_id = 1 ORDER BY component_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect();
    assert_eq!(
        components,
        vec![
            (s("W1-1"), s("land_other"), 142_00),
            (s("W1-2"), s("building_residential"), 258_00)
        ]
    );
    let totals: Vec<(String, i64)> = sqlx::query(
        "SELECT assessment_id, CAST(total_gr AS BIGINT) FROM portal_assessments WHERE viewer_account_id = 2 ORDER BY assessment_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    assert_eq!(totals, vec![(s("W1"), 400_00), (s("W2"), 3846_00)]);
    store.close().await;
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_later_ledger_moves_the_allocation_and_nothing_else_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store, pool) = loaded(dir.path()).await;
    // K3's payment now names R2 instead: R1 becomes the unpaid one.
    let ledger = std::fs::read_to_string(fixture("registers/entries/ledger.csv"))
        .unwrap()
        .replace("L12;K3;2026;payment;;", "L12;K3;2026;payment;K3-R2;");
    sync_text(&store, dir.path(), "ledger-2.csv", "ledger", ledger)
        .await
        .unwrap();
    assert_eq!(
        installments(&pool, 1, "K3").await,
        vec![(s("K3-R1"), 0, 0, 150_00, 1), (s("K3-R2"), 150_00, 0, 0, 0)]
    );
    // A new installment alone (no ledger change) is shown at once, unpaid.
    let more = std::fs::read_to_string(fixture("registers/entries/installments.csv")).unwrap()
        + "K3-R3;K3;2027;1;2027-03-15;150,00\n";
    sync_text(
        &store,
        dir.path(),
        "installments-2.csv",
        "installments",
        more,
    )
    .await
    .unwrap();
    let rows = liabilities(&pool, 1).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[2].0, "K3");
    assert_eq!(
        (rows[2].2, rows[2].3, rows[2].5),
        (0, 0, 0),
        "2027: nothing charged yet, not due"
    );
    store.close().await;
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn components_and_amounts_that_break_the_rules_are_refused_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, store, pool) = loaded(dir.path()).await;
    let refused = |name: &'static str, register_name: &'static str, text: String| {
        let store = &store;
        let dir = dir.path();
        async move {
            sync_text(store, dir, name, register_name, text)
                .await
                .expect_err("refused")
                .to_string()
        }
    };
    let components =
        std::fs::read_to_string(fixture("registers/entries/assessment_components.csv")).unwrap();
    // 258,23 is not rounded as art. 63 says.
    let error = refused(
        "components-rounding.csv",
        "assessment_components",
        components.replace(";258,00", ";258,23"),
    )
    .await;
    assert!(
        error.contains("components-rounding.csv:3: column kwota: 258,23 zł is not base × rate (217 × 1,19) rounded to whole złoty (art. 63): 258,00 zł"),
        "{error}"
    );
    // Components that no longer sum to the assessment's total.
    let error = refused(
        "components-sum.csv",
        "assessment_components",
        components.replace(
            "W1-2;W1;building_residential;dom;;;m2;217;1,19;258,00",
            "W1-2;W1;building_residential;dom;;;m2;200;1,19;238,00",
        ),
    )
    .await;
    assert!(
        error.contains("components-sum.csv: assessment \"W1\": its components sum to 380,00 zł, its total (assessments) is 400,00 zł"),
        "{error}"
    );
    // A vehicle without its registration; a unit that does not fit the subject.
    let error = refused(
        "components-vehicle.csv",
        "assessment_components",
        components.replace("TST 12345", ""),
    )
    .await;
    assert!(
        error.contains("components-vehicle.csv:4: column nr_rejestracyjny: "),
        "{error}"
    );
    let error = refused(
        "components-unit.csv",
        "assessment_components",
        components.replace(
            "land_other;działka 142/3;;;m2",
            "land_other;działka 142/3;;;ha",
        ),
    )
    .await;
    assert!(
        error.contains(
            "components-unit.csv:2: column jednostka: land_other is measured in m2, not ha"
        ),
        "{error}"
    );
    // A ledger amount that is negative outside a correction.
    let ledger = std::fs::read_to_string(fixture("registers/entries/ledger.csv")).unwrap();
    let error = refused(
        "ledger-negative.csv",
        "ledger",
        ledger.replace(";50,00", ";-50,00"),
    )
    .await;
    assert!(
        error.contains(
            "ledger-negative.csv:7: column kwota: an entry of type write_off must be positive"
        ),
        "{error}"
    );
    // The old, undefined `overpayment` type is refused, naming the ones there are.
    let error = refused(
        "ledger-old.csv",
        "ledger",
        ledger.replace("overpayment_refund", "overpayment"),
    )
    .await;
    assert!(
        error.contains("ledger-old.csv:4: column typ: \"overpayment\" is not one of")
            && error.contains("overpayment_refund"),
        "{error}"
    );
    // Nothing of it was applied: the figures are the fixture's.
    assert_eq!(liabilities(&pool, 1).await[1].2, 300_00);
    store.close().await;
    pool.close().await;
}
