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
use sqlx::{Column, Row, TypeInfo};

use crate::store::{Begin, Store};

/// A view the API serves: its name in the URL, the view, the order of its rows, and the
/// scopes it covers.
struct ViewDef {
    name: &'static str,
    view: &'static str,
    order: &'static str,
    scopes: &'static [&'static str],
}

const VIEWS: &[ViewDef] = &[
    ViewDef {
        name: "liabilities",
        view: "portal_liabilities",
        order: "v.account_id, v.year",
        scopes: &["podatki", "oplaty"],
    },
    ViewDef {
        name: "installments",
        view: "portal_installments",
        order: "v.account_id, v.due_date",
        scopes: &["podatki", "oplaty"],
    },
    ViewDef {
        name: "payments",
        view: "portal_payments",
        order: "v.account_id, v.booking_date",
        scopes: &["podatki", "oplaty"],
    },
    ViewDef {
        name: "assessments",
        view: "portal_assessments",
        order: "v.account_id, v.year, v.issued_on, v.assessment_id",
        scopes: &["podatki", "oplaty"],
    },
    ViewDef {
        name: "tax_components",
        view: "portal_tax_components",
        order: "v.account_id, v.year, v.assessment_id, v.component_id",
        scopes: &["podatki", "oplaty"],
    },
    ViewDef {
        name: "cases",
        view: "portal_cases",
        order: "v.case_id",
        scopes: &["sprawy"],
    },
    ViewDef {
        name: "case_letters",
        view: "portal_case_letters",
        order: "v.case_id, v.letter_date",
        scopes: &["sprawy"],
    },
    ViewDef {
        name: "alcohol_permits",
        view: "portal_alcohol_permits",
        order: "v.permit_id",
        scopes: &["rejestry"],
    },
    ViewDef {
        name: "leases",
        view: "portal_leases",
        order: "v.lease_id",
        scopes: &["rejestry"],
    },
    ViewDef {
        name: "correspondence",
        view: "portal_correspondence",
        order: "v.received_at",
        scopes: &["korespondencja"],
    },
];

#[derive(Clone)]
struct Api {
    store: Store,
    token: Arc<String>,
    /// How reads go while this process applies a register file.
    during_sync: Arc<SyncLane>,
}

/// While this process applies a register file, reads go through a lane of
/// `[portal] connections_during_sync` places, and the lane rests after each read for
/// `[portal] rest_during_sync` times the read's own time, so that a crowd of pages leaves
/// the sync the CPU it needs. They still read the state before the file, and wait for no
/// lock of the sync's.
struct SyncLane {
    places: Arc<tokio::sync::Semaphore>,
    rest: f64,
    /// Rest owed and not yet taken, in microseconds: tokio's timer sleeps whole
    /// milliseconds, and a read takes a fraction of one, so the lane rests a millisecond
    /// whenever it owes one.
    owed_us: std::sync::atomic::AtomicU64,
}

/// A read's place in the [`SyncLane`].
struct Admitted {
    place: tokio::sync::OwnedSemaphorePermit,
    since: std::time::Instant,
}

impl SyncLane {
    /// A place in the lane while a register file is applied; none (no limit) otherwise.
    async fn admit(&self) -> Option<Admitted> {
        if !crate::store::registers::applying() {
            return None;
        }
        let place = self.places.clone().acquire_owned().await.ok()?;
        Some(Admitted {
            place,
            since: std::time::Instant::now(),
        })
    }

    /// Gives the place back, after the rest the read owes.
    fn done(&self, admitted: Option<Admitted>) {
        use std::sync::atomic::Ordering;
        let Some(Admitted { place, since }) = admitted else {
            return;
        };
        let owed = (since.elapsed().as_micros() as f64 * self.rest) as u64;
        if owed == 0 {
            return;
        }
        let total = self.owed_us.fetch_add(owed, Ordering::Relaxed) + owed;
        let ms = total / 1000;
        if ms == 0 {
            return;
        }
        self.owed_us.fetch_sub(ms * 1000, Ordering::Relaxed);
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            drop(place);
        });
    }
}

#[derive(serde::Deserialize)]
struct Viewer {
    viewer: i64,
}

/// The router: `GET /portal/v1/{view}?viewer=<account id>`, bearer token required. Reads
/// run as many at once as `store`'s pool has connections, and through a [`SyncLane`] of
/// `during_sync` places resting `rest_during_sync` while this process applies a register
/// file: on a small machine a crowd of pages would otherwise take the CPU the sync needs.
fn router(store: Store, token: String, during_sync: usize, rest_during_sync: f64) -> Router {
    Router::new()
        .route("/portal/v1/{view}", get(read_view))
        .with_state(Api {
            store,
            token: Arc::new(token),
            during_sync: Arc::new(SyncLane {
                places: Arc::new(tokio::sync::Semaphore::new(during_sync.max(1))),
                rest: rest_during_sync.max(0.0),
                owed_us: Default::default(),
            }),
        })
}

