//! The two backends behind one small interface: SQL text with `?N` placeholders, a handful
//! of value types, rows of values.
//!
//! Every statement the store runs is written once and runs on both SQLite and PostgreSQL:
//! `?N` becomes `$N` for PostgreSQL, integers are 64-bit on both sides, and anything whose
//! type PostgreSQL cannot infer from a column is written `CAST(?N AS BIGINT)`. What differs
//! by nature (migrations, locking, backup, vacuum) is asked of [`Db::kind`] explicitly.
//!
//! The PostgreSQL client lives on a thread of its own: the synchronous `postgres` client
//! drives a private async runtime and must not be called from inside the CLI's runtime, and
//! a thread hop per statement is noise next to a network round trip.

use std::collections::HashMap;
use std::sync::mpsc;

use crate::StoreError;

/// A value bound to a statement or read from a row.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<u16> for Value {
    fn from(v: u16) -> Self {
        Value::Int(v.into())
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// `vals![a, b, c]`: a parameter list.
macro_rules! vals {
    ($($v:expr),* $(,)?) => { vec![$($crate::db::Value::from($v)),*] };
}
pub(crate) use vals;

/// One result row.
#[derive(Debug)]
pub(crate) struct Row(Vec<Value>);

impl Row {
    fn get(&self, i: usize) -> &Value {
        self.0.get(i).unwrap_or(&Value::Null)
    }

    pub fn int(&self, i: usize) -> Result<i64, ColumnError> {
        match self.get(i) {
            Value::Int(v) => Ok(*v),
            other => Err(ColumnError(format!(
                "column {i}: expected an integer, found {other:?}"
            ))),
        }
    }

    pub fn text(&self, i: usize) -> Result<String, ColumnError> {
        match self.get(i) {
            Value::Text(v) => Ok(v.clone()),
            other => Err(ColumnError(format!(
                "column {i}: expected text, found {other:?}"
            ))),
        }
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, ColumnError> {
        match self.get(i) {
            Value::Null => Ok(None),
            _ => self.int(i).map(Some),
        }
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>, ColumnError> {
        match self.get(i) {
            Value::Null => Ok(None),
            _ => self.text(i).map(Some),
        }
    }

    pub fn blob(&self, i: usize) -> Result<Vec<u8>, ColumnError> {
        match self.get(i) {
            Value::Blob(v) => Ok(v.clone()),
            other => Err(ColumnError(format!(
                "column {i}: expected bytes, found {other:?}"
            ))),
        }
    }
}

/// A row did not hold what the query promised (a foreign or damaged database).
#[derive(Debug)]
pub(crate) struct ColumnError(pub String);

/// Which engine a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

enum Backend {
    Sqlite(rusqlite::Connection),
    Postgres(PgConnection),
}

/// An open connection to either backend.
pub(crate) struct Db {
    backend: Backend,
    /// Where the database is, fit for messages (a URL's password removed).
    location: String,
    /// Where the database is, as given (for tools like `pg_dump`).
    connection_string: String,
}

/// Whether `location` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// `location` with any password blanked (`postgres://user:***@host/db`).
pub fn redact(location: &str) -> String {
    if !is_postgres_url(location) {
        return location.to_string();
    }
    let Some(scheme_end) = location.find("://").map(|i| i + 3) else {
        return location.to_string();
    };
    let rest = &location[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &location[..scheme_end],
            &authority[..colon],
            &rest[at..]
        ),
        _ => location.to_string(),
    }
}

/// Creates a new SQLite file readable by its owner only (0600, whatever the umask), before
/// SQLite opens it: a store holds password hashes, sessions and the case's data. SQLite
/// gives its `-wal` and `-shm` files the mode of the database file, so they follow. An
/// existing file keeps its mode (its owner chose it); special names (`:memory:`, `""`,
/// `file:` URIs) are left to SQLite. Any failure here is left to SQLite's open too, which
/// reports it with its own words.
fn create_private_file(location: &str) {
    if location.is_empty() || location == ":memory:" || location.starts_with("file:") {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(location);
    }
}

impl Db {
    /// Opens a SQLite file (created if missing) or connects to a PostgreSQL URL.
    pub fn open(location: &str) -> Result<Db, StoreError> {
        let shown = redact(location);
        let backend = if is_postgres_url(location) {
            Backend::Postgres(PgConnection::connect(location).map_err(|message| {
                StoreError::Postgres {
                    location: shown.clone(),
                    message,
                }
            })?)
        } else {
            let sqlite = |source| StoreError::Sqlite {
                location: shown.clone(),
                source,
            };
            create_private_file(location);
            let conn = rusqlite::Connection::open(location).map_err(sqlite)?;
            conn.busy_timeout(WRITE_WAIT).map_err(sqlite)?;
            // The batch writer uses a few statement shapes per table (see `chunks`).
            conn.set_prepared_statement_cache_capacity(128);
            Backend::Sqlite(conn)
        };
        Ok(Db {
            backend,
            location: shown,
            connection_string: location.to_string(),
        })
    }

    pub fn kind(&self) -> Kind {
        match self.backend {
            Backend::Sqlite(_) => Kind::Sqlite,
            Backend::Postgres(_) => Kind::Postgres,
        }
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    pub fn connection_string(&self) -> &str {
        &self.connection_string
    }

    /// The SQLite connection, for what only SQLite has (pragmas, `VACUUM INTO`).
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.backend {
            Backend::Sqlite(conn) => Some(conn),
            Backend::Postgres(_) => None,
        }
    }

    pub(crate) fn sqlite_error(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            location: self.location.clone(),
            source,
        }
    }

    pub(crate) fn column_error(&self, e: ColumnError) -> StoreError {
        StoreError::Column {
            location: self.location.clone(),
            detail: e.0,
        }
    }

    fn pg_error(&self, message: String) -> StoreError {
        StoreError::Postgres {
            location: self.location.clone(),
            message,
        }
    }

    /// Runs one statement; returns the number of rows it changed.
    pub fn execute(&self, sql: &str, params: Vec<Value>) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql).map_err(|e| self.sqlite_error(e))?;
                stmt.execute(rusqlite::params_from_iter(params.iter()))
                    .map(|n| n as u64)
                    .map_err(|e| self.sqlite_error(e))
            }
            Backend::Postgres(pg) => pg
                .call(Call::Execute(sql.to_string(), params))
                .map(|(n, _)| n)
                .map_err(|m| self.pg_error(m)),
        }
    }

    /// Runs one query and collects its rows.
    pub fn query(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Row>, StoreError> {
        match &self.backend {
            Backend::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql).map_err(|e| self.sqlite_error(e))?;
                let columns = stmt.column_count();
                let mut rows = stmt
                    .query(rusqlite::params_from_iter(params.iter()))
                    .map_err(|e| self.sqlite_error(e))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next().map_err(|e| self.sqlite_error(e))? {
                    let mut values = Vec::with_capacity(columns);
                    for i in 0..columns {
                        let value = row.get_ref(i).map_err(|e| self.sqlite_error(e))?;
                        values.push(from_sqlite(value));
                    }
                    out.push(Row(values));
                }
                Ok(out)
            }
            Backend::Postgres(pg) => pg
                .call(Call::Query(sql.to_string(), params))
                .map(|(_, rows)| rows)
                .map_err(|m| self.pg_error(m)),
        }
    }

    /// Loads rows with PostgreSQL's binary `COPY … FROM STDIN` (`sql` names the table and
    /// columns); `values` holds the rows one after another. PostgreSQL only.
    pub fn copy_in(
        &self,
        sql: &str,
        types: &'static [ColumnType],
        values: Vec<Value>,
    ) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Postgres(pg) => pg
                .call(Call::Copy(sql.to_string(), types, values))
                .map(|(n, _)| n)
                .map_err(|m| self.pg_error(m)),
            Backend::Sqlite(_) => Err(StoreError::Operation {
                location: self.location.clone(),
                detail: "COPY is PostgreSQL's".into(),
            }),
        }
    }

    /// The first row of a query, if any.
    pub fn query_one(&self, sql: &str, params: Vec<Value>) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Runs several statements without parameters (migrations, transaction control).
    pub fn batch(&self, sql: &str) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(conn) => conn.execute_batch(sql).map_err(|e| self.sqlite_error(e)),
            Backend::Postgres(pg) => pg
                .call(Call::Batch(sql.to_string()))
                .map(|_| ())
                .map_err(|m| self.pg_error(m)),
        }
    }

    /// Runs `work` in a transaction that holds the store's write lock from its first
    /// statement, so concurrent writers queue instead of failing half-way: SQLite's
    /// `BEGIN IMMEDIATE` (waiting up to the busy timeout), a transaction-scoped advisory
    /// lock on PostgreSQL. Rolls back if `work` fails.
    pub fn write<T>(
        &self,
        work: impl FnOnce(&Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.begin_write()?;
        match work(self) {
            Ok(value) => match self.batch("COMMIT") {
                Ok(()) => Ok(value),
                Err(e) => {
                    // A failed COMMIT can leave the transaction open; close it.
                    let _ = self.batch("ROLLBACK");
                    Err(e)
                }
            },
            Err(e) => {
                let _ = self.batch("ROLLBACK");
                Err(e)
            }
        }
    }
}

