//! An optional read API for the portal (`[portal] listen`), over the same `portal_*` views,
//! that records in `audit_log` every read that covers another person's data (GDPR): when a
//! viewer reads a view in a scope where they represent somebody, one row per represented
//! party (actor `portal:account:<viewer>`, action `read:<view>`, subject `party:<id>`).
//!
//! The views stay the contract; a portal that reads them directly bypasses this log, so an
//! office that must log reads points its portal here. Loopback by default, a bearer token
//! from a file.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use serde_json::{Map, Value};
use sqlx::{Column, Row};

use crate::store::{Begin, Store};

/// A view the API serves: its name in the URL, the SQL, and the scopes it covers.
struct ViewDef {
    name: &'static str,
    sql: &'static str,
    scopes: &'static [&'static str],
}

const VIEWS: &[ViewDef] = &[
    ViewDef {
        name: "liabilities",
        sql: "SELECT * FROM portal_liabilities WHERE viewer_account_id = $1 ORDER BY account_id, year",
        scopes: &["podatki", "oplaty"],
    },
    ViewDef {
        name: "installments",
        sql: "SELECT * FROM portal_installments WHERE viewer_account_id = $1 ORDER BY account_id, due_date",
        scopes: &["podatki", "oplaty"],
    },
    ViewDef {
        name: "payments",
        sql: "SELECT * FROM portal_payments WHERE viewer_account_id = $1 ORDER BY account_id, booking_date",
        scopes: &["podatki", "oplaty"],
    },
    ViewDef {
        name: "assessments",
        sql: "SELECT * FROM portal_assessments WHERE viewer_account_id = $1 ORDER BY account_id, year, issued_on, assessment_id",
        scopes: &["podatki", "oplaty"],
    },
    ViewDef {
        name: "tax_components",
        sql: "SELECT * FROM portal_tax_components WHERE viewer_account_id = $1 ORDER BY account_id, year, assessment_id, component_id",
        scopes: &["podatki", "oplaty"],
    },
    ViewDef {
        name: "cases",
        sql: "SELECT * FROM portal_cases WHERE viewer_account_id = $1 ORDER BY case_id",
        scopes: &["sprawy"],
    },
    ViewDef {
        name: "case_letters",
        sql: "SELECT * FROM portal_case_letters WHERE viewer_account_id = $1 ORDER BY case_id, letter_date",
        scopes: &["sprawy"],
    },
    ViewDef {
        name: "alcohol_permits",
        sql: "SELECT * FROM portal_alcohol_permits WHERE viewer_account_id = $1 ORDER BY permit_id",
        scopes: &["rejestry"],
    },
    ViewDef {
        name: "leases",
        sql: "SELECT * FROM portal_leases WHERE viewer_account_id = $1 ORDER BY lease_id",
        scopes: &["rejestry"],
    },
    ViewDef {
        name: "correspondence",
        sql: "SELECT * FROM portal_correspondence WHERE viewer_account_id = $1 ORDER BY received_at",
        scopes: &["korespondencja"],
    },
];

#[derive(Clone)]
struct Api {
    store: Store,
    token: Arc<String>,
}

#[derive(serde::Deserialize)]
struct Viewer {
    viewer: i64,
}

/// The router: `GET /portal/v1/{view}?viewer=<account id>`, bearer token required.
pub fn router(store: Store, token: String) -> Router {
    Router::new()
        .route("/portal/v1/{view}", get(read_view))
        .with_state(Api {
            store,
            token: Arc::new(token),
        })
}