/// Why the read API did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("starting the read API's thread: {0}")]
    Thread(std::io::Error),
    #[error("the read API's listener: {0}")]
    Listener(std::io::Error),
    #[error("opening the read API's connections: {0}")]
    Connect(crate::store::StoreError),
    #[error("the read API's thread ended while starting")]
    Ended,
}

/// The read API, started by [`start`]: where it listens, and a receiver that completes when
/// it has stopped (after `stop`, or if its thread ended).
pub struct Running {
    pub addr: std::net::SocketAddr,
    pub ended: tokio::sync::oneshot::Receiver<()>,
}

/// Serves [`router`] on `listener` from a thread and a runtime of its own, with a pool of
/// `connections` to `database_url` opened there, until `stop` turns true.
///
/// The daemon runs on one async thread ([`crate::daemon::runtime`]); on it, every page's
/// request queued behind the daemon's work and the daemon's behind the pages. On a thread
/// of their own, with 32 portal sessions on PostgreSQL at 65,000 inhabitants, the API served
/// 1,200 pages/s against 1,040–1,150 (docs/benchmarks.md).
pub async fn start(
    listener: std::net::TcpListener,
    database_url: String,
    connections: u32,
    token: String,
    during_sync: usize,
    rest_during_sync: f64,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Running, StartError> {
    let addr = listener.local_addr().map_err(StartError::Listener)?;
    listener
        .set_nonblocking(true)
        .map_err(StartError::Listener)?;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<(), StartError>>();
    let (ended_tx, ended) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("portal-api".into())
        .spawn(move || {
            // Dropped when the thread ends, however it ends: `ended` then completes.
            let _ended = ended_tx;
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready_tx.send(Err(StartError::Thread(e)));
                    return;
                }
            };
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(e) => {
                        let _ = ready_tx.send(Err(StartError::Listener(e)));
                        return;
                    }
                };
                // No ping before each read, and generic plans: see `connect_for_reads`.
                let readers =
                    match Store::connect_for_reads(&database_url, connections.max(1)).await {
                        Ok(store) => store,
                        Err(e) => {
                            let _ = ready_tx.send(Err(StartError::Connect(e)));
                            return;
                        }
                    };
                let _ = ready_tx.send(Ok(()));
                let served = axum::serve(
                    listener,
                    router(readers.clone(), token, during_sync, rest_during_sync),
                )
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "the portal read API stopped");
                }
                readers.close().await;
            });
        })
        .map_err(StartError::Thread)?;
    ready_rx.await.map_err(|_| StartError::Ended)??;
    Ok(Running { addr, ended })
}

