//! The store on a PostgreSQL server (`[store] url`), for several analytics
//! workers and API instances serving one city from one database.
//!
//! The store's calls are synchronous and are made from inside tokio tasks
//! (on a current-thread runtime in tests). The synchronous `postgres` crate
//! cannot be used there: it runs its own runtime on the calling thread and
//! panics inside another. So the connection's I/O task runs on a thread of
//! its own with a private current-thread runtime, and the store waits for
//! each statement with `futures::executor::block_on`, which needs no
//! runtime: a `tokio_postgres::Client` only talks to its connection task
//! over channels. A call blocks its caller for a round trip, as a SQLite
//! call blocks it for a disk write.
//!
//! A lost connection (the server restarted) fails the call that saw it;
//! the next call connects again.

use super::sql::{Backend, Db, DbError, Row, Value};
use futures::executor::block_on;
use std::collections::HashMap;
use std::error::Error;
use tokio_postgres::types::{private::BytesMut, to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{Client, Config, NoTls, Statement};

/// A connection to the server, re-made when it is lost, with the
/// statements it has prepared.
pub(crate) struct PgConn {
    config: Config,
    client: Option<Client>,
    statements: HashMap<String, Statement>,
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the config: it holds the password.
        f.debug_struct("PgConn")
            .field("connected", &self.client.is_some())
            .finish()
    }
}

impl PgConn {
    /// Connects to `config` (which has the password, if any, already).
    pub(crate) fn connect(config: Config) -> Result<Self, DbError> {
        let mut c = PgConn {
            config,
            client: None,
            statements: HashMap::new(),
        };
        c.client()?;
        Ok(c)
    }

    /// The client, connecting first when there is none or it was lost.
    fn client(&mut self) -> Result<&mut Client, DbError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.statements.clear();
            self.client = Some(open(&self.config)?);
        }
        self.client
            .as_mut()
            .ok_or_else(|| DbError::Value("no connection".into()))
    }

    /// Runs `f` on the connection, outside any transaction; `Err` only
    /// when there is no connection and none can be made.
    pub(crate) fn with<R>(&mut self, f: impl FnOnce(&mut dyn Db) -> R) -> Result<R, DbError> {
        self.client()?;
        let PgConn {
            client, statements, ..
        } = self;
        let client = client.as_mut().ok_or_else(lost)?;
        Ok(f(&mut PgDb {
            client: &*client,
            statements,
        }))
    }

    /// Runs `f` in a transaction, committed when it returns `Ok` and
    /// rolled back when it returns `Err`.
    pub(crate) fn transaction<T>(
        &mut self,
        f: impl FnOnce(&mut dyn Db) -> Result<T, super::StoreError>,
        err: impl Fn(DbError) -> super::StoreError,
    ) -> Result<T, super::StoreError> {
        self.client().map_err(&err)?;
        let PgConn {
            client, statements, ..
        } = self;
        let client = client.as_mut().ok_or_else(|| err(lost()))?;
        let tx = block_on(client.transaction()).map_err(|e| err(e.into()))?;
        let out = f(&mut PgDb {
            client: tx.client(),
            statements,
        })?;
        block_on(tx.commit()).map_err(|e| err(e.into()))?;
        Ok(out)
    }
}

/// What went wrong, for people: the server's own message when it sent
/// one, else the client's error with its causes ("invalid configuration:
/// password missing").
pub(crate) fn reason(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// Whether the server aborted the transaction only to let another go
/// first (a deadlock it broke, a serialization failure): running it again
/// is right.
pub(crate) fn retry(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    })
}

fn lost() -> DbError {
    DbError::Value("the connection to PostgreSQL is gone".into())
}

/// Connects, running the connection's I/O on a thread of its own that ends
/// when the client is dropped or the server goes away.
fn open(config: &Config) -> Result<Client, DbError> {
    let config = config.clone();
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("gridwatch-postgres".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(DbError::Value(format!(
                        "cannot start the PostgreSQL connection's runtime: {e}"
                    ))));
                    return;
                }
            };
            rt.block_on(async move {
                match config.connect(NoTls).await {
                    Ok((client, connection)) => {
                        let _ = tx.send(Ok(client));
                        // Ends with an error when the server goes away; the
                        // client then reports itself closed.
                        let _ = connection.await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.into()));
                    }
                }
            });
        })
        .map_err(|e| DbError::Value(format!("cannot start the PostgreSQL thread: {e}")))?;
    rx.recv()
        .map_err(|_| DbError::Value("the PostgreSQL thread ended before connecting".into()))?
}

