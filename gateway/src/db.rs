//! The store: SQLite in the data dir (the embedded default, WAL) or PostgreSQL (`--database-url`),
//! both through sqlx's `Any` driver. One query text per operation runs on both: `$N` placeholders,
//! portable SQL, integers for flags. Migrations are embedded in the binary, one directory per
//! dialect with the same numbering (`migrations/`, `migrations_pg/`).

use anyhow::Context;
use sqlx::any::{AnyPoolOptions, AnyTypeInfo};
use sqlx::{Any, AnyPool, Connection, Database, Decode, Encode, Executor, Type};
use std::path::Path;
use std::time::Duration;

/// The connection pool every module queries through.
pub type Db = AnyPool;

/// Which database `open` connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `berth.db` in the data dir.
    Sqlite,
    /// A PostgreSQL server named by a `postgres://` URL.
    Postgres,
}

/// Opens (creating if needed) and migrates the database: `url` names a PostgreSQL database,
/// `None` is `berth.db` in `data_dir`.
pub async fn open(data_dir: &Path, url: Option<&str>) -> anyhow::Result<Db> {
    sqlx::any::install_default_drivers();
    match url {
        Some(url) => open_postgres(url).await,
        None => open_sqlite(data_dir).await,
    }
}

async fn open_sqlite(data_dir: &Path) -> anyhow::Result<Db> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let path = data_dir.join("berth.db");
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(
                    "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                )
                .await?;
                Ok(())
            })
        })
        .connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .with_context(|| format!("cannot open the database {}", path.display()))?;
    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .context("cannot migrate the database")?;
    Ok(pool)
}

async fn open_postgres(url: &str) -> anyhow::Result<Db> {
    let name = describe_url(url);
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        anyhow::bail!("the database URL {name} is not a postgres:// URL");
    }
    // One connection first: its error (refused, unknown host, wrong password, no such
    // database) is the sentence start-up stops with; the pool itself would retry until its
    // timeout and say only that it timed out.
    let probe = sqlx::AnyConnection::connect(url).await.map_err(|e| {
        anyhow::anyhow!("cannot connect to the database {name}: {}", scrub(&e, url))
    })?;
    let _ = probe.close().await;
    let pool = AnyPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .map_err(|e| {
            anyhow::anyhow!("cannot connect to the database {name}: {}", scrub(&e, url))
        })?;
    sqlx::migrate!("./migrations_pg")
        .run(&pool)
        .await
        .with_context(|| format!("cannot migrate the database {name}"))?;
    Ok(pool)
}

/// The backend a pool talks to.
pub fn backend(db: &Db) -> Backend {
    if db
        .connect_options()
        .database_url
        .scheme()
        .starts_with("postgres")
    {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
}

/// A database URL as start-up errors name it: host, port and database, never user or password.
pub fn describe_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}:{}{}",
            u.scheme(),
            u.host_str().unwrap_or("localhost"),
            u.port().unwrap_or(5432),
            u.path()
        ),
        Err(_) => "(an unparsable URL)".to_string(),
    }
}

/// An error's text with the URL's password cut out, should a driver ever echo it.
fn scrub(e: &sqlx::Error, url: &str) -> String {
    let text = e.to_string();
    match url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_string))
    {
        Some(pw) if !pw.is_empty() => text.replace(&pw, "***"),
        _ => text,
    }
}

/// A JSON column: stored as TEXT on both backends, (de)serialised with serde.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Json<T>(pub T);

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> Type<Any> for Json<T> {
    fn type_info() -> AnyTypeInfo {
        <String as Type<Any>>::type_info()
    }
    fn compatible(ty: &AnyTypeInfo) -> bool {
        <String as Type<Any>>::compatible(ty)
    }
}

impl<T: serde::Serialize> Encode<'_, Any> for Json<T> {
    fn encode_by_ref(
        &self,
        buf: &mut <Any as Database>::ArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        let text = serde_json::to_string(&self.0)?;
        <String as Encode<'_, Any>>::encode(text, buf)
    }
}

impl<'r, T: serde::de::DeserializeOwned> Decode<'r, Any> for Json<T> {
    fn decode(value: <Any as Database>::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <&str as Decode<'r, Any>>::decode(value)?;
        Ok(Json(serde_json::from_str(text)?))
    }
}

/// A flag column: INTEGER 0/1 on both backends (one query text compares it with `= 0`), read
/// as a bool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl From<Flag> for bool {
    fn from(f: Flag) -> bool {
        f.0
    }
}

