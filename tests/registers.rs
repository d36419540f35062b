//! Register syncs through `eurzad sync` on SQLite (or PostgreSQL with
//! EURZAD_TEST_POSTGRES_URL): the hand-checked set (fixtures/registers/basic) gives the
//! balances of its README through the portal views; re-running changes nothing; one changed
//! row updates one row; a bad row refuses the whole file with file:line and the reason and
//! tells officials; Windows-1250 arrives intact; and a representative sees a principal's
//! liabilities only while the representation is active and in scope.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use sqlx::Row;

struct Town {
    dir: tempfile::TempDir,
    db: TestDatabase,
    config: PathBuf,
}

impl Town {
    async fn new() -> Town {
        let dir = tempfile::tempdir().unwrap();
        let db = test_database(dir.path()).await;
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "[database]\nurl = \"{}\"\n[epuap]\nendpoint = \"embedded\"\n[[epuap.boxes]]\npodmiot = \"u\"\n\
                 nazwa = \"s\"\nadres = \"/u/s\"\n[notify]\nofficials = [\"urzednik@urzad.test\"]\nmail_dir = \"{}\"\n\
                 [registers]\ndrop_dir = \"{}\"\n",
                db.url,
                dir.path().join("mail").display(),
                dir.path().join("import").display()
            ),
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("import")).unwrap();
        Town { dir, db, config }
    }

    fn import(&self) -> PathBuf {
        self.dir.path().join("import")
    }

    fn drop_basic(&self, names: &[&str]) {
        for name in names {
            std::fs::copy(
                fixture(&format!("registers/basic/{name}.csv")),
                self.import().join(format!("{name}.csv")),
            )
            .unwrap();
        }
    }

    /// Drops the hand-checked file of `name` again and shows that the run skips it.
    fn basic_again_is_skipped(&self, name: &str) {
        self.drop_basic(&[name]);
        let (ok, out) = self.sync(&[name]);
        assert!(
            ok && count_line(&out, name).contains("already applied"),
            "{out}"
        );
    }

    fn sync(&self, args: &[&str]) -> (bool, String) {
        let args: Vec<&str> = std::iter::once("sync")
            .chain(args.iter().copied())
            .collect();
        eurzad_with_config(&args, &self.config)
    }

    /// Drops these registers of the hand-checked set, syncs them, and opens the database.
    async fn sync_basic(&self, names: &[&str]) -> sqlx::AnyPool {
        self.drop_basic(names);
        let (ok, out) = self.sync(&[]);
        assert!(ok, "{out}");
        self.pool().await
    }

    async fn pool(&self) -> sqlx::AnyPool {
        any_pool(&self.db.url).await
    }

    async fn basic(&self) -> sqlx::AnyPool {
        self.drop_basic(&[
            "parties",
            "accounts",
            "obligors",
            "installments",
            "ledger",
            "cases",
            "case_letters",
        ]);
        let (ok, out) = self.sync(&[]);
        assert!(ok, "{out}");
        let pool = self.pool().await;
        // Jan and Anna have portal accounts.
        for (id, pesel) in [(1, "85031412347"), (2, "90010112349")] {
            exec(&pool, &format!(
                "INSERT INTO account (id, pesel, given_name, surname, status, created_at, updated_at) \
                 VALUES ({id}, '{pesel}', 'G', 'S', 'active', '2026-11-01 10:00:00+00:00', '2026-11-01 10:00:00+00:00')"
            ))
            .await;
        }
        pool
    }
}

async fn liabilities(pool: &sqlx::AnyPool, viewer: i64) -> Vec<(String, i64, i64, i64, i64)> {
    sqlx::query(
        "SELECT account_id, charged_gr, paid_gr, due_gr, overdue FROM portal_liabilities \
         WHERE viewer_account_id = $1 ORDER BY account_id",
    )
    .bind(viewer)
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get(0),
            r.get(1),
            r.get(2),
            r.get(3),
            r.get::<i32, _>(4).into(),
        )
    })
    .collect()
}

