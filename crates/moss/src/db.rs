//! The installation database: packages known to the store, their layouts, and states.
//!
//! One SQLite file (through sqlx), so that recording a state and its packages is one transaction.
//! Layouts are kept as one blob per package in the stone layout encoding: a state of 50,000 files
//! is then 200 rows to read, not 50,000. Schema changes are numbered migrations applied in order,
//! tracked by `PRAGMA user_version`.

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    Row, SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use stone::{Layout, Package};

/// Migrations, in order; `user_version` holds how many were applied.
/// The schema version this engine writes (the number of migrations).
pub fn schema_version_wanted() -> u32 {
    MIGRATIONS.len() as u32
}

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE package (
    id        TEXT PRIMARY KEY NOT NULL,  -- SHA-256 of the .stone
    name      TEXT NOT NULL,
    meta      TEXT NOT NULL,              -- stone::Package as JSON
    origin    TEXT NOT NULL,              -- repository id, or 'local'
    uri       TEXT                        -- where it was fetched from
);
CREATE INDEX package_name ON package(name);
CREATE TABLE layout (
    package_id TEXT PRIMARY KEY NOT NULL REFERENCES package(id) ON DELETE CASCADE,
    entries    INTEGER NOT NULL,
    data       BLOB NOT NULL              -- stone layout records, back to back
);
CREATE TABLE state (
    id          INTEGER PRIMARY KEY NOT NULL,
    created     INTEGER NOT NULL,
    summary     TEXT NOT NULL,
    description TEXT
);
CREATE TABLE state_selection (
    state_id   INTEGER NOT NULL REFERENCES state(id) ON DELETE CASCADE,
    package_id TEXT NOT NULL REFERENCES package(id),
    explicit   INTEGER NOT NULL,
    reason     TEXT,
    PRIMARY KEY (state_id, package_id)
);
CREATE INDEX state_selection_package ON state_selection(package_id);
"#,
    r#"
CREATE TABLE asset (
    digest TEXT PRIMARY KEY NOT NULL,     -- XXH3-128, 32 hex digits (the store key)
    blake3 TEXT NOT NULL                  -- BLAKE3 of the body, 64 hex digits
);
"#,
    r#"
CREATE TABLE state_trigger (
    state_id INTEGER NOT NULL REFERENCES state(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,             -- order of running
    scope    TEXT NOT NULL,                -- 'transaction' or 'system'
    trigger  TEXT NOT NULL,
    command  TEXT NOT NULL,
    success  INTEGER NOT NULL,
    status   TEXT NOT NULL,
    output   TEXT NOT NULL,
    PRIMARY KEY (state_id, position)
);
"#,
];

/// A database failure, naming what was being done.
#[derive(Debug, thiserror::Error)]
#[error("database error while {action}: {source}")]
pub struct DatabaseError {
    /// What was being done.
    pub action: String,
    /// The error.
    #[source]
    pub source: sqlx::Error,
}

fn context(action: impl Into<String>) -> impl FnOnce(sqlx::Error) -> DatabaseError {
    let action = action.into();
    move |source| DatabaseError { action, source }
}

/// A package the store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPackage {
    /// Package id.
    pub id: String,
    /// Metadata.
    pub meta: Package,
    /// Repository id or `local`.
    pub origin: String,
    /// Where it was fetched from.
    pub uri: Option<String>,
}

/// One package of a state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Selection {
    /// Package id.
    pub package: String,
    /// Whether the user asked for it.
    pub explicit: bool,
    /// Why it is there, when known.
    pub reason: Option<String>,
}

/// A recorded state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct State {
    /// State id.
    pub id: u64,
    /// Creation time, UTC seconds.
    pub created: i64,
    /// What made it (`Install`, `Remove`, ...).
    pub summary: String,
    /// Free text.
    pub description: Option<String>,
    /// Its packages.
    pub selections: Vec<Selection>,
}

/// The database handle.
#[derive(Debug, Clone)]
pub struct Database {
    pool: SqlitePool,
}