impl Db {
    /// Opens a transaction holding the write lock (see [`Db::write`]).
    pub(crate) fn begin_write(&self) -> Result<(), StoreError> {
        match self.kind() {
            Kind::Sqlite => self.batch("BEGIN IMMEDIATE"),
            Kind::Postgres => {
                // The writer's statements are key lookups and multi-row inserts. Without
                // statistics (a young table, before autovacuum's first ANALYZE) the planner
                // picks hash joins over full scans, and prepared statements keep that plan
                // as the table grows: a batch then costs time proportional to the store.
                // Inside write transactions, only index lookups are planned.
                if let Err(e) = self.batch(&format!(
                    "BEGIN; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL enable_seqscan = off; SET LOCAL lock_timeout = '{}s'",
                    WRITE_WAIT.as_secs()
                )) {
                    let _ = self.batch("ROLLBACK");
                    return Err(e);
                }
                if let Err(e) = self.execute("SELECT pg_advisory_xact_lock(?1)", vals![WRITE_LOCK])
                {
                    let _ = self.batch("ROLLBACK");
                    return Err(e);
                }
                Ok(())
            }
        }
    }
}

/// How long a writer queues behind another before it fails clearly (SQLite's busy
/// timeout, PostgreSQL's `lock_timeout`).
const WRITE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The advisory lock key wachter's writers share on PostgreSQL ("WACH").
const WRITE_LOCK: i64 = 0x5741_4348;

