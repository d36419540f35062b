//! The figures the portal's views read, derived from the registers by the run that changes
//! them, in its own transaction (docs/schema.md, "How the views are computed"):
//!
//! - `reg_party_key`: each party by its PESEL, NIP and REGON, where representations find
//!   their principals. From `parties`.
//! - `reg_account_party`: who is liable on each account (its party and its co-obligors), and
//!   the scope of the account (taxes or fees). From `accounts` and `obligors`.
//! - `reg_installment_allocation`: what installments got from the payments that name none
//!   (art. 62 of Ordynacja podatkowa, [`allocation`]). What the payments that name an
//!   installment paid is added up by the views when they are read.
//!
//! The per-year sums of `portal_liabilities` are not kept: the view adds up the viewer's few
//! ledger rows when it is read (migration 0018), which costs a read about as much as an
//! index lookup and spared a first sync of 1,000,000 ledger rows 0.5 s on SQLite and 0.9 s
//! on PostgreSQL.
//!
//! Nothing here depends on the date: whether an installment is overdue is judged by the views
//! when they are read, so the figures stay right on the day after a sync.
//!
//! What each ledger entry type means is docs/import-formats.md, "Ledger entry types"; the
//! allocation below and `portal_liabilities` (migration 0018) read it.

use crate::registers::Register;

/// Each party under each identifier a representation may name it by: the views match a
/// representation's principal here, in one lookup (docs/schema.md, `portal_party_access`).
const PARTY_KEY: &[&str] = &[
    "DELETE FROM reg_party_key",
    "INSERT INTO reg_party_key (key_type, key, party_id)
     SELECT 'PESEL', pesel, id FROM reg_party WHERE pesel IS NOT NULL
     UNION ALL SELECT 'NIP', nip, id FROM reg_party WHERE nip IS NOT NULL
     UNION ALL SELECT 'REGON', regon, id FROM reg_party WHERE regon IS NOT NULL",
];

const ACCOUNT_PARTY: &[&str] = &[
    "DELETE FROM reg_account_party",
    "INSERT INTO reg_account_party (party_id, account_id, scope)
     SELECT l.party_id, a.id,
            CASE WHEN a.kind IN ('property', 'agricultural', 'forest', 'transport', 'joint')
                 THEN 'podatki' ELSE 'oplaty' END
     FROM (SELECT id AS account_id, party_id FROM reg_account
           UNION SELECT account_id, party_id FROM reg_obligor) l
     JOIN reg_account a ON a.id = l.account_id",
];

/// Art. 62: a payment that names no installment goes to the earliest-due arrears. Such
/// payments (and credited overpayments) make a pool per account, less what was refunded or
/// moved away beyond the overpayments of named installments (a refund takes back a credit:
/// first what was paid over an installment, then what was left unallocated). The pool fills
/// the account's installments in due-date order, each up to what it still lacks after the
/// payments that name it; what is left is unallocated (a credit on the account). Filling in
/// due-date order with the pool's sum gives each installment what taking the payments one by
/// one, in the order of their value dates, would give it.
///
/// Every sum is cast back to BIGINT where it is made: PostgreSQL's `SUM(bigint)` is NUMERIC,
/// and the comparisons and differences after it cost a tenth of the statement in NUMERIC.
///
/// Only the accounts with a pool (a few in ten in a real town) have rows: an installment
/// without one was paid by what names it, which the views add up when they are read (an
/// index lookup per installment). One pass over the ledger finds the pools.
fn allocation(sqlite: bool) -> [String; 2] {
    let ledger = if sqlite {
        "reg_ledger NOT INDEXED"
    } else {
        "reg_ledger"
    };
    [
        "DELETE FROM reg_installment_allocation".into(),
        format!(
            "INSERT INTO reg_installment_allocation (installment_id, account_id, allocated_gr)
             WITH q AS (
                 SELECT account_id,
                        CAST(SUM(CASE WHEN entry_type = 'overpayment_refund' THEN 0 ELSE amount_gr END) AS BIGINT) AS unnamed_gr,
                        CAST(SUM(CASE WHEN entry_type = 'overpayment_refund' THEN amount_gr ELSE 0 END) AS BIGINT) AS refunded_gr
                 FROM {ledger}
                 WHERE (installment_id IS NULL AND entry_type IN ('payment', 'overpayment_credit'))
                    OR entry_type = 'overpayment_refund'
                 GROUP BY account_id),
             i AS (
                 SELECT i.id, i.account_id, i.year, i.number, i.due_date, i.amount_gr,
                        COALESCE((SELECT CAST(SUM(l.amount_gr) AS BIGINT) FROM reg_ledger l
                                  WHERE l.installment_id = i.id AND l.entry_type IN ('payment', 'overpayment_credit')), 0) AS named_gr
                 FROM q JOIN reg_installment i ON i.account_id = q.account_id),
             pool AS (
                 SELECT q.account_id,
                        q.unnamed_gr - CASE WHEN q.refunded_gr > COALESCE(e.gr, 0) THEN q.refunded_gr - COALESCE(e.gr, 0) ELSE 0 END AS gr
                 FROM q LEFT JOIN (SELECT account_id, CAST(SUM(named_gr - amount_gr) AS BIGINT) AS gr FROM i
                                   WHERE named_gr > amount_gr GROUP BY account_id) e ON e.account_id = q.account_id),
             lacking AS (
                 SELECT i.id, i.account_id, i.year, i.number, i.due_date, p.gr AS pool_gr,
                        CASE WHEN i.amount_gr > i.named_gr THEN i.amount_gr - i.named_gr ELSE 0 END AS lack_gr
                 FROM i JOIN pool p ON p.account_id = i.account_id
                 WHERE p.gr > 0),
             ordered AS (
                 SELECT l.id, l.account_id, l.pool_gr, l.lack_gr,
                        CAST(SUM(l.lack_gr) OVER (PARTITION BY l.account_id
                                             ORDER BY l.due_date, l.year, l.number, l.id
                                             ROWS UNBOUNDED PRECEDING) AS BIGINT) - l.lack_gr AS before_gr
                 FROM lacking l)
             SELECT id, account_id,
                    CASE WHEN pool_gr - before_gr >= lack_gr THEN lack_gr ELSE pool_gr - before_gr END
             FROM ordered
             WHERE pool_gr > before_gr AND lack_gr > 0"
        ),
    ]
}