impl Database {
    /// Open (creating if needed) and migrate the database at `path`.
    pub async fn open(path: &Path) -> Result<Self, DatabaseError> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(context("parsing the database path"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed state survives power loss; commits are few and small.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(context(format!("opening {}", path.display())))?;
        let database = Self { pool };
        database.migrate().await?;
        Ok(database)
    }

    /// Open an existing database for reading only; nothing is created beside it, so a user
    /// without write access to the installation can read it.
    ///
    /// The caller holds the installation's shared lock, which keeps writers out. Without a `-wal`
    /// file the database is fully checkpointed and is opened immutable: no locking and no `-shm`
    /// file, which a read-only connection to a WAL database would otherwise have to create. A
    /// `-wal` file left by a writer that stopped without checkpointing holds committed changes, so
    /// it is then read through the WAL (SQLite reads the `-shm` file beside it read-only).
    pub async fn open_read_only(path: &Path) -> Result<Self, DatabaseError> {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let through_wal = std::fs::metadata(&wal).is_ok_and(|metadata| metadata.len() > 0);
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .immutable(!through_wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(context(format!("opening {} for reading", path.display())))?;
        Ok(Self { pool })
    }

    /// The schema version of the database and the one this moss migrates to.
    pub async fn schema_version(&self) -> Result<(u32, u32), DatabaseError> {
        let applied: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&self.pool)
            .await
            .map_err(context("reading the schema version"))?;
        Ok((u32::try_from(applied).unwrap_or(0), MIGRATIONS.len() as u32))
    }

    async fn migrate(&self) -> Result<(), DatabaseError> {
        let applied: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&self.pool)
            .await
            .map_err(context("reading the schema version"))?;
        for (number, script) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
            let mut transaction = self
                .pool
                .begin()
                .await
                .map_err(context("starting a migration"))?;
            // The scripts are compile-time constants of this file.
            sqlx::raw_sql(sqlx::AssertSqlSafe(*script))
                .execute(&mut *transaction)
                .await
                .map_err(context(format!("applying migration {}", number + 1)))?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "PRAGMA user_version = {}",
                number + 1
            )))
            .execute(&mut *transaction)
            .await
            .map_err(context("recording the schema version"))?;
            transaction
                .commit()
                .await
                .map_err(context("committing a migration"))?;
        }
        Ok(())
    }

    /// Record packages and their layouts (replacing earlier rows of the same ids), in one transaction.
    pub async fn add_packages(
        &self,
        packages: &[(StoredPackage, Vec<Layout>)],
    ) -> Result<(), DatabaseError> {
        let mut transaction = self
            .pool
            .begin()
            .await
            .map_err(context("recording packages"))?;
        for (package, layouts) in packages {
            let meta = serde_json::to_string(&package.meta).expect("package metadata serialises");
            let data =
                stone::payload::layout::encode_all(layouts).map_err(|reason| DatabaseError {
                    action: format!("encoding the layout of {}", package.meta.name),
                    source: sqlx::Error::Protocol(reason),
                })?;
            sqlx::query(
                "INSERT INTO package (id, name, meta, origin, uri) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, meta = excluded.meta,
                 origin = excluded.origin, uri = excluded.uri",
            )
            .bind(&package.id)
            .bind(&package.meta.name)
            .bind(meta)
            .bind(&package.origin)
            .bind(&package.uri)
            .execute(&mut *transaction)
            .await
            .map_err(context(format!("recording package {}", package.meta.name)))?;
            sqlx::query(
                "INSERT OR REPLACE INTO layout (package_id, entries, data) VALUES (?, ?, ?)",
            )
            .bind(&package.id)
            .bind(layouts.len() as i64)
            .bind(data)
            .execute(&mut *transaction)
            .await
            .map_err(context(format!(
                "recording the layout of {}",
                package.meta.name
            )))?;
        }
        transaction
            .commit()
            .await
            .map_err(context("committing packages"))
    }

    /// Record the BLAKE3 of store files (first record wins: the content of a key never changes).
    pub async fn add_asset_hashes(&self, hashes: &[(u128, [u8; 32])]) -> Result<(), DatabaseError> {
        let mut transaction = self
            .pool
            .begin()
            .await
            .map_err(context("recording asset hashes"))?;
        for (digest, blake3) in hashes {
            sqlx::query("INSERT OR IGNORE INTO asset (digest, blake3) VALUES (?, ?)")
                .bind(format!("{digest:032x}"))
                .bind(crate::store::hex(blake3))
                .execute(&mut *transaction)
                .await
                .map_err(context("recording asset hashes"))?;
        }
        transaction
            .commit()
            .await
            .map_err(context("committing asset hashes"))
    }

    /// The recorded BLAKE3 of every store file, by XXH3-128 digest.
    pub async fn asset_hashes(
        &self,
    ) -> Result<std::collections::HashMap<u128, String>, DatabaseError> {
        let rows = sqlx::query("SELECT digest, blake3 FROM asset")
            .fetch_all(&self.pool)
            .await
            .map_err(context("reading asset hashes"))?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let digest: String = row.get(0);
                u128::from_str_radix(&digest, 16)
                    .ok()
                    .map(|digest| (digest, row.get(1)))
            })
            .collect())
    }

    /// Forget the hashes of store files no longer referenced (their files are gone).
    pub async fn retain_asset_hashes(
        &self,
        referenced: &std::collections::HashSet<u128>,
    ) -> Result<(), DatabaseError> {
        let unreferenced: Vec<u128> = self
            .asset_hashes()
            .await?
            .into_keys()
            .filter(|digest| !referenced.contains(digest))
            .collect();
        let mut transaction = self
            .pool
            .begin()
            .await
            .map_err(context("forgetting asset hashes"))?;
        for digest in unreferenced {
            sqlx::query("DELETE FROM asset WHERE digest = ?")
                .bind(format!("{digest:032x}"))
                .execute(&mut *transaction)
                .await
                .map_err(context("forgetting asset hashes"))?;
        }
        transaction
            .commit()
            .await
            .map_err(context("committing asset hashes"))
    }

    /// Every package the store holds.
    pub async fn packages(&self) -> Result<Vec<StoredPackage>, DatabaseError> {
        let rows = sqlx::query("SELECT id, meta, origin, uri FROM package ORDER BY name, id")
            .fetch_all(&self.pool)
            .await
            .map_err(context("listing packages"))?;
        rows.into_iter().map(stored_package).collect()
    }

    /// Rows of `select (?, ?, ...)` for every id, one query per chunk of ids rather than per id:
    /// a state of 2,000 packages is a handful of queries.
    async fn rows_with_ids(
        &self,
        select: &str,
        ids: &[String],
        action: &str,
    ) -> Result<Vec<sqlx::sqlite::SqliteRow>, DatabaseError> {
        let mut rows = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let placeholders = vec!["?"; chunk.len()].join(",");
            // The statement text holds only placeholders; the ids are bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!("{select} ({placeholders})")));
            for id in chunk {
                query = query.bind(id);
            }
            rows.extend(query.fetch_all(&self.pool).await.map_err(context(action))?);
        }
        Ok(rows)
    }

    /// Packages by id; unknown ids are skipped.
    pub async fn packages_by_id(
        &self,
        ids: &[String],
    ) -> Result<Vec<StoredPackage>, DatabaseError> {
        let mut found = Vec::with_capacity(ids.len());
        for row in self
            .rows_with_ids(
                "SELECT id, meta, origin, uri FROM package WHERE id IN",
                ids,
                "looking up packages",
            )
            .await?
        {
            found.push(stored_package(row)?);
        }
        Ok(found)
    }

    /// The layouts of these packages, in the order given.
    pub async fn layouts(
        &self,
        ids: &[String],
    ) -> Result<Vec<(String, Vec<Layout>)>, DatabaseError> {
        // One query per chunk, not per package: a state of 2,000 packages is a handful of queries.
        let blobs: std::collections::HashMap<String, Vec<u8>> = self
            .rows_with_ids(
                "SELECT package_id, data FROM layout WHERE package_id IN",
                ids,
                "reading layouts",
            )
            .await?
            .into_iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        ids.iter()
            .map(|id| {
                let data = blobs.get(id).ok_or_else(|| DatabaseError {
                    action: format!("reading the layout of {id}"),
                    source: sqlx::Error::RowNotFound,
                })?;
                let decoded =
                    stone::payload::layout::decode_all(data).map_err(|error| DatabaseError {
                        action: format!("decoding the stored layout of {id}"),
                        source: sqlx::Error::Protocol(error.to_string()),
                    })?;
                Ok((id.clone(), decoded))
            })
            .collect()
    }

    /// Record a state with an explicit id and its selections.
    pub async fn add_state(&self, state: &State) -> Result<(), DatabaseError> {
        let mut transaction = self
            .pool
            .begin()
            .await
            .map_err(context("recording a state"))?;
        sqlx::query(
            "INSERT OR REPLACE INTO state (id, created, summary, description) VALUES (?, ?, ?, ?)",
        )
        .bind(state.id as i64)
        .bind(state.created)
        .bind(&state.summary)
        .bind(&state.description)
        .execute(&mut *transaction)
        .await
        .map_err(context(format!("recording state {}", state.id)))?;
        sqlx::query("DELETE FROM state_selection WHERE state_id = ?")
            .bind(state.id as i64)
            .execute(&mut *transaction)
            .await
            .map_err(context(format!("recording state {}", state.id)))?;
        for selection in &state.selections {
            sqlx::query(
                "INSERT INTO state_selection (state_id, package_id, explicit, reason) VALUES (?, ?, ?, ?)",
            )
            .bind(state.id as i64)
            .bind(&selection.package)
            .bind(selection.explicit)
            .bind(&selection.reason)
            .execute(&mut *transaction)
            .await
            .map_err(context(format!("recording the packages of state {}", state.id)))?;
        }
        transaction
            .commit()
            .await
            .map_err(context(format!("committing state {}", state.id)))
    }

    /// One state, if recorded.
    pub async fn state(&self, id: u64) -> Result<Option<State>, DatabaseError> {
        // Every command reads the active state: load that one, not the whole history.
        Ok(self.load_states(Some(id)).await?.pop())
    }

    /// Every state, oldest first.
    pub async fn states(&self) -> Result<Vec<State>, DatabaseError> {
        self.load_states(None).await
    }

    async fn load_states(&self, only: Option<u64>) -> Result<Vec<State>, DatabaseError> {
        let (states_sql, selections_sql) = match only {
            Some(_) => (
                "SELECT id, created, summary, description FROM state WHERE id = ?",
                "SELECT state_id, package_id, explicit, reason FROM state_selection WHERE state_id = ? ORDER BY package_id",
            ),
            None => (
                "SELECT id, created, summary, description FROM state ORDER BY id",
                "SELECT state_id, package_id, explicit, reason FROM state_selection ORDER BY state_id, package_id",
            ),
        };
        let with_id = |sql| match only {
            Some(id) => sqlx::query(sql).bind(id as i64),
            None => sqlx::query(sql),
        };
        let rows = with_id(states_sql)
            .fetch_all(&self.pool)
            .await
            .map_err(context("listing states"))?;
        let selections = with_id(selections_sql)
            .fetch_all(&self.pool)
            .await
            .map_err(context("listing state selections"))?;
        let mut states: Vec<State> = rows
            .into_iter()
            .map(|row| State {
                id: row.get::<i64, _>(0) as u64,
                created: row.get(1),
                summary: row.get(2),
                description: row.get(3),
                selections: Vec::new(),
            })
            .collect();
        for row in selections {
            let id = row.get::<i64, _>(0) as u64;
            if let Ok(position) = states.binary_search_by_key(&id, |state| state.id) {
                states[position].selections.push(Selection {
                    package: row.get(1),
                    explicit: row.get(2),
                    reason: row.get(3),
                });
            }
        }
        Ok(states)
    }

    /// Delete states; their selections go with them.
    pub async fn remove_states(&self, ids: &[u64]) -> Result<(), DatabaseError> {
        let mut transaction = self
            .pool
            .begin()
            .await
            .map_err(context("removing states"))?;
        for id in ids {
            sqlx::query("DELETE FROM state WHERE id = ?")
                .bind(*id as i64)
                .execute(&mut *transaction)
                .await
                .map_err(context(format!("removing state {id}")))?;
        }
        transaction
            .commit()
            .await
            .map_err(context("committing state removal"))
    }

    /// Delete packages that no state selects; returns their ids.
    pub async fn remove_unused_packages(&self) -> Result<Vec<String>, DatabaseError> {
        let mut transaction = self
            .pool
            .begin()
            .await
            .map_err(context("removing unused packages"))?;
        let unused: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM package WHERE id NOT IN (SELECT package_id FROM state_selection)",
        )
        .fetch_all(&mut *transaction)
        .await
        .map_err(context("finding unused packages"))?;
        sqlx::query("DELETE FROM package WHERE id NOT IN (SELECT package_id FROM state_selection)")
            .execute(&mut *transaction)
            .await
            .map_err(context("removing unused packages"))?;
        transaction
            .commit()
            .await
            .map_err(context("committing package removal"))?;
        Ok(unused)
    }

    /// Every regular-file digest of every recorded package's layout.
    pub async fn all_layouts(&self) -> Result<Vec<(String, Vec<Layout>)>, DatabaseError> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT package_id FROM layout")
            .fetch_all(&self.pool)
            .await
            .map_err(context("listing layouts"))?;
        self.layouts(&ids).await
    }

    /// The connection pool, for modules that keep their own tables (trigger runs).
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Close the pool, flushing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn stored_package(row: sqlx::sqlite::SqliteRow) -> Result<StoredPackage, DatabaseError> {
    let id: String = row.get(0);
    let meta: String = row.get(1);
    let meta = serde_json::from_str(&meta).map_err(|error| DatabaseError {
        action: format!("decoding the stored metadata of {id}"),
        source: sqlx::Error::Protocol(error.to_string()),
    })?;
    Ok(StoredPackage {
        id,
        meta,
        origin: row.get(2),
        uri: row.get(3),
    })
}