fn from_sqlite(value: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(v) => Value::Int(v),
        // The schema has no REAL column; a float here is foreign data, kept readable.
        ValueRef::Real(v) => Value::Text(v.to_string()),
        ValueRef::Text(v) => Value::Text(String::from_utf8_lossy(v).into_owned()),
        ValueRef::Blob(v) => Value::Blob(v.to_vec()),
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(v) => ValueRef::Integer(*v),
            Value::Text(v) => ValueRef::Text(v.as_bytes()),
            Value::Blob(v) => ValueRef::Blob(v),
        }))
    }
}

impl postgres::types::ToSql for Value {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::{IsNull, Type};
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) => match *ty {
                Type::INT8 => v.to_sql(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::BOOL => (*v != 0).to_sql(ty, out),
                _ => Err(format!("an integer cannot be bound to a {ty} parameter").into()),
            },
            // PostgreSQL's text cannot hold NUL, and a certificate subject is attacker
            // data: NUL becomes U+FFFD here (the record's JSON keeps the escaped original).
            Value::Text(v) if v.contains('\0') => v.replace('\0', "\u{FFFD}").to_sql(ty, out),
            Value::Text(v) => v.to_sql(ty, out),
            Value::Blob(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// `?N` placeholders as PostgreSQL's `$N` (outside string literals).
fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted && chars.peek().is_some_and(char::is_ascii_digit) => out.push('$'),
            _ => out.push(c),
        }
    }
    out
}

