//! The portal's fast views against an oracle, row for row, on a generated town with every
//! visibility case: own data, co-obligors, representations in and out of scope, expired,
//! not yet valid, revoked, of blocked accounts, NIP and REGON principals; and every entry
//! type (overpayments, write-offs, interest, corrections, payments that name no installment).
//!
//! The oracle is kept apart from the product on purpose:
//! - who sees which account is the view definitions of migration 0006, verbatim (they
//!   computed every viewer's access at once, which is what made them slow);
//! - the figures are computed here, in Rust, from the register tables, by the definitions
//!   of docs/import-formats.md ("Ledger entry types") and the art. 62 allocation of
//!   docs/schema.md, installment by installment.
//!
//! Both backends (PostgreSQL with EURZAD_TEST_POSTGRES_URL).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use common::*;
use eurzad::registers::csv_source::FileEncoding;
use eurzad::registers::register;
use eurzad::store::Store;
use eurzad::store::registers::SyncMode;
use sqlx::Row;

/// Who may see which party in which scope, and so which account: migration 0006's
/// `portal_party_access`, `reg_account_party`, `reg_account_scope` and
/// `portal_visible_accounts`, as they were.
const OLD_ACCESS: &str = "
    old_party_access AS (
        SELECT a.id AS viewer_account_id, p.id AS party_id, s.scope, 'own' AS access
        FROM reg_party p
        JOIN account a ON a.status = 'active' AND p.pesel IS NOT NULL AND a.pesel = p.pesel
        CROSS JOIN (SELECT 'podatki' AS scope UNION ALL SELECT 'oplaty' UNION ALL SELECT 'sprawy'
                    UNION ALL SELECT 'korespondencja' UNION ALL SELECT 'rejestry'
                    UNION ALL SELECT 'platnosci') s
        UNION ALL
        SELECT r.agent_account_id, p.id, r.scope, 'representation'
        FROM portal_representations r
        JOIN reg_party p
          ON (r.principal_id_type = 'PESEL' AND p.pesel = r.principal_id)
          OR (r.principal_id_type = 'NIP' AND p.nip = r.principal_id)
          OR (r.principal_id_type = 'REGON' AND p.regon = r.principal_id)),
    old_account_party AS (
        SELECT id AS account_id, party_id FROM reg_account
        UNION
        SELECT account_id, party_id FROM reg_obligor),
    old_account_scope AS (
        SELECT id AS account_id,
               CASE WHEN kind IN ('property', 'agricultural', 'forest', 'transport', 'joint')
                    THEN 'podatki' ELSE 'oplaty' END AS scope
        FROM reg_account),
    old_visible AS (
        SELECT DISTINCT x.viewer_account_id, ap.account_id
        FROM old_account_party ap
        JOIN old_account_scope sc ON sc.account_id = ap.account_id
        JOIN old_party_access x ON x.party_id = ap.party_id AND x.scope = sc.scope)";

type Rows = Vec<Vec<Option<String>>>;

/// Every row of `sql`, each column as text (NULL as None), sorted.
async fn rows(pool: &sqlx::AnyPool, sql: &str) -> Rows {
    let mut out: Rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|row| {
            (0..row.len())
                .map(|i| row.try_get::<Option<String>, _>(i).unwrap())
                .collect()
        })
        .collect();
    out.sort();
    out
}

fn text(v: impl ToString) -> Option<String> {
    Some(v.to_string())
}

#[derive(Debug, Clone)]
struct Installment {
    id: String,
    account: String,
    year: i64,
    number: i64,
    due: String,
    amount: i64,
}

#[derive(Debug, Clone)]
struct Entry {
    id: String,
    account: String,
    year: i64,
    kind: String,
    installment: Option<String>,
    booked: String,
    value: Option<String>,
    amount: i64,
}