/// One row as JSON: each column as the first type that decodes.
macro_rules! row_json {
    ($row:expr) => {{
        let mut object = Map::new();
        for (i, column) in $row.columns().iter().enumerate() {
            let value = if let Ok(v) = $row.try_get::<Option<i64>, _>(i) {
                v.map(Value::from).unwrap_or(Value::Null)
            } else if let Ok(v) = $row.try_get::<Option<i32>, _>(i) {
                v.map(Value::from).unwrap_or(Value::Null)
            } else if let Ok(v) = $row.try_get::<Option<String>, _>(i) {
                v.map(Value::from).unwrap_or(Value::Null)
            } else if let Ok(v) = $row.try_get::<Option<chrono::NaiveDate>, _>(i) {
                v.map(|d| Value::from(d.to_string())).unwrap_or(Value::Null)
            } else if let Ok(v) = $row.try_get::<Option<chrono::DateTime<Utc>>, _>(i) {
                v.map(|d| Value::from(d.to_rfc3339()))
                    .unwrap_or(Value::Null)
            } else {
                Value::Null
            };
            object.insert(column.name().to_string(), value);
        }
        Value::Object(object)
    }};
}

async fn read_view(
    State(api): State<Api>,
    Path(view): Path<String>,
    Query(viewer): Query<Viewer>,
    headers: HeaderMap,
) -> Response {
    let authorized = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .is_some_and(|t| same(t.as_bytes(), api.token.as_bytes()));
    if !authorized {
        return (StatusCode::UNAUTHORIZED, "a bearer token is required").into_response();
    }
    let Some(def) = VIEWS.iter().find(|v| v.name == view) else {
        return (StatusCode::NOT_FOUND, format!("no view {view:?}")).into_response();
    };
    match read(&api.store, def, viewer.viewer).await {
        Ok(rows) => axum::Json(rows).into_response(),
        Err(e) => {
            tracing::error!(view = def.name, viewer = viewer.viewer, error = %e, "portal read failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the read failed (see the daemon's log)",
            )
                .into_response()
        }
    }
}

/// Compares tokens in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The represented parties whose data a read of `def` by `viewer` covers.
const REPRESENTED: &str = "SELECT DISTINCT party_id FROM portal_party_access \
     WHERE viewer_account_id = $1 AND access = 'representation' AND scope = $2 ORDER BY party_id";

/// Reads a view for a viewer, and then logs the represented parties whose data the read
/// covered.
///
/// The read is a read-only snapshot (on SQLite a WAL reader, which never waits for a sync
/// that is writing; on PostgreSQL `REPEATABLE READ`), and the parties are read in the same
/// snapshot as the rows. The log is written after it, in a transaction of its own, and
/// committed before the rows are answered: no data leaves without its record. A read of
/// one's own data writes nothing.
async fn read(store: &Store, def: &ViewDef, viewer: i64) -> Result<Vec<Value>, sqlx::Error> {
    let now = Utc::now();
    macro_rules! read_in {
        ($pool:expr) => {{
            let mut tx = $pool.begin_read().await?;
            let rows = sqlx::query(def.sql)
                .bind(viewer)
                .fetch_all(&mut *tx)
                .await?;
            let json: Vec<Value> = rows.iter().map(|r| row_json!(r)).collect();
            let mut covered: Vec<(&str, String)> = Vec::new();
            for scope in def.scopes {
                let parties: Vec<String> = sqlx::query_scalar(REPRESENTED)
                    .bind(viewer)
                    .bind(*scope)
                    .fetch_all(&mut *tx)
                    .await?;
                covered.extend(parties.into_iter().map(|party| (*scope, party)));
            }
            tx.rollback().await?;
            if !covered.is_empty() {
                let mut log = $pool.begin_write().await?;
                for (scope, party) in covered {
                    sqlx::query("INSERT INTO audit_log (at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)")
                        .bind(now)
                        .bind(format!("portal:account:{viewer}"))
                        .bind(format!("read:{}", def.name))
                        .bind(format!("party:{party}"))
                        .bind(format!("scope {scope}"))
                        .execute(&mut *log)
                        .await?;
                }
                log.commit().await?;
            }
            Ok(json)
        }};
    }
    match store {
        Store::Sqlite(pool) => read_in!(pool),
        Store::Postgres(pool) => read_in!(pool),
    }
}