enum Call {
    Execute(String, Vec<Value>),
    Query(String, Vec<Value>),
    Batch(String),
    Copy(String, &'static [ColumnType], Vec<Value>),
}

/// A column's type, for PostgreSQL's binary COPY (which must be told).
#[derive(Clone, Copy, Debug)]
pub(crate) enum ColumnType {
    Int,
    Text,
}

type Reply = Result<(u64, Vec<Row>), String>;

/// A PostgreSQL client on its own thread, driven by messages.
struct PgConnection {
    calls: Option<mpsc::Sender<(Call, mpsc::SyncSender<Reply>)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Prepared statements a connection keeps (the batch writer's shapes and the queries).
const PG_STATEMENTS: usize = 512;

impl PgConnection {
    fn connect(url: &str) -> Result<PgConnection, String> {
        let mut config: postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        // A server that vanishes mid-query is noticed within a minute, not hours: sent
        // data unacknowledged for 60 s, or an idle link silent to three probes, closes the
        // connection (and the call fails).
        config
            .tcp_user_timeout(std::time::Duration::from_secs(60))
            .keepalives_idle(std::time::Duration::from_secs(30))
            .keepalives_interval(std::time::Duration::from_secs(10))
            .keepalives_retries(3);
        config.application_name("wachter");
        // Certificates are verified against the system's roots (`SSL_CERT_FILE` adds
        // others); `sslmode=disable` turns TLS off for a local server.
        let tls = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls())
            .map_err(|e| format!("TLS set-up: {e}"))?
            .build();
        let tls = postgres_openssl::MakeTlsConnector::new(tls);
        let (calls, inbox) = mpsc::channel::<(Call, mpsc::SyncSender<Reply>)>();
        let (ready, connected) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("wachter-postgres".into())
            .spawn(move || {
                let mut client = match config.connect(tls) {
                    Ok(client) => {
                        let _ = ready.send(Ok(()));
                        client
                    }
                    Err(e) => {
                        let _ = ready.send(Err(pg_message(&e)));
                        return;
                    }
                };
                let mut statements: HashMap<String, postgres::Statement> = HashMap::new();
                for (call, reply) in inbox {
                    let _ = reply.send(run_call(&mut client, &mut statements, call));
                }
            })
            .map_err(|e| format!("cannot start the database thread: {e}"))?;
        match connected.recv() {
            Ok(Ok(())) => Ok(PgConnection {
                calls: Some(calls),
                thread: Some(thread),
            }),
            Ok(Err(message)) => {
                let _ = thread.join();
                Err(message)
            }
            Err(_) => Err("the database thread stopped".into()),
        }
    }

    fn call(&self, call: Call) -> Reply {
        let (reply, answer) = mpsc::sync_channel(1);
        self.calls
            .as_ref()
            .ok_or("connection closed")?
            .send((call, reply))
            .map_err(|_| "the database thread stopped".to_string())?;
        answer
            .recv()
            .map_err(|_| "the database thread stopped".to_string())?
    }
}

impl Drop for PgConnection {
    fn drop(&mut self) {
        self.calls = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run_call(
    client: &mut postgres::Client,
    statements: &mut HashMap<String, postgres::Statement>,
    call: Call,
) -> Reply {
    let mut prepared = |client: &mut postgres::Client, sql: &str| {
        if let Some(stmt) = statements.get(sql) {
            return Ok(stmt.clone());
        }
        let stmt = client
            .prepare(&dollar_placeholders(sql))
            .map_err(|e| pg_message(&e))?;
        if statements.len() >= PG_STATEMENTS {
            statements.clear();
        }
        statements.insert(sql.to_string(), stmt.clone());
        Ok::<_, String>(stmt)
    };
    match call {
        Call::Copy(sql, types, values) => {
            use postgres::types::Type;
            let types: Vec<Type> = types
                .iter()
                .map(|t| match t {
                    ColumnType::Int => Type::INT8,
                    ColumnType::Text => Type::TEXT,
                })
                .collect();
            let writer = client.copy_in(&sql).map_err(|e| pg_message(&e))?;
            let mut writer = postgres::binary_copy::BinaryCopyInWriter::new(writer, &types);
            for row in values.chunks(types.len()) {
                writer.write(&refs(row)).map_err(|e| pg_message(&e))?;
            }
            writer
                .finish()
                .map(|n| (n, Vec::new()))
                .map_err(|e| pg_message(&e))
        }
        Call::Batch(sql) => client
            .batch_execute(&sql)
            .map(|_| (0, Vec::new()))
            .map_err(|e| pg_message(&e)),
        Call::Execute(sql, params) => {
            let stmt = prepared(client, &sql)?;
            client
                .execute(&stmt, &refs(&params))
                .map(|n| (n, Vec::new()))
                .map_err(|e| pg_message(&e))
        }
        Call::Query(sql, params) => {
            let stmt = prepared(client, &sql)?;
            let rows = client
                .query(&stmt, &refs(&params))
                .map_err(|e| pg_message(&e))?;
            let rows = rows.iter().map(from_pg).collect::<Result<Vec<_>, _>>()?;
            Ok((0, rows))
        }
    }
}

fn refs(params: &[Value]) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
    params
        .iter()
        .map(|p| p as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

fn from_pg(row: &postgres::Row) -> Result<Row, String> {
    use postgres::types::Type;
    let mut values = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        let wrong = |e: postgres::Error| format!("column {}: {}", column.name(), pg_message(&e));
        let value = if *ty == Type::VOID {
            Value::Null
        } else if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i).map_err(wrong)?.into()
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)
                .map_err(wrong)?
                .map(i64::from)
                .into()
        } else if *ty == Type::INT2 {
            row.try_get::<_, Option<i16>>(i)
                .map_err(wrong)?
                .map(i64::from)
                .into()
        } else if *ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)
                .map_err(wrong)?
                .map(i64::from)
                .into()
        } else if *ty == Type::BYTEA {
            row.try_get::<_, Option<Vec<u8>>>(i).map_err(wrong)?.into()
        } else {
            row.try_get::<_, Option<String>>(i).map_err(wrong)?.into()
        };
        values.push(value);
    }
    Ok(Row(values))
}