/// The statements that bring the derived figures up to date after a run of `register`
/// changed its table, in order; none when nothing is derived from it.
pub(super) fn refresh(register: &Register, sqlite: bool) -> Vec<String> {
    match register.name {
        "parties" => PARTY_KEY.iter().map(|s| s.to_string()).collect(),
        "accounts" | "obligors" => ACCOUNT_PARTY.iter().map(|s| s.to_string()).collect(),
        "installments" | "ledger" => settings(sqlite)
            .into_iter()
            .chain(allocation(sqlite))
            .collect(),
        _ => Vec::new(),
    }
}

/// PostgreSQL's settings for the derived figures, for this transaction only:
///
/// - sorts and hash tables get 64 MB (with the default 4 MB the per-account sums the run
///   once kept spilled to disk: 0.85 s against 0.57 s for a 1,000,000-row ledger,
///   benches/sync.rs);
/// - no JIT compilation. A table filled in this transaction has no statistics yet, so the
///   planner guesses thousands of ledger rows per installment, the allocation's estimated
///   cost passes `jit_above_cost`, and LLVM compiled and optimized 88 functions for it: 1.03 s
///   of a statement that runs in 0.09 s without (1,000,000 rows, `EXPLAIN ANALYZE`).
fn settings(sqlite: bool) -> Vec<String> {
    if sqlite {
        return Vec::new();
    }
    vec![
        "SET LOCAL work_mem = '64MB'".to_string(),
        "SET LOCAL jit = off".to_string(),
    ]
}

/// Every statement, for a database whose derived tables were never filled (one migrated
/// from before they existed).
pub(super) fn refresh_all(sqlite: bool) -> Vec<String> {
    settings(sqlite)
        .into_iter()
        .chain(PARTY_KEY.iter().map(|s| s.to_string()))
        .chain(ACCOUNT_PARTY.iter().map(|s| s.to_string()))
        .chain(allocation(sqlite))
        .collect()
}

/// The first assessment whose components do not sum to its total, to the grosz: checked
/// when the components are applied (an assessment is applied before its components, so a
/// changed total and its changed components arrive one run apart).
pub(super) const COMPONENTS_DISAGREE: &str =
    "SELECT a.id, a.total_gr, CAST(SUM(c.amount_gr) AS BIGINT)
     FROM reg_assessment a JOIN reg_assessment_component c ON c.assessment_id = a.id
     GROUP BY a.id, a.total_gr HAVING SUM(c.amount_gr) <> a.total_gr ORDER BY a.id LIMIT 1";