impl Type<Any> for Flag {
    fn type_info() -> AnyTypeInfo {
        <i64 as Type<Any>>::type_info()
    }
    fn compatible(ty: &AnyTypeInfo) -> bool {
        <i64 as Type<Any>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Any> for Flag {
    fn decode(value: <Any as Database>::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(Flag(<i64 as Decode<'r, Any>>::decode(value)? != 0))
    }
}

impl Encode<'_, Any> for Flag {
    fn encode_by_ref(
        &self,
        buf: &mut <Any as Database>::ArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <i64 as Encode<'_, Any>>::encode(i64::from(self.0), buf)
    }
}

/// The id of this berth instance, created once per data dir; containers carry it as the
/// `berth.instance` label so reconciliation touches only its own.
pub async fn instance_id(db: &Db) -> anyhow::Result<String> {
    let fresh = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO meta(key, value) VALUES ('instance_id', $1) ON CONFLICT (key) DO NOTHING",
    )
    .bind(&fresh)
    .execute(db)
    .await?;
    let (id,): (String,) = sqlx::query_as("SELECT value FROM meta WHERE key = 'instance_id'")
        .fetch_one(db)
        .await?;
    Ok(id)
}

/// Now as an RFC 3339 UTC string with millisecond precision.
pub fn now() -> String {
    let t = time::OffsetDateTime::now_utc();
    let t = t
        .replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// An RFC 3339 time `secs` from now.
pub fn now_plus(secs: i64) -> String {
    format_time(time::OffsetDateTime::now_utc() + time::Duration::seconds(secs))
}

pub fn format_time(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub fn parse_time(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    /// Tables and their columns as a migration directory defines them (CREATE TABLE and
    /// ALTER TABLE … ADD COLUMN), in order.
    fn schema(dir: &str) -> (Vec<String>, BTreeMap<String, BTreeSet<String>>) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let mut tables: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for f in &files {
            let text = std::fs::read_to_string(dir.join(f)).unwrap();
            let text: String = text
                .lines()
                .map(|l| l.split("--").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            for stmt in text.split(';') {
                let words: Vec<&str> = stmt.split_whitespace().collect();
                match words.as_slice() {
                    ["CREATE", "TABLE", name, ..] => {
                        let body = &stmt[stmt.find('(').unwrap() + 1..stmt.rfind(')').unwrap()];
                        let mut depth = 0;
                        let mut part = String::new();
                        let mut cols = BTreeSet::new();
                        for c in body.chars().chain([',']) {
                            match c {
                                '(' => depth += 1,
                                ')' => depth -= 1,
                                ',' if depth == 0 => {
                                    let first = part.split_whitespace().next().unwrap_or("");
                                    if !["PRIMARY", "UNIQUE", "FOREIGN", "CHECK", ""]
                                        .contains(&first)
                                    {
                                        cols.insert(first.trim_matches('"').to_string());
                                    }
                                    part.clear();
                                    continue;
                                }
                                _ => {}
                            }
                            part.push(c);
                        }
                        tables.insert(name.to_string(), cols);
                    }
                    ["ALTER", "TABLE", name, "ADD", "COLUMN", col, ..] => {
                        tables
                            .get_mut(*name)
                            .unwrap()
                            .insert(col.trim_matches('"').to_string());
                    }
                    _ => {}
                }
            }
        }
        (files, tables)
    }

    #[test]
    fn both_dialects_define_the_same_migrations_tables_and_columns() {
        let (lite_files, lite) = schema("migrations");
        let (pg_files, pg) = schema("migrations_pg");
        assert_eq!(lite_files, pg_files, "the same numbering and names");
        assert_eq!(lite, pg);
        assert!(lite["uploads"].contains("offset"), "{lite:?}");
        assert!(lite["sessions"].contains("gpu_alloc"), "{lite:?}");
    }

    /// A data dir migrated by the SQLite pool berth used before the `Any` driver (the same
    /// migrations, run through `SqlitePool`) opens, keeps its rows and instance id.
    #[tokio::test]
    async fn a_data_dir_of_the_sqlite_only_store_keeps_working() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let old = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        sqlx::migrate!("./migrations").run(&old).await.unwrap();
        sqlx::query("INSERT INTO meta(key, value) VALUES ('instance_id', 'old-instance')")
            .execute(&old)
            .await
            .unwrap();
        old.close().await;
        let db = super::open(dir.path(), None).await.unwrap();
        assert_eq!(super::instance_id(&db).await.unwrap(), "old-instance");
        assert_eq!(super::backend(&db), super::Backend::Sqlite);
        // The pragmas `SqliteConnectOptions` used to set hold on every pooled connection.
        for _ in 0..3 {
            let mut conn = db.acquire().await.unwrap();
            let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(mode, "wal");
            let (fk,): (i64,) = sqlx::query_as("PRAGMA foreign_keys")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(fk, 1);
            let (busy,): (i64,) = sqlx::query_as("PRAGMA busy_timeout")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(busy, 10_000);
        }
    }

    #[test]
    fn a_database_url_is_named_without_its_password() {
        assert_eq!(
            super::describe_url("postgres://berth:s3cret@db.example:6543/berth?sslmode=disable"),
            "postgres://db.example:6543/berth"
        );
        assert_eq!(
            super::describe_url("postgres://db/berth"),
            "postgres://db:5432/berth"
        );
        assert_eq!(super::describe_url("not a url"), "(an unparsable URL)");
    }

    #[tokio::test]
    async fn a_wrong_or_unreachable_database_url_is_a_sentence_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let err = super::open(dir.path(), Some("mysql://u:pw@127.0.0.1/x"))
            .await
            .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "the database URL mysql://127.0.0.1:5432/x is not a postgres:// URL"
        );
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let err = super::open(
            dir.path(),
            Some("postgres://berth:s3cret@127.0.0.1:1/berth"),
        )
        .await
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.starts_with("cannot connect to the database postgres://127.0.0.1:1/berth: "),
            "{text}"
        );
        assert!(!text.contains("s3cret"), "{text}");
    }
}