fn count_line(out: &str, register: &str) -> String {
    out.lines()
        .find(|l| l.starts_with(&format!("{register}:")))
        .unwrap_or_else(|| panic!("no line for {register} in:\n{out}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hand_checked_set_gives_its_balances_through_the_portal() {
    let town = Town::new().await;
    let pool = town.basic().await;
    // Jan (account 1): his property tax and waste fee; not the company's nor Anna's.
    assert_eq!(
        liabilities(&pool, 1).await,
        vec![
            ("K1".into(), 100_025, 35_000, 65_025, 1),
            ("K2".into(), 30_000, 30_000, 0, 0),
        ]
    );
    assert_eq!(
        liabilities(&pool, 2).await,
        vec![("K4".into(), 40_000, 0, 40_000, 1)]
    );
    let installments: Vec<(i64, i64, i64, i64, i64)> = sqlx::query(
        "SELECT number, amount_gr, paid_gr, outstanding_gr, overdue FROM portal_installments \
         WHERE viewer_account_id = 1 AND account_id = 'K1' ORDER BY number",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get::<i64, _>(0),
            r.get(1),
            r.get(2),
            r.get(3),
            r.get::<i32, _>(4).into(),
        )
    })
    .collect();
    assert_eq!(
        installments,
        vec![
            (1, 25_000, 25_000, 0, 0),
            (2, 25_000, 10_000, 15_000, 1),
            (3, 25_000, 0, 25_000, 1),
            (4, 25_025, 0, 25_025, 1),
        ]
    );
    let payments: Vec<(String, i64, Option<i64>)> = sqlx::query(
        "SELECT payment_id, amount_gr, installment_number FROM portal_payments WHERE viewer_account_id = 1 \
         AND account_id = 'K1' ORDER BY payment_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect();
    assert_eq!(
        payments,
        vec![
            ("L2".into(), 25_000, Some(1)),
            ("L3".into(), 10_000, Some(2))
        ]
    );
    // The files were filed away, and each run recorded.
    assert!(town.import().join("done/ledger.csv").exists());
    let runs: i64 = sqlx::query("SELECT COUNT(*) FROM sync_run WHERE status = 'done'")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(runs, 7);
    // Jan's case and its letters (scope `sprawy`); Anna sees none of them.
    let letters: Vec<(String, String, String)> = sqlx::query(
        "SELECT reference, direction, title FROM portal_case_letters WHERE viewer_account_id = 1 ORDER BY letter_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect();
    assert_eq!(
        letters,
        vec![
            (
                "GKM.6730.15.2026".into(),
                "in".into(),
                "Wniosek o wydanie decyzji".into()
            ),
            (
                "GKM.6730.15.2026".into(),
                "out".into(),
                "Wezwanie do uzupełnienia wniosku".into()
            ),
        ]
    );
    let anna: i64 =
        sqlx::query("SELECT COUNT(*) FROM portal_case_letters WHERE viewer_account_id = 2")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
    assert_eq!(anna, 0);
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rerunning_changes_nothing_and_one_changed_row_updates_one_row() {
    let town = Town::new().await;
    let pool = town.basic().await;
    // The very same file again: recognised by its checksum.
    town.basic_again_is_skipped("ledger");
    // The same rows in another file (a re-export): every row unchanged, nothing written.
    let same = std::fs::read_to_string(fixture("registers/basic/ledger.csv"))
        .unwrap()
        .replacen("id;", "ID;", 1);
    std::fs::write(town.import().join("ledger-2.csv"), &same).unwrap();
    let (ok, out) = town.sync(&["ledger"]);
    assert!(ok, "{out}");
    assert!(
        count_line(&out, "ledger")
            .ends_with("9 rows: 0 inserted, 0 updated, 0 deleted, 9 unchanged"),
        "{out}"
    );
    // One payment changed: exactly one row updated.
    let changed = same.replace(
        "L3;K1;2026;payment;K1-R2;2026-05-20;2026-05-20;10000",
        "L3;K1;2026;payment;K1-R2;2026-05-20;2026-05-20;25000",
    );
    std::fs::write(town.import().join("ledger-3.csv"), &changed).unwrap();
    let (ok, out) = town.sync(&["ledger"]);
    assert!(ok, "{out}");
    assert!(
        count_line(&out, "ledger")
            .ends_with("9 rows: 0 inserted, 1 updated, 0 deleted, 8 unchanged"),
        "{out}"
    );
    assert_eq!(
        liabilities(&pool, 1).await[0],
        ("K1".into(), 100_025, 50_000, 50_025, 1)
    );
    // A full snapshot without L9 deletes it.
    let without = changed
        .lines()
        .filter(|l| !l.starts_with("L9;"))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    std::fs::write(town.import().join("ledger-4.csv"), without).unwrap();
    let (ok, out) = town.sync(&["ledger", "--full"]);
    assert!(ok, "{out}");
    assert!(
        count_line(&out, "ledger")
            .ends_with("8 rows: 0 inserted, 0 updated, 1 deleted, 8 unchanged"),
        "{out}"
    );
    pool.close().await;
}

/// The checksum is looked up after the rows were compared (so that reading the file twice
/// overlaps); a file applied before must still be skipped, also when its rows would now be
/// refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_file_applied_before_is_skipped_even_when_its_rows_no_longer_pass() {
    let town = Town::new().await;
    let pool = town.basic().await;
    let before = liabilities(&pool, 1).await;
    // K1-R2, which the ledger's L3 pays, leaves the installments register.
    let installments = std::fs::read_to_string(fixture("registers/basic/installments.csv"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("K1-R2;"))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    std::fs::write(town.import().join("installments-2.csv"), installments).unwrap();
    let (ok, out) = town.sync(&["installments", "--full"]);
    assert!(ok, "{out}");
    // The same ledger file again: skipped by its checksum, not refused for L3.
    town.basic_again_is_skipped("ledger");
    // The same rows in a new file are checked, and L3 is refused with its place.
    let again = std::fs::read_to_string(fixture("registers/basic/ledger.csv"))
        .unwrap()
        .replacen("id;", "ID;", 1);
    std::fs::write(town.import().join("ledger-2.csv"), again).unwrap();
    let (ok, out) = town.sync(&["ledger"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("ledger-2.csv:4") && out.contains("unknown installments id \"K1-R2\""),
        "{out}"
    );
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT status FROM sync_run WHERE register = 'ledger' ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(statuses, ["done", "skipped", "failed"]);
    assert_eq!(liabilities(&pool, 1).await, before, "nothing applied");
    pool.close().await;
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// An id named twice is refused at its second line, by a first load (whose primary key
/// catches it: SQLite's while inserting, PostgreSQL's when it is built after the COPY, the
/// file then read again for the place) and by a run over stored rows (the comparison).
#[tokio::test(flavor = "multi_thread")]
async fn an_id_named_twice_is_refused_at_its_second_line_on_a_first_load_and_after() {
    let town = Town::new().await;
    let pool = town
        .sync_basic(&["parties", "accounts", "installments"])
        .await;
    let ledger = std::fs::read_to_string(fixture("registers/basic/ledger.csv")).unwrap();
    // Line 7 (L6) becomes a second L3, with other values.
    let l6 = ledger.lines().nth(6).unwrap().to_string();
    assert!(l6.starts_with("L6;"), "{l6}");
    let twice = ledger.replace(&l6, &l6.replacen("L6;", "L3;", 1));
    write(&town.import().join("ledger.csv"), &twice);
    let (ok, out) = town.sync(&["ledger"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("ledger.csv:7: column id: id \"L3\" appears twice in the file"),
        "{out}"
    );
    let count = |pool: sqlx::AnyPool| async move {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM reg_ledger")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert_eq!(count(pool.clone()).await, 0, "nothing applied");
    // The table keeps its primary key and indexes after the refused first load.
    town.drop_basic(&["ledger"]);
    let (ok, out) = town.sync(&["ledger"]);
    assert!(ok, "{out}");
    assert_eq!(count(pool.clone()).await, 9);
    // Over stored rows.
    write(
        &town.import().join("ledger-2.csv"),
        &twice.replacen("id;", "ID;", 1),
    );
    let (ok, out) = town.sync(&["ledger"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("ledger-2.csv:7: column id: id \"L3\" appears twice in the file"),
        "{out}"
    );
    assert_eq!(count(pool.clone()).await, 9);
    pool.close().await;
}

/// PostgreSQL keeps a first load's primary key when a foreign key needs it (an office's own
/// table may refer to a register): then the `COPY` itself refuses the id named twice, and
/// the place is found the same way.
#[tokio::test(flavor = "multi_thread")]
async fn an_id_named_twice_is_placed_when_the_primary_key_stays_for_a_foreign_key() {
    let town = Town::new().await;
    if town.db.kind != "postgres" {
        return;
    }
    let pool = town
        .sync_basic(&["parties", "accounts", "installments"])
        .await;
    exec(
        &pool,
        "CREATE TABLE office_notes (ledger_id TEXT REFERENCES reg_ledger (id))",
    )
    .await;
    let ledger = std::fs::read_to_string(fixture("registers/basic/ledger.csv")).unwrap();
    let l6 = ledger.lines().nth(6).unwrap().to_string();
    write(
        &town.import().join("ledger.csv"),
        &ledger.replace(&l6, &l6.replacen("L6;", "L3;", 1)),
    );
    let (ok, out) = town.sync(&["ledger"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("ledger.csv:7: column id: id \"L3\" appears twice in the file"),
        "{out}"
    );
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_row_refuses_the_file_with_its_place_and_keeps_the_data() {
    let town = Town::new().await;
    let pool = town.basic().await;
    let before = liabilities(&pool, 1).await;
    let ledger = std::fs::read_to_string(fixture("registers/basic/ledger.csv")).unwrap();
    // K1's NRB with its last digit changed.
    let accounts = {
        let good = std::fs::read_to_string(fixture("registers/basic/accounts.csv")).unwrap();
        let nrb = good
            .lines()
            .nth(1)
            .unwrap()
            .split(',')
            .nth(3)
            .unwrap()
            .to_string();
        let mut broken = nrb.clone();
        broken.replace_range(25..26, if nrb.ends_with('0') { "1" } else { "0" });
        good.replace(&nrb, &broken)
    };
    let cases = [
        (
            "accounts",
            accounts,
            "accounts.csv:2: column nrb: ",
            "is not a valid NRB",
        ),
        (
            "installments",
            std::fs::read_to_string(fixture("registers/basic/installments.csv"))
                .unwrap()
                .replace("2026-09-15;250,00", "2026-09-31;250,00"),
            "installments.csv:4: column termin: ",
            "is not a date",
        ),
        (
            "ledger",
            ledger.replace("L5;K2;", "L5;K9;"),
            "ledger.csv:6: column konto: ",
            "unknown accounts id \"K9\"",
        ),
    ];
    for (register, text, place, reason) in cases {
        let file = town.import().join(format!("{register}.csv"));
        write(&file, &text);
        let (ok, out) = town.sync(&[register]);
        assert!(!ok, "{out}");
        assert!(
            out.contains(place) && out.contains(reason),
            "{register}: {out}"
        );
        assert!(
            town.import()
                .join(format!("failed/{register}.csv"))
                .exists()
        );
    }
    assert_eq!(liabilities(&pool, 1).await, before, "nothing applied");
    let failed: i64 = sqlx::query(
        "SELECT COUNT(*) FROM sync_run WHERE status = 'failed' AND error LIKE '%csv:%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap()
    .get(0);
    assert_eq!(failed, 3);
    // Officials are told, in Polish, once per refused file.
    let mail: Vec<String> = sqlx::query(
        "SELECT subject FROM notification WHERE key LIKE 'sync_failed:%' ORDER BY subject",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect();
    assert_eq!(mail.len(), 3, "{mail:?}");
    assert!(
        mail.iter()
            .all(|s| s.contains("odrzucony: dane nie zostały zmienione")),
        "{mail:?}"
    );
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_windows_1250_file_arrives_intact() {
    let town = Town::new().await;
    let text = "id;rodzaj;nazwa;pesel;nip;regon;adres\nP1;F;Zażółć Gęślą-Jaźń;85031412347;;;ul. Źródlana 7, Łódź\n";
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1250.encode(text);
    assert!(!unmappable);
    assert!(std::str::from_utf8(&bytes).is_err(), "really not UTF-8");
    std::fs::write(town.import().join("parties.csv"), &bytes).unwrap();
    let (ok, out) = town.sync(&["parties"]);
    assert!(ok, "{out}");
    let pool = town.pool().await;
    let row = sqlx::query("SELECT name, address FROM reg_party WHERE id = 'P1'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>(0), "Zażółć Gęślą-Jaźń");
    assert_eq!(row.get::<String, _>(1), "ul. Źródlana 7, Łódź");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_representative_sees_a_principals_liabilities_only_while_allowed() {
    let town = Town::new().await;
    let pool = town.basic().await;
    seed_request(&pool).await;
    // Jan represents Anna for taxes.
    grant_anna_taxes(&pool, 1).await;
    let sees_anna = |pool: sqlx::AnyPool| async move {
        liabilities(&pool, 1).await.iter().any(|l| l.0 == "K4")
    };
    assert!(sees_anna(pool.clone()).await, "active and in scope");
    exec(
        &pool,
        "UPDATE representation_scope SET scope = 'oplaty' WHERE representation_id = 1",
    )
    .await;
    assert!(
        !sees_anna(pool.clone()).await,
        "a scope for fees does not show taxes"
    );
    exec(
        &pool,
        "UPDATE representation_scope SET scope = 'podatki' WHERE representation_id = 1",
    )
    .await;
    exec(
        &pool,
        "UPDATE representation SET status = 'revoked' WHERE id = 1",
    )
    .await;
    assert!(!sees_anna(pool.clone()).await, "revoked");
    exec(
        &pool,
        "UPDATE representation SET status = 'active', valid_to = '2026-06-30' WHERE id = 1",
    )
    .await;
    assert!(!sees_anna(pool.clone()).await, "expired");
    exec(
        &pool,
        "UPDATE representation SET valid_to = NULL WHERE id = 1",
    )
    .await;
    exec(&pool, "UPDATE account SET status = 'blocked' WHERE id = 1").await;
    assert!(
        !sees_anna(pool.clone()).await,
        "the agent's account is blocked"
    );
    exec(&pool, "UPDATE account SET status = 'active' WHERE id = 1").await;
    assert!(sees_anna(pool.clone()).await, "allowed again");
    // Anna never sees Jan's data.
    assert!(liabilities(&pool, 2).await.iter().all(|l| l.0 == "K4"));
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generated_town_syncs_whole() {
    let town = Town::new().await;
    let out = std::process::Command::new(BIN)
        .args(["sample-registers", "--inhabitants", "8000", "--out"])
        .arg(town.import())
        .output()
        .unwrap();
    assert!(out.status.success());
    let (ok, out) = town.sync(&[]);
    assert!(ok, "{out}");
    for register in eurzad::registers::REGISTERS {
        let line = count_line(&out, register.name);
        assert!(
            line.contains(" 0 updated, 0 deleted, 0 unchanged"),
            "{line}"
        );
    }
    let pool = town.pool().await;
    let (parties, liabilities): (i64, i64) = {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM reg_party), (SELECT COUNT(*) FROM reg_ledger)",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        (row.get(0), row.get(1))
    };
    assert!(
        parties > 1000 && liabilities > 5000,
        "{parties} parties, {liabilities} ledger rows"
    );
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_xml_format_gives_the_same_register_and_refuses_what_it_should() {
    let town = Town::new().await;
    town.drop_basic(&["parties", "accounts", "obligors", "installments"]);
    // The hand-checked ledger, as XML.
    let csv = std::fs::read_to_string(fixture("registers/basic/ledger.csv")).unwrap();
    let xml = register_csv_as_xml(&csv, "ledger");
    std::fs::write(town.import().join("ledger.xml"), &xml).unwrap();
    let (ok, out) = town.sync(&[]);
    assert!(ok, "{out}");
    assert!(
        count_line(&out, "ledger")
            .ends_with("9 rows: 9 inserted, 0 updated, 0 deleted, 0 unchanged"),
        "{out}"
    );
    let pool = town.pool().await;
    exec(&pool, "INSERT INTO account (id, pesel, given_name, surname, status, created_at, updated_at) \
        VALUES (1, '85031412347', 'G', 'S', 'active', '2026-11-01 10:00:00+00:00', '2026-11-01 10:00:00+00:00')").await;
    assert_eq!(
        liabilities(&pool, 1).await[0],
        ("K1".into(), 100_025, 35_000, 65_025, 1)
    );
    pool.close().await;

    let refused = |name: &str, text: String| {
        std::fs::write(town.import().join(name), text).unwrap();
        let (ok, out) = town.sync(&["ledger"]);
        assert!(!ok, "{name}: {out}");
        out
    };
    // A DOCTYPE (entities, XXE) is refused before libxml2 reads the file.
    let out = refused(
        "ledger-doctype.xml",
        xml.replacen("<Rejestr", "<!DOCTYPE r [<!ENTITY x \"xx\">]>\n<Rejestr", 1),
    );
    assert!(out.contains("ledger-doctype.xml:1: DOCTYPE"), "{out}");
    // Not the schema's shape: a row without its id, named by line.
    let out = refused(
        "ledger-noid.xml",
        xml.replacen("<Operacja id=\"L2\"", "<Operacja", 1),
    );
    assert!(
        out.contains("ledger-noid.xml:4: does not match rejestr.xsd"),
        "{out}"
    );
    // A value of the wrong type is refused by the schema itself, with its line and the
    // attribute: the contract a vendor can check an export against.
    let out = refused(
        "ledger-type.xml",
        xml.replacen("rok=\"2026\"", "rok=\"dwa tysiące\"", 2),
    );
    assert!(
        out.contains("ledger-type.xml:3: does not match rejestr.xsd") && out.contains("'rok'"),
        "{out}"
    );
    // A row of another register in a ledger file, by line.
    let out = refused(
        "ledger-mixed.xml",
        xml.replacen("<Operacja id=\"L2\"", "<Rata id=\"L2\"", 1),
    );
    assert!(out.contains("ledger-mixed.xml:4: "), "{out}");
    // A bad value, named by line and attribute.
    let out = refused("ledger-date.xml", xml.replace("2026-03-10", "2026-02-30"));
    assert!(
        out.contains("ledger-date.xml:4: column data_ksiegowania: "),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_register_can_come_from_a_sql_query_on_another_database() {
    let town = Town::new().await;
    // The back office's finance database (SQLite here), with its own column names.
    let finance = town.dir.path().join("finance.db");
    let url = format!("sqlite://{}?mode=rwc", finance.display());
    let pool = any_pool(&url).await;
    exec(&pool, "CREATE TABLE budzet (nr TEXT, rok INTEGER, dz TEXT, rozdz TEXT, par TEXT, opis TEXT, plan TEXT, wyk TEXT)").await;
    exec(&pool, "INSERT INTO budzet VALUES ('B1', 2026, '600', '60016', '4270', 'Drogi publiczne gminne: remonty', '1500000,00', '1234567,89')").await;
    exec(&pool, "INSERT INTO budzet VALUES ('B2', 2026, '801', '80101', '4010', 'Szkoły podstawowe', '9000000,00', '7000000,00')").await;
    pool.close().await;
    let mut config = std::fs::read_to_string(&town.config).unwrap();
    config.push_str(&format!(
        "\n[registers.sql.budget]\nurl = \"{url}\"\nquery = \"SELECT nr AS id, rok, dz AS dzial, rozdz AS rozdzial, par AS paragraf, opis AS nazwa, plan, wyk AS wykonanie FROM budzet\"\n"
    ));
    std::fs::write(&town.config, config).unwrap();
    let (ok, out) = town.sync(&["budget"]);
    assert!(ok, "{out}");
    assert!(
        count_line(&out, "budget").contains("2 rows: 2 inserted"),
        "{out}"
    );
    let pool = town.pool().await;
    let row =
        sqlx::query("SELECT name, plan_gr, execution_gr FROM portal_budget WHERE dzial = '600'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(row.get::<String, _>(0), "Drogi publiczne gminne: remonty");
    assert_eq!(
        (row.get::<i64, _>(1), row.get::<i64, _>(2)),
        (150_000_000, 123_456_789)
    );
    pool.close().await;
    // The temporary export is gone.
    let leftovers: Vec<_> = std::fs::read_dir(town.import().join(".query"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // A column of another type is refused by name, not guessed: nothing changes.
    let config = std::fs::read_to_string(&town.config)
        .unwrap()
        .replace("wyk AS wykonanie", "CAST(1.5 AS REAL) AS wykonanie");
    std::fs::write(&town.config, config).unwrap();
    let (ok, out) = town.sync(&["budget"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("column \"wykonanie\" is neither text nor a whole number"),
        "{out}"
    );
    let pool = town.pool().await;
    let execution: i64 = sqlx::query("SELECT execution_gr FROM portal_budget WHERE dzial = '600'")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(execution, 123_456_789);
    // Officials are told; no half-written export is left behind.
    let mails: i64 =
        sqlx::query("SELECT COUNT(*) FROM notification WHERE key LIKE 'sync_failed:budget:%'")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
    assert_eq!(mails, 1);
    let failed: i64 = sqlx::query(
        "SELECT COUNT(*) FROM sync_run WHERE register = 'budget' AND status = 'failed' AND error LIKE '%wykonanie%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap()
    .get(0);
    assert_eq!(failed, 1);
    pool.close().await;
    let leftovers: Vec<_> = std::fs::read_dir(town.import().join(".query"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn interest_on_tax_arrears_follows_the_rate_table_and_the_threshold() {
    let town = Town::new().await;
    town.basic().await.close().await;
    let mut config = std::fs::read_to_string(&town.config).unwrap();
    config.push_str(
        "\n[registers.interest]\nregistered_letter_fee = \"8,70\"\nrates = [{ from = \"2023-10-05\", basis_points = 1450 }]\n",
    );
    std::fs::write(&town.config, config).unwrap();
    // Anna's 400 zł due 15 March, unpaid on 20 November: 250 days at 14.5% = 39.73 zł → 40 zł.
    let (ok, out) = eurzad_with_config(
        &["interest", "--account", "K4", "--at", "2026-11-20"],
        &town.config,
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("total: arrears 400,00 zł, interest 40,00 zł"),
        "{out}"
    );
    // Jan's late and unpaid installments: each under 3 × 8,70 zł, so no interest.
    let (ok, out) = eurzad_with_config(
        &["interest", "--account", "K1", "--at", "2026-11-20"],
        &town.config,
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("total: arrears 650,25 zł, interest 0,00 zł"),
        "{out}"
    );
    // A fee account is not a tax.
    let (ok, out) = eurzad_with_config(&["interest", "--account", "K2"], &town.config);
    assert!(!ok && out.contains("tax accounts only"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_through_the_portal_api_of_a_principals_data_are_audited() {
    let town = Town::new().await;
    let pool = town.basic().await;
    seed_request(&pool).await;
    // Jan represents Anna for taxes.
    grant_anna_taxes(&pool, 1).await;
    // The daemon with the read API on a free loopback port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let token = town.dir.path().join("portal.token");
    std::fs::write(&token, "a-portal-token-of-some-length\n").unwrap();
    let mut config = std::fs::read_to_string(&town.config).unwrap();
    config.push_str(&format!(
        "\n[portal]\nlisten = \"127.0.0.1:{port}\"\ntoken_file = \"{}\"\n",
        token.display()
    ));
    std::fs::write(&town.config, config).unwrap();
    let mut daemon = spawn_daemon(&town.config, &town.dir.path().join("daemon.log"));
    let url = format!("http://127.0.0.1:{port}/portal/v1/liabilities?viewer=1");
    eurzad::install_crypto_provider();
    let http = reqwest::Client::new();
    let mut answer = None;
    for _ in 0..100 {
        if let Ok(r) = http
            .get(&url)
            .bearer_auth("a-portal-token-of-some-length")
            .send()
            .await
        {
            answer = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let answer = answer.expect("the portal API answers");
    let status = answer.status();
    let body = answer.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let accounts: Vec<&str> = rows
        .iter()
        .map(|r| r["account_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        accounts,
        ["K1", "K2", "K4"],
        "Jan's own accounts and Anna's tax account"
    );
    assert_eq!(rows[2]["due_gr"], 40_000);
    // Each value keeps its JSON type on either database: amounts are numbers, dates are
    // strings.
    let get = |url: String| {
        let request = http.get(url).bearer_auth("a-portal-token-of-some-length");
        async move {
            let rows: Vec<serde_json::Value> = request.send().await.unwrap().json().await.unwrap();
            rows
        }
    };
    let installments = get(url.replace("liabilities", "installments")).await;
    assert!(!installments.is_empty());
    for row in &installments {
        assert!(row["amount_gr"].is_i64(), "{row}");
        // A computed flag (INT4 on PostgreSQL, decoded by its own type) and a text column.
        assert!(
            row["overdue"].as_i64().is_some_and(|o| o == 0 || o == 1),
            "{row}"
        );
        assert!(row["installment_id"].is_string(), "{row}");
        assert!(
            row["due_date"].as_str().is_some_and(|d| d.len() == 10),
            "{row}"
        );
        assert_eq!(row["viewer_account_id"], 1, "{row}");
    }
    // A viewer with no rows gets an empty list, and no audit row.
    let none = get(url.replace("viewer=1", "viewer=999")).await;
    assert!(none.is_empty(), "{none:?}");
    // Without the token: refused.
    let refused = http.get(&url).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    // The read of Anna's data is in the audit log; Jan's own data is not logged.
    let logged: Vec<(String, String, String)> = sqlx::query(
        "SELECT actor, action, subject FROM audit_log WHERE action LIKE 'read:%' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect();
    assert_eq!(
        logged,
        vec![
            (
                "portal:account:1".into(),
                "read:liabilities".into(),
                "party:P2".into()
            ),
            (
                "portal:account:1".into(),
                "read:installments".into(),
                "party:P2".into()
            )
        ]
    );
    pool.close().await;
}

/// The indexes of `table` by name, from the catalog of either database.
async fn indexes(pool: &sqlx::AnyPool, url: &str, table: &str) -> Vec<String> {
    let sql = if url.starts_with("sqlite:") {
        format!(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = '{table}' ORDER BY name"
        )
    } else {
        format!(
            "SELECT indexname::text FROM pg_indexes WHERE tablename = '{table}' ORDER BY indexname"
        )
    };
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_load_into_an_empty_table_leaves_its_indexes_and_key_in_place() {
    // An empty table is loaded without its indexes, which are built again after the load in
    // the same transaction: whether the load is refused or applied, they are all there.
    let town = Town::new().await;
    town.drop_basic(&["parties", "accounts", "installments"]);
    let (ok, out) = town.sync(&[]);
    assert!(ok, "{out}");
    let pool = town.pool().await;
    let before = indexes(&pool, &town.db.url, "reg_ledger").await;
    assert!(
        before.iter().any(|n| n == "reg_ledger_account")
            && before.iter().any(|n| n == "reg_ledger_installment")
            && before.len() == 3,
        "{before:?}"
    );
    let ledger = std::fs::read_to_string(fixture("registers/basic/ledger.csv")).unwrap();
    write(
        &town.import().join("ledger.csv"),
        &ledger.replace("L5;K2;", "L5;K9;"),
    );
    let (ok, out) = town.sync(&["ledger"]);
    assert!(!ok && out.contains("unknown accounts id"), "{out}");
    assert_eq!(indexes(&pool, &town.db.url, "reg_ledger").await, before);
    write(&town.import().join("ledger.csv"), &ledger);
    let (ok, out) = town.sync(&["ledger"]);
    assert!(ok, "{out}");
    assert_eq!(indexes(&pool, &town.db.url, "reg_ledger").await, before);
    let rows: i64 = sqlx::query("SELECT COUNT(*) FROM reg_ledger")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows as usize, ledger.lines().count() - 1);
    // The key is enforced again.
    let duplicate = sqlx::query("INSERT INTO reg_ledger SELECT * FROM reg_ledger WHERE id = 'L5'")
        .execute(&pool)
        .await;
    assert!(duplicate.is_err(), "the primary key is back");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_snapshot_leaves_its_digest_and_an_incremental_run_removes_it() {
    // The next run compares with the digest (the last full file's row hashes) instead of
    // reading the table. It must always describe the table: rewritten by each full run,
    // removed by an incremental one, and the comparison stays right either way.
    let town = Town::new().await;
    let pool = town
        .sync_basic(&["parties", "accounts", "installments", "ledger"])
        .await;
    let digest = |pool: sqlx::AnyPool| async move {
        sqlx::query(
            "SELECT d.run_id, LENGTH(d.hashes), (SELECT MAX(id) FROM sync_run WHERE register = 'ledger' AND status = 'done') \
             FROM register_digest d WHERE d.register = 'ledger'",
        )
        .fetch_optional(&pool)
        .await
        .unwrap()
        .map(|r| (r.get::<i64, _>(0), r.get::<i64, _>(1), r.get::<i64, _>(2)))
    };
    let ledger = std::fs::read_to_string(fixture("registers/basic/ledger.csv")).unwrap();
    let rows = ledger.lines().count() as i64 - 1;
    let (run, bytes, latest) = digest(pool.clone()).await.expect("a digest");
    assert_eq!((run, bytes), (latest, rows * 8));
    // An incremental run with one changed row: applied, and the digest is gone.
    let changed = ledger.replace("L5;K2;", "L5;K1;");
    write(&town.import().join("ledger.csv"), &changed);
    let (ok, out) = town.sync(&["ledger", "--incremental"]);
    assert!(
        ok && count_line(&out, "ledger").contains("1 updated"),
        "{out}"
    );
    assert_eq!(digest(pool.clone()).await, None);
    // The next full run reads the table, finds nothing changed, and leaves a digest again.
    write(&town.import().join("ledger.csv"), &format!("{changed}\n"));
    let (ok, out) = town.sync(&["ledger"]);
    assert!(ok, "{out}");
    assert!(
        count_line(&out, "ledger").contains(&format!("0 updated, 0 deleted, {rows} unchanged")),
        "{out}"
    );
    let (run, _, latest) = digest(pool.clone()).await.expect("a digest again");
    assert_eq!(run, latest);
    // And with the digest, going back to the first rows (in a new file) changes exactly
    // that row.
    write(&town.import().join("ledger.csv"), &format!("{ledger}\n\n"));
    let (ok, out) = town.sync(&["ledger"]);
    assert!(
        ok && count_line(&out, "ledger").contains("0 inserted, 1 updated, 0 deleted"),
        "{out}"
    );
    // An unchanged export (a new file, the same rows) keeps the digest's hashes and hands it
    // to its own run, so that the run after it still compares with the digest, and right.
    let hashes = |pool: sqlx::AnyPool| async move {
        sqlx::query_scalar::<_, Vec<u8>>(
            "SELECT hashes FROM register_digest WHERE register = 'ledger'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let before = hashes(pool.clone()).await;
    write(
        &town.import().join("ledger.csv"),
        &format!("{ledger}\n\n\n"),
    );
    let (ok, out) = town.sync(&["ledger"]);
    assert!(
        ok && count_line(&out, "ledger")
            .contains(&format!("0 updated, 0 deleted, {rows} unchanged")),
        "{out}"
    );
    let (run, _, latest) = digest(pool.clone()).await.expect("the digest is kept");
    assert_eq!(run, latest, "the digest belongs to the unchanged run now");
    assert_eq!(hashes(pool.clone()).await, before);
    write(
        &town.import().join("ledger.csv"),
        &format!("{changed}\n\n\n\n"),
    );
    let (ok, out) = town.sync(&["ledger"]);
    assert!(
        ok && count_line(&out, "ledger").contains("0 inserted, 1 updated, 0 deleted"),
        "{out}"
    );
    assert_ne!(
        hashes(pool.clone()).await,
        before,
        "a changed file writes its own digest"
    );
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_deleted_by_hand_are_put_back_by_the_next_run() {
    // The digest says what the last run left. A write outside a run deletes it (the
    // guard's triggers, migration 0010), so the next run compares with the table itself and
    // puts back the rows the file has: one deleted by hand, and a table emptied by hand.
    // (Values changed by hand, their row_hash left, are not seen: docs/import-formats.md.)
    let town = Town::new().await;
    let pool = town
        .sync_basic(&["parties", "accounts", "installments", "ledger"])
        .await;
    let ledger = std::fs::read_to_string(fixture("registers/basic/ledger.csv")).unwrap();
    let rows = ledger.lines().count() - 1;
    let digests = |pool: sqlx::AnyPool| async move {
        sqlx::query_scalar::<_, String>("SELECT register FROM register_digest ORDER BY register")
            .fetch_all(&pool)
            .await
            .unwrap()
    };
    assert_eq!(
        digests(pool.clone()).await,
        ["accounts", "installments", "ledger", "parties"]
    );
    exec(&pool, "DELETE FROM reg_ledger WHERE id = 'L5'").await;
    assert_eq!(
        digests(pool.clone()).await,
        ["accounts", "installments", "parties"],
        "the write by hand deleted the ledger's digest, and only that"
    );
    write(&town.import().join("ledger.csv"), &format!("{ledger}\n"));
    let (ok, out) = town.sync(&["ledger"]);
    assert!(
        ok && count_line(&out, "ledger").contains(&format!(
            "1 inserted, 0 updated, 0 deleted, {} unchanged",
            rows - 1
        )),
        "{out}"
    );
    exec(&pool, "DELETE FROM reg_ledger").await;
    write(&town.import().join("ledger.csv"), &format!("{ledger}\n\n"));
    let (ok, out) = town.sync(&["ledger"]);
    assert!(
        ok && count_line(&out, "ledger").contains(&format!("{rows} inserted")),
        "{out}"
    );
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_register_table_is_guarded_after_its_runs() {
    // Every register of a small generated town is synced, and then written by hand one row
    // at a time: each write deletes that register's digest and no other. The runs drop and
    // create again their table's guard on SQLite, so this also shows they put it back.
    let town = Town::new().await;
    // (A ledger of natural size: the generator writes assessments only then.)
    eurzad::registers::sample::generate(&town.import(), 2_000, 0).unwrap();
    let (ok, out) = town.sync(&[]);
    assert!(ok, "{out}");
    let pool = town.pool().await;
    let digests = || {
        sqlx::query_scalar::<_, String>("SELECT register FROM register_digest ORDER BY register")
            .fetch_all(&pool)
    };
    let mut left: Vec<String> = eurzad::registers::REGISTERS
        .iter()
        .map(|r| r.name.to_string())
        .collect();
    left.sort();
    assert_eq!(digests().await.unwrap(), left, "a digest per register");
    for register in eurzad::registers::REGISTERS {
        let written = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {t} SET row_hash = row_hash WHERE id = (SELECT MIN(id) FROM {t})",
            t = register.table
        )))
        .execute(&pool)
        .await
        .unwrap()
        .rows_affected();
        assert_eq!(
            written, 1,
            "{}: the town has rows to write by hand",
            register.table
        );
        left.retain(|name| name != register.name);
        assert_eq!(
            digests().await.unwrap(),
            left,
            "a write by hand to {} deletes its digest, and only that",
            register.table
        );
    }
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ids_a_run_checks_references_against_follow_the_referenced_register() {
    // A daemon keeps the ids of a referenced register from one run to the next while that
    // register's digest stays the same. Every way the referenced rows change (a run of that
    // register, a write by hand) must be seen by the next run of the referring register.
    use eurzad::registers::csv_source::FileEncoding;
    use eurzad::store::Store;
    use eurzad::store::registers::{SyncMode, SyncOutcome};
    let town = Town::new().await;
    let store = Store::connect(&town.db.url, 4).await.unwrap();
    store.migrate().await.unwrap();
    let dir = town.import();
    let mut n = 0;
    let mut sync = |name: &'static str, text: String| {
        n += 1;
        let path = dir.join(format!("{name}-{n}.csv"));
        write(&path, &text);
        let store = store.clone();
        async move {
            store
                .sync_file(
                    eurzad::registers::register(name).unwrap(),
                    &path,
                    SyncMode::Full,
                    FileEncoding::Auto,
                    "test",
                )
                .await
        }
    };
    let basic = |name: &str| {
        std::fs::read_to_string(fixture(&format!("registers/basic/{name}.csv"))).unwrap()
    };
    for name in ["parties", "accounts", "installments"] {
        assert!(matches!(
            sync(name, basic(name)).await,
            Ok(SyncOutcome::Applied { .. })
        ));
    }
    let ledger = basic("ledger");
    assert!(matches!(
        sync("ledger", ledger.clone()).await,
        Ok(SyncOutcome::Applied { .. })
    ));
    // Kept ids in use: an unchanged ledger goes through.
    assert!(matches!(
        sync("ledger", format!("{ledger}\n")).await,
        Ok(SyncOutcome::Applied { .. })
    ));
    let refused = |outcome: Result<SyncOutcome, eurzad::store::registers::SyncError>| match outcome
    {
        Err(error) => error.to_string(),
        Ok(other) => panic!("applied: {other:?}"),
    };
    // An installment the ledger pays, deleted by hand: the next ledger run sees it gone.
    let pool = town.pool().await;
    exec(&pool, "DELETE FROM reg_installment WHERE id = 'K2-R2'").await;
    let error = refused(sync("ledger", format!("{ledger}\n\n")).await);
    assert!(
        error.contains(":7: column rata: unknown installments id \"K2-R2\""),
        "{error}"
    );
    // Put back by a run of the installments; then a run of them without it.
    assert!(matches!(
        sync("installments", format!("{}\n", basic("installments"))).await,
        Ok(SyncOutcome::Applied { .. })
    ));
    assert!(matches!(
        sync("ledger", format!("{ledger}\n\n\n")).await,
        Ok(SyncOutcome::Applied { .. })
    ));
    let without: String = basic("installments")
        .lines()
        .filter(|line| !line.starts_with("K2-R2;"))
        .map(|line| format!("{line}\n"))
        .collect();
    assert!(matches!(
        sync("installments", without).await,
        Ok(SyncOutcome::Applied { .. })
    ));
    let error = refused(sync("ledger", format!("{ledger}\n\n\n\n")).await);
    assert!(
        error.contains("unknown installments id \"K2-R2\""),
        "{error}"
    );
    pool.close().await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn migration_0009_keeps_the_views_their_grants_and_the_rows() {
    // PostgreSQL's 0009 declares register keys COLLATE "C", which needs the views that read
    // them dropped and made again from their own definitions. The rows, a grant to the
    // portal's readers, and a view an office made on top of ours must all survive. (On
    // SQLite 0009 changes nothing: its keys already compare byte by byte.)
    let dir = tempfile::tempdir().unwrap();
    let db = test_database(dir.path()).await;
    if db.kind != "postgres" {
        return;
    }
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let migrator = sqlx::migrate!("./migrations/postgres");
    migrator.run_to(8, &pool).await.unwrap();
    for sql in [
        "INSERT INTO reg_party (id, kind, name, row_hash) VALUES ('P1', 'F', 'Jan Kowalski', 1)",
        "GRANT SELECT ON portal_liabilities TO PUBLIC",
        "CREATE VIEW office_party_names AS SELECT p.id, p.name FROM reg_party p \
         JOIN portal_party_access x ON x.party_id = p.id",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
    }
    migrator.run(&pool).await.unwrap();
    let collation: String = sqlx::query_scalar(
        "SELECT attcollation::regcollation::text FROM pg_attribute \
         WHERE attrelid = 'reg_ledger'::regclass AND attname = 'account_id'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(collation, "\"C\"");
    let granted: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_class c, aclexplode(c.relacl) a \
         WHERE c.relname = 'portal_liabilities' AND a.grantee = 0 AND a.privilege_type = 'SELECT')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(granted, "the grant to PUBLIC is kept");
    let office_view: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM office_party_names")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(office_view, 0, "the office's view is there and reads");
    let name: String = sqlx::query_scalar("SELECT name FROM reg_party WHERE id = 'P1'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(name, "Jan Kowalski");
    pool.close().await;
}

/// A refused import reaches the officials as an e-mail, through a real SMTP server: `eurzad
/// sync` records it (with its mail job) and the daemon's next run sends it.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_import_reaches_the_officials_by_mail() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_database(dir.path()).await;
    let smtp = SmtpServer::start(dir.path());
    let import = dir.path().join("import");
    std::fs::create_dir_all(&import).unwrap();
    let config = dir.path().join("config.toml");
    write(
        &config,
        &format!(
            "[database]\nurl = \"{}\"\n[epuap]\nendpoint = \"embedded\"\n[[epuap.boxes]]\npodmiot = \"u\"\n\
             nazwa = \"s\"\nadres = \"/u/s\"\n[notify]\nofficials = [\"urzednik@urzad.test\"]\n\
             from = \"eUrząd <eurzad@urzad.test>\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\n\
             smtp_security = \"none\"\ndigest_cron = \"0 8 29 2 *\"\n[registers]\ndrop_dir = \"{}\"\n",
            db.url,
            smtp.port,
            import.display()
        ),
    );
    let parties = std::fs::read_to_string(fixture("registers/basic/parties.csv")).unwrap();
    // A party whose PESEL has a wrong check digit, on line 3.
    let pesel = parties
        .lines()
        .nth(2)
        .and_then(|l| {
            l.split(';')
                .find(|f| f.len() == 11 && f.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_string);
    let Some(pesel) = pesel else {
        panic!("line 3 of parties.csv names a PESEL: {parties}")
    };
    let last = (pesel.as_bytes()[10] - b'0' + 1) % 10;
    let broken = format!("{}{last}", &pesel[..10]);
    write(
        &import.join("parties.csv"),
        &parties.replace(&pesel, &broken),
    );
    let (ok, out) = eurzad_with_config(&["sync", "parties"], &config);
    assert!(!ok, "{out}");
    assert!(out.contains("parties.csv:3: column pesel"), "{out}");
    let (ok, out) = eurzad_with_config(&["run", "--once"], &config);
    assert!(ok, "{out}");
    let messages = smtp.messages();
    let refused: Vec<_> = messages
        .iter()
        .filter(|(_, subject, _)| subject.contains("Import rejestru parties odrzucony"))
        .collect();
    assert_eq!(refused.len(), 1, "{messages:?}");
    let (to, _, body) = refused[0];
    assert!(to.contains("urzednik@urzad.test"), "{to}");
    assert!(
        body.contains("parties.csv:3") && body.contains("Żadne dane nie zostały zmienione"),
        "{body}"
    );
}

/// What a portal reader sees of the registers, in one statement (one snapshot): the ledger,
/// and the figures the sync derives from it in the same transaction (the first 50 viewers'
/// liabilities, added up from the ledger; the allocation kept by the run).
const READER_STATE: &str = "SELECT \
    (SELECT COUNT(*) FROM reg_ledger), \
    (SELECT CAST(COALESCE(SUM(amount_gr), 0) AS BIGINT) FROM reg_ledger), \
    (SELECT CAST(COALESCE(SUM(due_gr), 0) AS BIGINT) FROM portal_liabilities WHERE viewer_account_id <= 50), \
    (SELECT CAST(COALESCE(SUM(allocated_gr), 0) AS BIGINT) FROM reg_installment_allocation), \
    (SELECT COUNT(*) FROM reg_installment_allocation)";

async fn reader_state(pool: &sqlx::AnyPool) -> [i64; 5] {
    let row = sqlx::query(READER_STATE).fetch_one(pool).await.unwrap();
    std::array::from_fn(|i| row.get(i))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_during_a_sync_sees_the_old_file_or_the_new_one_and_never_waits() {
    let town = Town::new().await;
    let generated = town.dir.path().join("generated");
    eurzad::registers::sample::generate(&generated, 8000, 0).unwrap();
    for register in eurzad::registers::REGISTERS {
        let name = format!("{}.csv", register.name);
        std::fs::copy(generated.join(&name), town.import().join(&name)).unwrap();
    }
    let (ok, out) = town.sync(&[]);
    assert!(ok, "{out}");
    let pool = town.pool().await;
    // The first 50 people have portal accounts.
    exec(
        &pool,
        "INSERT INTO account (pesel, given_name, surname, status, created_at, updated_at) \
         SELECT pesel, 'G', 'S', 'active', '2026-11-01 10:00:00+00:00', '2026-11-01 10:00:00+00:00' \
         FROM reg_party WHERE pesel IS NOT NULL ORDER BY id LIMIT 50",
    )
    .await;
    let before = reader_state(&pool).await;
    assert_ne!(before[2], 0, "the readers' liabilities are read");
    // The new ledger: every amount one grosz more, so every row and every figure changes.
    let ledger = std::fs::read_to_string(generated.join("ledger.csv")).unwrap();
    let mut lines = ledger.lines();
    let mut changed = format!("{}\n", lines.next().unwrap());
    for line in lines {
        let (rest, amount) = line.rsplit_once(';').unwrap();
        let (sign, amount) = match amount.strip_prefix('-') {
            Some(magnitude) => ("-", magnitude),
            None => ("", amount),
        };
        let (zl, gr) = amount.split_once(',').unwrap();
        let grosze = zl.parse::<i64>().unwrap() * 100 + gr.parse::<i64>().unwrap() + 1;
        changed.push_str(&format!(
            "{rest};{sign}{},{:02}\n",
            grosze / 100,
            grosze % 100
        ));
    }
    std::fs::write(town.import().join("ledger.csv"), changed).unwrap();

    // A reader reads throughout the sync, on a connection of its own.
    let syncing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let reader = {
        let (pool, syncing) = (pool.clone(), syncing.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut slowest = std::time::Duration::ZERO;
            while syncing.load(std::sync::atomic::Ordering::Relaxed) {
                let started = std::time::Instant::now();
                seen.push(reader_state(&pool).await);
                slowest = slowest.max(started.elapsed());
            }
            (seen, slowest)
        })
    };
    let sync = {
        let config = town.config.clone();
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let result = eurzad_with_config(&["sync", "ledger"], &config);
            (result, started.elapsed())
        })
    };
    let ((ok, out), took) = sync.await.unwrap();
    syncing.store(false, std::sync::atomic::Ordering::Relaxed);
    assert!(ok, "{out}");
    assert!(
        count_line(&out, "ledger").contains(" 0 inserted, ") && !out.contains(" 0 updated"),
        "{out}"
    );
    let (seen, slowest) = reader.await.unwrap();
    let after = reader_state(&pool).await;
    assert_ne!(before, after, "the new file changes what a reader sees");
    let mixed: Vec<&[i64; 5]> = seen
        .iter()
        .filter(|s| **s != before && **s != after)
        .collect();
    assert!(
        mixed.is_empty(),
        "a reader saw a mix of the two files: {:?} (before {before:?}, after {after:?})",
        &mixed[..mixed.len().min(3)]
    );
    // The reader kept reading while the file was applied: it saw the old state many times,
    // and no read took as long as the sync (none waited for it).
    let old = seen.iter().filter(|s| **s == before).count();
    assert!(old >= 3, "{old} reads of the old state in {took:?} of sync");
    assert!(
        slowest < took / 2,
        "a read took {slowest:?}, the sync {took:?}"
    );
    pool.close().await;
}