/// A PostgreSQL error as one line: the server's message and detail when it sent one.
fn pg_message(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut message = format!("{}: {}", db.severity(), db.message());
        if let Some(detail) = db.detail() {
            message.push_str(&format!(" ({detail})"));
        }
        return message;
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Splits `items` into chunks of power-of-two sizes (at most [`CHUNK`]), so multi-row
/// statements come in a few shapes that are prepared once and reused.
pub(crate) fn chunks<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    chunk_sizes(items.len()).map(move |size| {
        let (head, tail) = rest.split_at(size);
        rest = tail;
        head
    })
}

/// The chunk sizes [`chunks`] cuts `n` items into.
pub(crate) fn chunk_sizes(n: usize) -> impl Iterator<Item = usize> {
    let mut rest = n;
    let mut size = CHUNK;
    std::iter::from_fn(move || {
        if rest == 0 {
            return None;
        }
        while size > rest {
            size /= 2;
        }
        rest -= size;
        Some(size)
    })
}

/// A multi-row statement: `template` with `{values}` replaced by [`values_list`] for `rows`
/// rows. Built once per shape and kept, since the writer asks for the same few shapes
/// thousands of times.
pub(crate) fn multi_row(
    template: &'static str,
    rows: usize,
    casts: &'static [Option<&'static str>],
) -> std::sync::Arc<str> {
    type Cache = std::sync::Mutex<HashMap<(&'static str, usize), std::sync::Arc<str>>>;
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let build = || -> std::sync::Arc<str> {
        template
            .replace("{values}", &values_list(rows, casts))
            .into()
    };
    match cache.lock() {
        Ok(mut cache) => cache.entry((template, rows)).or_insert_with(build).clone(),
        // A thread panicked holding the lock: build without the cache.
        Err(_) => build(),
    }
}

/// Rows per multi-row statement: 256 × 8 parameters stays far below both engines' limits
/// (SQLite 32,766, PostgreSQL 65,535).
pub(crate) const CHUNK: usize = 256;

/// `(?1, ?2), (?3, ?4)…` for `rows` rows of `columns` columns; a column with a cast type is
/// written `CAST(?N AS type)` so PostgreSQL knows its type outside an INSERT.
pub(crate) fn values_list(rows: usize, casts: &[Option<&str>]) -> String {
    let mut out = String::with_capacity(rows * casts.len() * 8);
    let mut n = 0;
    for row in 0..rows {
        if row > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for (i, cast) in casts.iter().enumerate() {
            n += 1;
            if i > 0 {
                out.push_str(", ");
            }
            match cast {
                Some(ty) => out.push_str(&format!("CAST(?{n} AS {ty})")),
                None => out.push_str(&format!("?{n}")),
            }
        }
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars_outside_literals() {
        assert_eq!(
            dollar_placeholders("SELECT ?1, '?2', ?12 WHERE a = 'it''s ?3'"),
            "SELECT $1, '?2', $12 WHERE a = 'it''s ?3'"
        );
    }

    #[test]
    fn chunks_come_in_powers_of_two_and_cover_everything() {
        let items: Vec<u32> = (0..1000).collect();
        let sizes: Vec<usize> = chunks(&items).map(<[u32]>::len).collect();
        assert_eq!(sizes, vec![256, 256, 256, 128, 64, 32, 8]);
        assert_eq!(chunks(&items).flatten().count(), 1000);
        assert_eq!(chunks::<u32>(&[]).count(), 0);
    }

    #[test]
    fn values_lists_number_their_placeholders() {
        assert_eq!(
            values_list(2, &[Some("BIGINT"), None]),
            "(CAST(?1 AS BIGINT), ?2), (CAST(?3 AS BIGINT), ?4)"
        );
    }

    /// A new store and its journal files are its owner's alone; an existing file keeps
    /// the mode its owner gave it.
    #[cfg(unix)]
    #[test]
    fn new_sqlite_files_are_private_and_existing_ones_keep_their_mode() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &str| {
            std::fs::metadata(path)
                .unwrap_or_else(|e| panic!("{path}: {e}"))
                .permissions()
                .mode()
                & 0o777
        };
        let remove = |path: &str| {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{path}{suffix}"));
            }
        };
        let dir = std::env::temp_dir();
        let fresh = dir
            .join(format!("wachter-db-{}-private.db", std::process::id()))
            .display()
            .to_string();
        remove(&fresh);
        let store = crate::Store::open(&fresh).unwrap();
        // The write-ahead log and its index exist while the store is open and written.
        store.users().unwrap();
        for file in [
            fresh.clone(),
            format!("{fresh}-wal"),
            format!("{fresh}-shm"),
        ] {
            assert_eq!(mode(&file), 0o600, "{file}");
        }
        drop(store);
        remove(&fresh);

        let shared = dir
            .join(format!("wachter-db-{}-shared.db", std::process::id()))
            .display()
            .to_string();
        remove(&shared);
        std::fs::write(&shared, b"").unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).unwrap();
        let store = crate::Store::open(&shared).unwrap();
        store.users().unwrap();
        assert_eq!(mode(&shared), 0o640);
        drop(store);
        remove(&shared);
    }

    #[test]
    fn passwords_are_never_shown() {
        assert_eq!(
            redact("postgres://wachter:s3cret@db.example:5432/case"),
            "postgres://wachter:***@db.example:5432/case"
        );
        assert_eq!(
            redact("postgres://wachter@db/case"),
            "postgres://wachter@db/case"
        );
        assert_eq!(redact("/tmp/case.db"), "/tmp/case.db");
    }
}
