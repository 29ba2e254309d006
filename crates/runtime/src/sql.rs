//! The SQL capability as engines see it: the statements of the D1 API, already scoped to one
//! app's database. The engine turns `prepare().bind().all()`, `batch()` and `exec()` into
//! [`SqlOp`]s and the answers back into D1's result shapes.

use bytes::Bytes;
use futures::future::BoxFuture;

/// A value bound to a statement or read from a row, as D1 maps them: JavaScript numbers are
/// integers when whole and reals otherwise, booleans are bound as 1 and 0, ArrayBuffers are BLOBs.
#[derive(Clone, Debug, PartialEq)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Bytes),
}

/// One statement with its bound parameters, in order (`?` and `?NNN`).
#[derive(Clone, Debug, PartialEq)]
pub struct SqlStatement {
    pub sql: String,
    pub params: Vec<SqlValue>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SqlOp {
    /// Statements run in one transaction, rolled back as a whole when one fails: `batch()`, and
    /// a single statement's `all()`, `run()`, `first()` and `raw()`.
    Batch(Vec<SqlStatement>),
    /// `exec(sql)`: several statements without parameters, one after the other.
    Exec(String),
}

/// What one statement did: D1's `results` and `meta`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SqlResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<SqlValue>>,
    pub meta: SqlMeta,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SqlMeta {
    pub duration_ms: f64,
    /// Rows the statement inserted, updated or deleted.
    pub changes: u64,
    pub last_row_id: i64,
    pub changed_db: bool,
    /// The database's size after the statement, in bytes.
    pub size_after: u64,
    pub rows_read: u64,
    pub rows_written: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SqlAnswer {
    /// One result per statement of the batch.
    Results(Vec<SqlResult>),
    /// `exec`: how many statements ran, and the rows they read and wrote (for metering).
    Executed { count: u64, duration_ms: f64, rows_read: u64, rows_written: u64 },
}

impl SqlAnswer {
    /// The SQL rows the call read and wrote, as metering counts them.
    pub fn data_ops(&self) -> crate::DataOps {
        let (sql_rows_read, sql_rows_written) = match self {
            SqlAnswer::Results(results) => (
                results.iter().map(|result| result.meta.rows_read).sum(),
                results.iter().map(|result| result.meta.rows_written).sum(),
            ),
            SqlAnswer::Executed { rows_read, rows_written, .. } => (*rows_read, *rows_written),
        };
        crate::DataOps { sql_rows_read, sql_rows_written, ..crate::DataOps::default() }
    }
}

/// Why a call failed, in D1's words (`D1_ERROR: no such table: x: SQLITE_ERROR`). Every SQL
/// failure is the app's to read; a storage failure's details go to the server log only.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SqlError(pub String);

/// An app's database.
pub trait SqlHost: Send + Sync + 'static {
    fn call(&self, op: SqlOp) -> BoxFuture<'static, Result<SqlAnswer, SqlError>>;
}