/// The store's statements on a client (or a transaction's client).
struct PgDb<'c> {
    client: &'c Client,
    statements: &'c mut HashMap<String, Statement>,
}

impl PgDb<'_> {
    fn prepare(&mut self, sql: &str) -> Result<Statement, DbError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = block_on(self.client.prepare(&placeholders(sql)))?;
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }
}

impl Db for PgDb<'_> {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let stmt = self.prepare(sql)?;
        let p: Vec<&(dyn ToSql + Sync)> = params.iter().map(|v| v as _).collect();
        Ok(block_on(self.client.execute(&stmt, &p))?)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let stmt = self.prepare(sql)?;
        let p: Vec<&(dyn ToSql + Sync)> = params.iter().map(|v| v as _).collect();
        let rows = block_on(self.client.query(&stmt, &p))?;
        rows.iter().map(row).collect()
    }

    fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        Ok(block_on(self.client.batch_execute(sql))?)
    }
}

/// A server row as the store's values.
fn row(r: &tokio_postgres::Row) -> Result<Row, DbError> {
    let mut out = Vec::with_capacity(r.len());
    for (i, col) in r.columns().iter().enumerate() {
        let t = col.type_();
        let v = if *t == Type::INT8 {
            r.try_get::<_, Option<i64>>(i)?.map(Value::Int)
        } else if *t == Type::INT4 {
            r.try_get::<_, Option<i32>>(i)?
                .map(|v| Value::Int(v.into()))
        } else if *t == Type::INT2 {
            r.try_get::<_, Option<i16>>(i)?
                .map(|v| Value::Int(v.into()))
        } else if *t == Type::FLOAT8 {
            r.try_get::<_, Option<f64>>(i)?.map(Value::Real)
        } else if *t == Type::FLOAT4 {
            r.try_get::<_, Option<f32>>(i)?
                .map(|v| Value::Real(v.into()))
        } else if *t == Type::BOOL {
            r.try_get::<_, Option<bool>>(i)?.map(Value::Bool)
        } else if *t == Type::BYTEA {
            r.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Blob)
        } else if *t == Type::VOID {
            None
        } else {
            r.try_get::<_, Option<String>>(i)
                .map_err(|_| {
                    DbError::Value(format!(
                        "column {} is of type {t}, which the store does not read",
                        col.name()
                    ))
                })?
                .map(Value::Text)
        };
        out.push(v.unwrap_or(Value::Null));
    }
    Ok(Row(out))
}

/// The statement with SQLite's placeholders (`?N`, and bare `?` numbered
/// in order) as PostgreSQL's `$N`; string literals and quoted names are
/// left alone.
pub(crate) fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 0u32;
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (Some(_), c) => out.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            (None, '?') => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                let n = match digits.parse::<u32>() {
                    Ok(n) => n,
                    Err(_) => next + 1,
                };
                next = next.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            (None, c) => out.push(c),
        }
    }
    out
}

/// PostgreSQL types parameters by where they appear; the store's values
/// go into whichever type the server asked for when that is lossless (an
/// integer into a `DOUBLE PRECISION` or a `BOOLEAN`, a number written as
/// text into an integer column).
impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        let int = |i: i64, out: &mut BytesMut| -> Result<IsNull, Box<dyn Error + Sync + Send>> {
            match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::FLOAT8 => (i as f64).to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                _ => i.to_string().to_sql(ty, out),
            }
        };
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => int(*i, out),
            Value::Bool(b) => match *ty {
                Type::BOOL => b.to_sql(ty, out),
                _ => int(i64::from(*b), out),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                Type::FLOAT8 => f.to_sql(ty, out),
                _ => f.to_string().to_sql(ty, out),
            },
            Value::Text(s) => match *ty {
                Type::INT8 | Type::INT4 | Type::INT2 => int(s.trim().parse::<i64>()?, out),
                _ => s.as_str().to_sql(ty, out),
            },
            Value::Blob(b) => b.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_become_numbered_outside_quotes() {
        assert_eq!(
            placeholders("SELECT ?1, ?12 FROM t WHERE a = '?' AND \"b?\" = ?2"),
            "SELECT $1, $12 FROM t WHERE a = '?' AND \"b?\" = $2"
        );
        assert_eq!(
            placeholders("id = CAST(? AS BIGINT) AND cell IN (?, ?)"),
            "id = CAST($1 AS BIGINT) AND cell IN ($2, $3)"
        );
    }
}