/// Per installment: (paid, allocated, outstanding), by the art. 62 rule of docs/schema.md,
/// one installment at a time.
fn allocate(installments: &[Installment], entries: &[Entry]) -> HashMap<String, (i64, i64, i64)> {
    let mut by_account: BTreeMap<&str, Vec<&Installment>> = BTreeMap::new();
    for i in installments {
        by_account.entry(&i.account).or_default().push(i);
    }
    let mut named_sums: HashMap<&str, i64> = HashMap::new();
    let mut entries_of: HashMap<&str, Vec<&Entry>> = HashMap::new();
    for e in entries {
        entries_of.entry(&e.account).or_default().push(e);
        if let Some(id) = &e.installment
            && (e.kind == "payment" || e.kind == "overpayment_credit")
        {
            *named_sums.entry(id).or_default() += e.amount;
        }
    }
    let mut out = HashMap::new();
    for (account, mut list) in by_account {
        list.sort_by(|a, b| {
            (&a.due, a.year, a.number, &a.id).cmp(&(&b.due, b.year, b.number, &b.id))
        });
        let named = |id: &str| -> i64 { named_sums.get(id).copied().unwrap_or(0) };
        let mine: Vec<&Entry> = entries_of.get(account).cloned().unwrap_or_default();
        let unnamed: i64 = mine
            .iter()
            .filter(|e| e.installment.is_none())
            .filter(|e| e.kind == "payment" || e.kind == "overpayment_credit")
            .map(|e| e.amount)
            .sum();
        let refunded: i64 = mine
            .iter()
            .filter(|e| e.kind == "overpayment_refund")
            .map(|e| e.amount)
            .sum();
        let excess: i64 = list.iter().map(|i| (named(&i.id) - i.amount).max(0)).sum();
        let mut pool = (unnamed - (refunded - excess).max(0)).max(0);
        for i in list {
            let paid = named(&i.id);
            let lack = (i.amount - paid).max(0);
            let give = lack.min(pool);
            pool -= give;
            out.insert(i.id.clone(), (paid + give, give, lack - give));
        }
    }
    out
}

/// (charged, paid) of one entry, by docs/import-formats.md's definitions.
fn effect(kind: &str, amount: i64) -> (i64, i64) {
    match kind {
        "charge" | "correction" | "interest" | "reminder_cost" => (amount, 0),
        "write_off" => (-amount, 0),
        "payment" | "overpayment_credit" => (0, amount),
        "overpayment_refund" => (0, -amount),
        other => panic!("an entry type the oracle does not know: {other}"),
    }
}