/// One row as JSON: each column by its type as the database reports it (NULL included), or,
/// where that names no type it knows or its decode fails, as the first type that decodes. A
/// failed decode builds an error with its message, so trying every type on every column
/// cost a page's rows dozens of them.
macro_rules! row_json {
    ($row:expr) => {{
        let mut object = Map::new();
        for (i, column) in $row.columns().iter().enumerate() {
            if column.name() == COVERED {
                continue;
            }
            let or_null = |v: Option<Value>| v.unwrap_or(Value::Null);
            let value = match column.type_info().name() {
                "INT8" | "INTEGER" => $row
                    .try_get::<Option<i64>, _>(i)
                    .ok()
                    .map(|v| or_null(v.map(Value::from))),
                "INT4" => $row
                    .try_get::<Option<i32>, _>(i)
                    .ok()
                    .map(|v| or_null(v.map(Value::from))),
                "TEXT" | "VARCHAR" | "BPCHAR" => $row
                    .try_get::<Option<String>, _>(i)
                    .ok()
                    .map(|v| or_null(v.map(Value::from))),
                _ => None,
            };
            let value = if let Some(value) = value {
                value
            } else if let Ok(v) = $row.try_get::<Option<i64>, _>(i) {
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
    let admitted = api.during_sync.admit().await;
    let mut answer = read(&api.store, def, viewer.viewer).await;
    // The pool hands out its idle connections without a round trip to check them first
    // (sqlx's default, a ping per read: 15% of the pages on PostgreSQL). A connection that
    // died while idle (the database restarted, a network cut) fails its next read, and is
    // closed when it goes back: the read is tried again, on each connection at most once.
    for _ in 0..api.store.max_connections() {
        match &answer {
            Err(e) if connection_lost(e) => {
                tracing::warn!(view = def.name, error = %e, "a portal read found its connection gone; trying again");
                answer = read(&api.store, def, viewer.viewer).await;
            }
            _ => break,
        }
    }
    let response = match answer {
        Ok(rows) => axum::Json(rows).into_response(),
        Err(e) => {
            tracing::error!(view = def.name, viewer = viewer.viewer, error = %e, "portal read failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the read failed (see the daemon's log)",
            )
                .into_response()
        }
    };
    api.during_sync.done(admitted);
    response
}

/// Whether `error` says that the connection is gone, not that the read failed: an I/O error,
/// or PostgreSQL's connection exceptions (class 08) and shutdowns (57P01–57P03).
fn connection_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(e) => e
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

/// Compares tokens in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The column that carries the represented parties a read covers (see [`ViewDef::sql`]).
const COVERED: &str = "covered__";

impl ViewDef {
    /// One statement that reads the viewer's rows of the view and, in the same snapshot,
    /// the represented parties whose data the read covers (as a JSON array of `[scope,
    /// party]`, on every row): a single statement is one snapshot on both databases, so no
    /// transaction is needed and the read takes one round trip. With no rows of the view it
    /// still answers one row, of NULLs but for the covered parties. `json_array` is the
    /// database's JSON aggregate of the pairs.
    fn sql(&self, json_array: &str) -> String {
        let scopes: Vec<String> = self.scopes.iter().map(|s| format!("'{s}'")).collect();
        format!(
            "WITH covered AS (SELECT {json_array} AS {COVERED} FROM \
                 (SELECT DISTINCT scope, party_id FROM portal_party_access \
                  WHERE viewer_account_id = $1 AND access = 'representation' \
                    AND scope IN ({scopes}) ORDER BY scope, party_id) x) \
             SELECT v.*, covered.{COVERED} FROM covered \
             LEFT JOIN (SELECT * FROM {view} WHERE viewer_account_id = $1) v ON 1 = 1 \
             ORDER BY {order}",
            scopes = scopes.join(", "),
            view = self.view,
            order = self.order,
        )
    }
}

/// Each view's statement on SQLite and on PostgreSQL, built once.
static STATEMENTS: std::sync::LazyLock<Vec<(String, String)>> = std::sync::LazyLock::new(|| {
    VIEWS
        .iter()
        .map(|def| {
            (
                def.sql("json_group_array(json_array(x.scope, x.party_id))"),
                def.sql("CAST(json_agg(json_build_array(x.scope, x.party_id)) AS TEXT)"),
            )
        })
        .collect()
});

/// Reads a view for a viewer, and then logs the represented parties whose data the read
/// covered.
///
/// The rows and the parties come from one statement, which sees one snapshot (on SQLite a
/// WAL reader, which never waits for a sync that is writing; on PostgreSQL plain MVCC). The
/// log is written after it, in a transaction of its own, and committed before the rows are
/// answered: no data leaves without its record. A read of one's own data writes nothing.
async fn read(store: &Store, def: &ViewDef, viewer: i64) -> Result<Vec<Value>, sqlx::Error> {
    let now = Utc::now();
    let index = VIEWS
        .iter()
        .position(|v| v.name == def.name)
        .expect("a served view");
    let (on_sqlite, on_postgres) = &STATEMENTS[index];
    macro_rules! read_in {
        ($pool:expr, $sql:expr) => {{
            let rows = sqlx::query($sql.as_str())
                .bind(viewer)
                .fetch_all($pool)
                .await?;
            let covered: Option<String> = match rows.first() {
                Some(row) => row.try_get(COVERED)?,
                None => None,
            };
            let json: Vec<Value> = rows
                .iter()
                .filter(|r| {
                    r.try_get::<Option<i64>, _>("viewer_account_id")
                        .ok()
                        .flatten()
                        .is_some()
                })
                .map(|r| row_json!(r))
                .collect();
            let covered: Vec<(String, String)> = match covered {
                Some(text) => serde_json::from_str(&text)
                    .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                None => Vec::new(),
            };
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
        Store::Sqlite(pool) => read_in!(pool, on_sqlite),
        Store::Postgres(pool) => read_in!(pool, on_postgres),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn lane(rest: f64) -> SyncLane {
        SyncLane {
            places: Arc::new(tokio::sync::Semaphore::new(1)),
            rest,
            owed_us: Default::default(),
        }
    }

    /// A place taken `ago` before now, as a read that took that long.
    async fn read_that_took(lane: &SyncLane, ago: Duration) -> Option<Admitted> {
        let place = lane.places.clone().acquire_owned().await.unwrap();
        Some(Admitted {
            place,
            since: Instant::now() - ago,
        })
    }

    #[tokio::test]
    async fn the_lane_rests_its_share_of_each_read_in_whole_milliseconds() {
        // Without a rest the place is back at once.
        let free = lane(0.0);
        free.done(read_that_took(&free, Duration::from_millis(4)).await);
        assert_eq!(free.places.available_permits(), 1);

        // A 4 ms read at 0.5 owes 2 ms: the place stays taken meanwhile, then comes back.
        let resting = lane(0.5);
        resting.done(read_that_took(&resting, Duration::from_millis(4)).await);
        assert_eq!(resting.places.available_permits(), 0, "resting");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(resting.places.available_permits(), 1, "rested");

        // Reads owing under a millisecond each add up, and the lane rests when they reach one.
        let short = lane(0.25);
        short.done(read_that_took(&short, Duration::from_micros(2_000)).await);
        assert_eq!(
            short.places.available_permits(),
            1,
            "0.5 ms owed: no rest yet"
        );
        short.done(read_that_took(&short, Duration::from_micros(2_100)).await);
        assert_eq!(short.places.available_permits(), 0, "1 ms owed: a rest");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(short.places.available_permits(), 1);
        assert!(short.owed_us.load(std::sync::atomic::Ordering::Relaxed) < 1000);
    }
}
