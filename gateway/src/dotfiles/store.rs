//! The `dotfiles` table: one row per (level, owner, path). A level's owner is `""` for the
//! domain, a project id, or a user id.

use crate::db::{self, Db};
use api::dotfiles::{Dotfile, Level, PutDotfile, MAX_PER_LEVEL};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub level: String,
    pub path: String,
    pub content: String,
    pub mode: i64,
    pub updated_at: String,
}

impl Row {
    pub fn level(&self) -> Option<Level> {
        Level::parse(&self.level)
    }
    pub fn mode_bits(&self) -> u32 {
        (self.mode as u32) & 0o777
    }
    pub fn wire(self) -> Dotfile {
        Dotfile {
            mode: api::dotfiles::format_mode(self.mode_bits()),
            path: self.path,
            content: self.content,
            updated_at: self.updated_at,
        }
    }
}

/// The owner id of the domain's level.
pub const DOMAIN: &str = "";

/// Orders rows by path bytes (the same on SQLite and PostgreSQL, whatever their collation).
fn by_path(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort_by(|a, b| a.path.cmp(&b.path));
    rows
}

/// The dotfiles of one level, ordered by path.
pub async fn list(db: &Db, level: Level, owner: &str) -> sqlx::Result<Vec<Row>> {
    let rows = sqlx::query_as(
        "SELECT level, path, content, mode, updated_at FROM dotfiles WHERE level = $1 AND owner_id = $2",
    )
    .bind(level.as_str())
    .bind(owner)
    .fetch_all(db)
    .await?;
    Ok(by_path(rows))
}

/// What a `put` did.
#[derive(Debug)]
pub enum Put {
    Created(Row),
    Replaced(Row),
    /// The level keeps [`MAX_PER_LEVEL`] dotfiles already.
    Full,
    /// A dotfile of this level is a file where this one needs a folder, or the other way
    /// round (`~/.config` and `~/.config/git/config`): the path of the other.
    Clash(String),
}

/// Creates or replaces the dotfile at `req.path` of a level (`req` validated).
pub async fn put(db: &Db, level: Level, owner: &str, req: &PutDotfile) -> sqlx::Result<Put> {
    let now = db::now();
    let mode = i64::from(req.mode_bits());
    let mut tx = db.begin().await?;
    // The level's row, written first, serialises its writers (SQLite's write lock,
    // PostgreSQL's row lock): the count below cannot be passed by racing creations.
    sqlx::query("INSERT INTO dotfile_sets(level, owner_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(level.as_str())
        .bind(owner)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE dotfile_sets SET level = level WHERE level = $1 AND owner_id = $2")
        .bind(level.as_str())
        .bind(owner)
        .execute(&mut *tx)
        .await?;
    let replaced = sqlx::query(
        "UPDATE dotfiles SET content = $1, mode = $2, updated_at = $3
         WHERE level = $4 AND owner_id = $5 AND path = $6",
    )
    .bind(&req.content)
    .bind(mode)
    .bind(&now)
    .bind(level.as_str())
    .bind(owner)
    .bind(&req.path)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        > 0;
    if !replaced {
        let paths: Vec<(String,)> =
            sqlx::query_as("SELECT path FROM dotfiles WHERE level = $1 AND owner_id = $2")
                .bind(level.as_str())
                .bind(owner)
                .fetch_all(&mut *tx)
                .await?;
        if let Some((other,)) = paths.iter().find(|(p,)| clash(p, &req.path)) {
            return Ok(Put::Clash(other.clone()));
        }
        let inserted = sqlx::query(
            "INSERT INTO dotfiles(level, owner_id, path, content, mode, updated_at)
             SELECT $1, $2, $3, $4, $5, $6
             WHERE (SELECT COUNT(*) FROM dotfiles WHERE level = $7 AND owner_id = $8) < $9",
        )
        .bind(level.as_str())
        .bind(owner)
        .bind(&req.path)
        .bind(&req.content)
        .bind(mode)
        .bind(&now)
        .bind(level.as_str())
        .bind(owner)
        .bind(MAX_PER_LEVEL as i64)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(Put::Full);
        }
    }
    tx.commit().await?;
    let row = Row {
        level: level.as_str().into(),
        path: req.path.clone(),
        content: req.content.clone(),
        mode,
        updated_at: now,
    };
    Ok(if replaced {
        Put::Replaced(row)
    } else {
        Put::Created(row)
    })
}

/// Whether one of `a` and `b` is a folder the other needs (`~/.config`, `~/.config/x`).
pub fn clash(a: &str, b: &str) -> bool {
    let under = |p: &str, dir: &str| {
        p.len() > dir.len() && p.starts_with(dir) && p.as_bytes()[dir.len()] == b'/'
    };
    under(a, b) || under(b, a)
}

/// Removes the dotfile at `path` of a level; false when there was none.
pub async fn delete(db: &Db, level: Level, owner: &str, path: &str) -> sqlx::Result<bool> {
    let res = sqlx::query("DELETE FROM dotfiles WHERE level = $1 AND owner_id = $2 AND path = $3")
        .bind(level.as_str())
        .bind(owner)
        .bind(path)
        .execute(db)
        .await?;
    Ok(res.rows_affected() > 0)
}

/// Every dotfile a session of `owner` (in `project`, if any) gets: the domain's, the
/// project's and the owner's, in that order, each level ordered by path.
pub async fn for_session(db: &Db, project: Option<&str>, owner: &str) -> sqlx::Result<Vec<Row>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT level, path, content, mode, updated_at FROM dotfiles
         WHERE (level = 'domain' AND owner_id = $1)
            OR (level = 'project' AND owner_id = $2)
            OR (level = 'user' AND owner_id = $3)",
    )
    .bind(DOMAIN)
    .bind(project.unwrap_or(""))
    .bind(owner)
    .fetch_all(db)
    .await?;
    let mut rows = by_path(rows);
    rows.sort_by_key(|r| r.level());
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_clashes_with_what_needs_it_as_a_folder() {
        assert!(clash("~/.config", "~/.config/git/config"));
        assert!(clash("~/.config/git/config", "~/.config"));
        assert!(!clash("~/.config", "~/.configx"));
        assert!(!clash("~/.config", "~/.config"));
        assert!(!clash("~/.bashrc", "~/.vimrc"));
    }
}