/// Accounts for every person of the town (some blocked) and representations of every kind.
async fn people_and_representations(pool: &sqlx::AnyPool, today: chrono::NaiveDate) {
    let ts = "'2026-11-01 10:00:00+00:00'";
    seed_request(pool).await;
    exec(pool, &format!(
        "INSERT INTO account (pesel, given_name, surname, status, created_at, updated_at) \
         SELECT pesel, 'G', 'S', 'active', {ts}, {ts} FROM reg_party WHERE pesel IS NOT NULL GROUP BY pesel"
    ))
    .await;
    exec(
        pool,
        "UPDATE account SET status = 'blocked' WHERE id % 17 = 0",
    )
    .await;
    let accounts: Vec<i64> = sqlx::query_scalar("SELECT id FROM account ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap();
    let parties = sqlx::query("SELECT pesel, nip, regon FROM reg_party ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap();
    let day = |offset: i64| (today + chrono::Duration::days(offset)).to_string();
    let scopes = [
        "podatki",
        "oplaty",
        "sprawy",
        "korespondencja",
        "rejestry",
        "platnosci",
    ];
    let mut id = 0;
    for (n, party) in parties.iter().enumerate().step_by(7) {
        let pesel: Option<String> = party.get(0);
        let nip: Option<String> = party.get(1);
        let regon: Option<String> = party.get(2);
        let (kind, value) = match (pesel, nip, regon) {
            (Some(p), _, _) => ("PESEL", p),
            (None, Some(_), Some(r)) if n % 2 == 0 => ("REGON", r),
            (None, Some(nip), _) => ("NIP", nip),
            _ => continue,
        };
        id += 1;
        let agent = accounts[(n * 13) % accounts.len()];
        // Every case in turn: valid, expired, not yet valid, revoked, open-ended.
        let (from, to, status) = match id % 5 {
            0 => (day(-30), Some(day(30)), "active"),
            1 => (day(-60), Some(day(-1)), "active"),
            2 => (day(1), None, "active"),
            3 => (day(-60), None, "revoked"),
            _ => (day(-60), None, "active"),
        };
        exec(pool, &format!(
            "INSERT INTO representation (id, agent_account_id, principal_kind, principal_name, principal_id_type, \
             principal_id, basis, valid_from, valid_to, status, source_request_id, source_document_id, verified_by, \
             verified_at) VALUES ({id}, {agent}, 'F', 'X', '{kind}', '{value}', 'upowaznienie', '{from}', {}, \
             '{status}', 1, 1, 'test', {ts})",
            to.map(|t| format!("'{t}'")).unwrap_or("NULL".into())
        ))
        .await;
        // Scopes in and out: one to three of the six.
        for k in 0..(1 + id % 3) {
            let scope = scopes[(id + k * 2) % scopes.len()];
            exec(pool, &format!(
                "INSERT INTO representation_scope (representation_id, scope) VALUES ({id}, '{scope}')"
            ))
            .await;
        }
    }
    // Permits and leases belong mostly to firms, which have no account of their own: every
    // holder gets a valid representation in the 'rejestry' scope, so those views have rows.
    let holders = sqlx::query(
        "SELECT DISTINCT p.nip FROM reg_party p WHERE p.nip IS NOT NULL AND p.pesel IS NULL AND \
         (p.id IN (SELECT party_id FROM reg_alcohol_permit) OR p.id IN (SELECT party_id FROM reg_lease)) ORDER BY p.nip",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (n, holder) in holders.iter().enumerate() {
        let nip: String = holder.get(0);
        id += 1;
        let agent = accounts[(n * 31) % accounts.len()];
        exec(pool, &format!(
            "INSERT INTO representation (id, agent_account_id, principal_kind, principal_name, principal_id_type, \
             principal_id, basis, valid_from, valid_to, status, source_request_id, source_document_id, verified_by, \
             verified_at) VALUES ({id}, {agent}, 'F', 'X', 'NIP', '{nip}', 'upowaznienie', '{}', NULL, 'active', 1, 1, \
             'test', {ts})",
            day(-10)
        ))
        .await;
        exec(pool, &format!("INSERT INTO representation_scope (representation_id, scope) VALUES ({id}, 'rejestry')")).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fast_views_agree_with_the_oracle_row_for_row() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_database(dir.path()).await;
    let town = dir.path().join("town");
    eurzad::registers::sample::generate(&town, 3_000, 0).unwrap();
    let store = Store::connect(&db.creating_url(), 2).await.unwrap();
    store.migrate().await.unwrap();
    for r in eurzad::registers::REGISTERS {
        let path = town.join(format!("{}.csv", r.name));
        store
            .sync_file(
                register(r.name).unwrap(),
                &path,
                SyncMode::Full,
                FileEncoding::Auto,
                "test",
            )
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", r.name));
    }
    store.close().await;
    let pool = any_pool(&db.url).await;
    let today: String = sqlx::query_scalar("SELECT CAST(CURRENT_DATE AS TEXT)")
        .fetch_one(&pool)
        .await
        .unwrap();
    let today_date = chrono::NaiveDate::parse_from_str(&today, "%Y-%m-%d").unwrap();
    people_and_representations(&pool, today_date).await;

    // The town holds what the oracle must be tried on.
    let kinds: BTreeSet<String> = rows(&pool, "SELECT DISTINCT kind FROM reg_account")
        .await
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect();
    assert_eq!(
        kinds.len(),
        eurzad::registers::ACCOUNT_KINDS.len(),
        "{kinds:?}"
    );
    let types: BTreeSet<String> = rows(&pool, "SELECT DISTINCT entry_type FROM reg_ledger")
        .await
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect();
    assert_eq!(
        types.len(),
        eurzad::registers::LEDGER_TYPES.len(),
        "{types:?}"
    );
    let cases = rows(
        &pool,
        "SELECT (SELECT CAST(COUNT(*) AS TEXT) FROM reg_obligor WHERE role = 'co_obligor'), \
                (SELECT CAST(COUNT(*) AS TEXT) FROM representation WHERE principal_id_type = 'REGON'), \
                (SELECT CAST(COUNT(*) AS TEXT) FROM representation WHERE principal_id_type = 'NIP'), \
                (SELECT CAST(COUNT(*) AS TEXT) FROM account WHERE status = 'blocked'), \
                (SELECT CAST(COUNT(*) AS TEXT) FROM reg_installment_allocation)",
    )
    .await;
    for (what, n) in [
        "co-obligors",
        "REGON principals",
        "NIP principals",
        "blocked accounts",
        "allocated installments",
    ]
    .iter()
    .zip(&cases[0])
    {
        let n: i64 = n.as_deref().unwrap().parse().unwrap();
        assert!(n > 0, "the town has no {what}");
    }

    compare_all(&pool, &today).await;

    // The parties' identifiers move (the NIPs and REGONs of companies rotate among them, a
    // back office correcting its register): a parties run alone brings the views' matching
    // of representations along, and the views agree with the oracle again.
    let parties = std::fs::read_to_string(town.join("parties.csv")).unwrap();
    let mut lines: Vec<Vec<String>> = parties
        .lines()
        .map(|l| l.split(';').map(str::to_string).collect())
        .collect();
    let companies: Vec<usize> = (1..lines.len())
        .filter(|&i| lines[i][1] == "P" && !lines[i][4].is_empty())
        .collect();
    assert!(companies.len() > 2, "{} companies", companies.len());
    let ids: Vec<(String, String)> = companies
        .iter()
        .map(|&i| (lines[i][4].clone(), lines[i][5].clone()))
        .collect();
    for (n, &i) in companies.iter().enumerate() {
        let (nip, regon) = ids[(n + 1) % ids.len()].clone();
        lines[i][4] = nip;
        lines[i][5] = regon;
    }
    let moved = dir.path().join("parties.csv");
    let text: Vec<String> = lines.iter().map(|l| l.join(";")).collect();
    std::fs::write(&moved, text.join("\n") + "\n").unwrap();
    let store = Store::connect(&db.creating_url(), 2).await.unwrap();
    let outcome = store
        .sync_file(
            register("parties").unwrap(),
            &moved,
            SyncMode::Full,
            FileEncoding::Auto,
            "test",
        )
        .await
        .unwrap();
    let eurzad::store::registers::SyncOutcome::Applied { counts, .. } = outcome else {
        panic!("{outcome:?}");
    };
    assert!(counts.updated as usize >= companies.len() - 1, "{counts:?}");
    compare_all(&pool, &today).await;

    // An incremental ledger file (some rows, every tenth amount one grosz more): the figures
    // follow the changed rows, and the views agree with the oracle again.
    let ledger = std::fs::read_to_string(town.join("ledger.csv")).unwrap();
    let mut lines = ledger.lines();
    let mut some = format!("{}\n", lines.next().unwrap());
    for line in lines.step_by(10) {
        let (rest, amount) = line.rsplit_once(';').unwrap();
        let grosze = eurzad::registers::money(amount, false).unwrap();
        let grosze = if grosze < 0 { grosze - 1 } else { grosze + 1 };
        some.push_str(&format!(
            "{rest};{}\n",
            eurzad::registers::zloty(grosze).trim_end_matches(" zł")
        ));
    }
    let incremental = dir.path().join("ledger.csv");
    std::fs::write(&incremental, some).unwrap();
    let outcome = store
        .sync_file(
            register("ledger").unwrap(),
            &incremental,
            SyncMode::Incremental,
            FileEncoding::Auto,
            "test",
        )
        .await
        .unwrap();
    let eurzad::store::registers::SyncOutcome::Applied { counts, .. } = outcome else {
        panic!("{outcome:?}");
    };
    assert!(counts.updated > 100 && counts.deleted == 0, "{counts:?}");
    store.close().await;
    compare_all(&pool, &today).await;
    pool.close().await;
}

/// Compares every register view with the oracle.
async fn compare_all(pool: &sqlx::AnyPool, today: &str) {
    let pool = pool.clone();
    // The registers, read plainly.
    let installments: Vec<Installment> = rows(
        &pool,
        "SELECT id, account_id, CAST(year AS TEXT), CAST(number AS TEXT), CAST(due_date AS TEXT), \
         CAST(amount_gr AS TEXT) FROM reg_installment",
    )
    .await
    .into_iter()
    .map(|r| Installment {
        id: r[0].clone().unwrap(),
        account: r[1].clone().unwrap(),
        year: r[2].as_deref().unwrap().parse().unwrap(),
        number: r[3].as_deref().unwrap().parse().unwrap(),
        due: r[4].clone().unwrap(),
        amount: r[5].as_deref().unwrap().parse().unwrap(),
    })
    .collect();
    let entries: Vec<Entry> = rows(
        &pool,
        "SELECT id, account_id, CAST(year AS TEXT), entry_type, installment_id, CAST(booking_date AS TEXT), \
         CAST(value_date AS TEXT), CAST(amount_gr AS TEXT) FROM reg_ledger",
    )
    .await
    .into_iter()
    .map(|r| Entry {
        id: r[0].clone().unwrap(),
        account: r[1].clone().unwrap(),
        year: r[2].as_deref().unwrap().parse().unwrap(),
        kind: r[3].clone().unwrap(),
        installment: r[4].clone(),
        booked: r[5].clone().unwrap(),
        value: r[6].clone(),
        amount: r[7].as_deref().unwrap().parse().unwrap(),
    })
    .collect();
    // account -> (kind, nrb, party id, party name)
    let accounts: HashMap<String, [Option<String>; 4]> = rows(
        &pool,
        "SELECT a.id, a.kind, a.nrb, a.party_id, p.name FROM reg_account a LEFT JOIN reg_party p ON p.id = a.party_id",
    )
    .await
    .into_iter()
    .map(|r| (r[0].clone().unwrap(), [r[1].clone(), r[2].clone(), r[3].clone(), r[4].clone()]))
    .collect();
    let visible = rows(
        &pool,
        &format!(
            "WITH {OLD_ACCESS} SELECT CAST(viewer_account_id AS TEXT), account_id FROM old_visible"
        ),
    )
    .await;
    assert!(visible.len() > 1000, "{} visible accounts", visible.len());
    let mut viewers_of: HashMap<String, Vec<String>> = HashMap::new();
    for v in &visible {
        viewers_of
            .entry(v[1].clone().unwrap())
            .or_default()
            .push(v[0].clone().unwrap());
    }
    let viewers = |account: &str| viewers_of.get(account).cloned().unwrap_or_default();
    let allocation = allocate(&installments, &entries);

    // portal_installments
    let mut expected: Rows = Vec::new();
    for i in &installments {
        let (paid, allocated, outstanding) = allocation[&i.id];
        let overdue = (outstanding > 0 && i.due.as_str() < today) as i64;
        let a = &accounts[&i.account];
        for viewer in viewers(&i.account) {
            expected.push(vec![
                text(viewer),
                text(&i.account),
                text(&i.id),
                text(i.year),
                text(i.number),
                text(&i.due),
                text(i.amount),
                text(paid),
                text(outstanding),
                text(overdue),
                text(allocated),
                a[2].clone(),
                a[3].clone(),
            ]);
        }
    }
    expected.sort();
    let actual = rows(
        &pool,
        "SELECT CAST(viewer_account_id AS TEXT), account_id, installment_id, CAST(year AS TEXT), \
         CAST(number AS TEXT), CAST(due_date AS TEXT), CAST(amount_gr AS TEXT), CAST(paid_gr AS TEXT), \
         CAST(outstanding_gr AS TEXT), CAST(overdue AS TEXT), CAST(allocated_gr AS TEXT), party_id, party_name \
         FROM portal_installments",
    )
    .await;
    compare("portal_installments", &expected, &actual);

    // portal_liabilities: per account and year with entries or installments
    let mut figures: BTreeMap<(String, i64), (i64, i64, bool)> = BTreeMap::new();
    for e in &entries {
        let (c, p) = effect(&e.kind, e.amount);
        let f = figures.entry((e.account.clone(), e.year)).or_default();
        f.0 += c;
        f.1 += p;
    }
    for i in &installments {
        let f = figures.entry((i.account.clone(), i.year)).or_default();
        f.2 |= allocation[&i.id].2 > 0 && i.due.as_str() < today;
    }
    let mut expected: Rows = Vec::new();
    for ((account, year), (charged, paid, overdue)) in &figures {
        let Some(a) = accounts.get(account) else {
            continue;
        };
        for viewer in viewers(account) {
            expected.push(vec![
                text(viewer),
                text(account),
                a[0].clone(),
                a[1].clone(),
                text(year),
                text(charged),
                text(paid),
                text(charged - paid),
                text(*overdue as i64),
                a[2].clone(),
                a[3].clone(),
            ]);
        }
    }
    expected.sort();
    let actual = rows(
        &pool,
        "SELECT CAST(viewer_account_id AS TEXT), account_id, kind, nrb, CAST(year AS TEXT), \
         CAST(charged_gr AS TEXT), CAST(paid_gr AS TEXT), CAST(due_gr AS TEXT), CAST(overdue AS TEXT), \
         party_id, party_name FROM portal_liabilities",
    )
    .await;
    compare("portal_liabilities", &expected, &actual);

    // portal_payments
    let by_id: HashMap<&str, &Installment> =
        installments.iter().map(|i| (i.id.as_str(), i)).collect();
    let mut expected: Rows = Vec::new();
    for e in entries.iter().filter(|e| e.kind == "payment") {
        let a = &accounts[&e.account];
        let named = e.installment.as_deref().and_then(|id| by_id.get(id));
        for viewer in viewers(&e.account) {
            expected.push(vec![
                text(viewer),
                text(&e.account),
                text(&e.id),
                text(&e.booked),
                e.value.clone(),
                text(e.amount),
                e.installment.clone(),
                named.map(|i| i.due.clone()),
                named.map(|i| i.number.to_string()),
                a[2].clone(),
                a[3].clone(),
            ]);
        }
    }
    expected.sort();
    let actual = rows(
        &pool,
        "SELECT CAST(viewer_account_id AS TEXT), account_id, payment_id, CAST(booking_date AS TEXT), \
         CAST(value_date AS TEXT), CAST(amount_gr AS TEXT), installment_id, CAST(installment_due_date AS TEXT), \
         CAST(installment_number AS TEXT), party_id, party_name FROM portal_payments",
    )
    .await;
    compare("portal_payments", &expected, &actual);

    // Assessments and their components: the old visibility, joined plainly.
    for (view, columns, oracle) in [
        (
            "portal_assessments",
            "CAST(viewer_account_id AS TEXT), account_id, assessment_id, kind, number, CAST(issued_on AS TEXT), \
             CAST(year AS TEXT), CAST(total_gr AS TEXT), CAST(delivered_on AS TEXT), account_kind, party_id, party_name",
            "SELECT CAST(v.viewer_account_id AS TEXT), s.account_id, s.id, s.kind, s.number, CAST(s.issued_on AS TEXT), \
             CAST(s.year AS TEXT), CAST(s.total_gr AS TEXT), CAST(s.delivered_on AS TEXT), a.kind, a.party_id, p.name \
             FROM old_visible v JOIN reg_assessment s ON s.account_id = v.account_id \
             JOIN reg_account a ON a.id = s.account_id LEFT JOIN reg_party p ON p.id = a.party_id",
        ),
        (
            "portal_tax_components",
            "CAST(viewer_account_id AS TEXT), account_id, assessment_id, CAST(year AS TEXT), component_id, subject, \
             description, registration, CAST(permissible_weight_kg AS TEXT), base_unit, CAST(base_e4 AS TEXT), \
             CAST(rate_e4 AS TEXT), CAST(amount_gr AS TEXT)",
            "SELECT CAST(v.viewer_account_id AS TEXT), s.account_id, s.id, CAST(s.year AS TEXT), c.id, c.subject, \
             c.description, c.registration, CAST(c.permissible_weight_kg AS TEXT), c.base_unit, CAST(c.base_e4 AS TEXT), \
             CAST(c.rate_e4 AS TEXT), CAST(c.amount_gr AS TEXT) \
             FROM old_visible v JOIN reg_assessment s ON s.account_id = v.account_id \
             JOIN reg_assessment_component c ON c.assessment_id = s.id",
        ),
        (
            "portal_cases",
            "CAST(viewer_account_id AS TEXT), case_id, reference, title, status, CAST(opened_on AS TEXT), CAST(closed_on AS TEXT)",
            "SELECT CAST(x.viewer_account_id AS TEXT), c.id, c.reference, c.title, c.status, CAST(c.opened_on AS TEXT), \
             CAST(c.closed_on AS TEXT) FROM reg_case c \
             JOIN old_party_access x ON x.party_id = c.party_id AND x.scope = 'sprawy'",
        ),
        (
            "portal_case_letters",
            "CAST(viewer_account_id AS TEXT), case_id, reference, letter_id, CAST(letter_date AS TEXT), direction, title",
            "SELECT CAST(x.viewer_account_id AS TEXT), l.case_id, c.reference, l.id, CAST(l.letter_date AS TEXT), \
             l.direction, l.title FROM reg_case_letter l JOIN reg_case c ON c.id = l.case_id \
             JOIN old_party_access x ON x.party_id = c.party_id AND x.scope = 'sprawy'",
        ),
        (
            "portal_alcohol_permits",
            "CAST(viewer_account_id AS TEXT), permit_id, number, category, premises, CAST(valid_from AS TEXT), CAST(valid_to AS TEXT)",
            "SELECT CAST(x.viewer_account_id AS TEXT), p.id, p.number, p.category, p.premises, CAST(p.valid_from AS TEXT), \
             CAST(p.valid_to AS TEXT) FROM reg_alcohol_permit p \
             JOIN old_party_access x ON x.party_id = p.party_id AND x.scope = 'rejestry'",
        ),
        (
            "portal_leases",
            "CAST(viewer_account_id AS TEXT), lease_id, parcel, CAST(area_m2 AS TEXT), CAST(rent_gr AS TEXT), \
             CAST(period_from AS TEXT), CAST(period_to AS TEXT)",
            "SELECT CAST(x.viewer_account_id AS TEXT), l.id, l.parcel, CAST(l.area_m2 AS TEXT), CAST(l.rent_gr AS TEXT), \
             CAST(l.period_from AS TEXT), CAST(l.period_to AS TEXT) FROM reg_lease l \
             JOIN old_party_access x ON x.party_id = l.party_id AND x.scope = 'rejestry'",
        ),
    ] {
        let expected = rows(&pool, &format!("WITH {OLD_ACCESS} {oracle}")).await;
        let actual = rows(&pool, &format!("SELECT {columns} FROM {view}")).await;
        compare(view, &expected, &actual);
    }
}

/// The same rows, or the first that differ, with the counts.
fn compare(view: &str, expected: &Rows, actual: &Rows) {
    assert!(
        !expected.is_empty(),
        "{view}: the oracle expects no row at all"
    );
    if expected != actual {
        let missing = expected.iter().find(|r| !actual.contains(r));
        let extra = actual.iter().find(|r| !expected.contains(r));
        panic!(
            "{view}: {} rows expected, {} read; first expected row not read: {missing:?}; first row read, not expected: {extra:?}",
            expected.len(),
            actual.len()
        );
    }
}
