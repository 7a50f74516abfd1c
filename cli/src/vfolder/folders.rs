//! Folders themselves: create, list, rename, trash, restore, purge.

use super::resolve::{folders, resolve, resolve_in};
use crate::client::{api_path, Client};
use crate::table::{self, Table};
use crate::{Error, Result};
use api::vfolders::{self as vf, VFolder};

/// `vfolder create`, checked with `api::vfolders` first.
pub(super) async fn create(
    c: &Client,
    name: String,
    project: Option<String>,
    json: bool,
) -> Result<()> {
    let req = vf::CreateVFolder {
        name,
        kind: project.as_ref().map(|_| "project".to_string()),
        project,
    };
    req.validate().map_err(|errs| {
        Error::Usage(
            errs.into_iter()
                .map(|e| e.message)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    let f: VFolder = c.post(&api_path(&["vfolders"]), &req).await?;
    if json {
        table::print_json(&f);
    } else if f.kind == "project" {
        println!(
            "Created folder {} of project {} ({}).",
            f.name, f.owner, f.id
        );
    } else {
        println!("Created folder {} ({}).", f.name, f.id);
    }
    Ok(())
}

/// `used / quota` in short binary units.
pub(super) fn usage(f: &VFolder) -> String {
    let quota = f
        .quota_bytes
        .map(|q| api::Bytes(q).human())
        .unwrap_or_else(|| "unlimited".into());
    let mut out = format!("{} / {quota}", api::Bytes(f.bytes).human());
    if f.state != "READY" {
        out.push_str(&format!(" ({})", f.state.to_ascii_lowercase()));
    }
    out
}

/// The table `vfolder list` prints (with when each went to the trash for `--trash`).
pub fn folders_table(list: &[VFolder], trash: bool) -> Table {
    let mut t = if trash {
        Table::new(&[
            "NAME",
            "TYPE",
            "OWNER",
            "PERMISSION",
            "USAGE",
            "DELETED",
            "ID",
        ])
    } else {
        Table::new(&["NAME", "TYPE", "OWNER", "PERMISSION", "USAGE", "ID"])
    };
    for f in list {
        let mut row = vec![
            f.name.clone(),
            f.kind.clone(),
            f.owner.clone(),
            f.permission.as_str().to_string(),
            usage(f),
        ];
        if trash {
            row.push(match &f.deleted_at {
                Some(t) => format!("{} ago", table::age(t)),
                None => "-".into(),
            });
        }
        row.push(f.id.chars().take(8).collect());
        t.row(row);
    }
    t
}

/// `vfolder list` (or `--trash`).
pub(super) async fn list(c: &Client, trash: bool, json: bool) -> Result<()> {
    let list = folders(c, trash).await?;
    if json {
        table::print_json(&list);
    } else if list.is_empty() {
        eprintln!(
            "{}",
            if trash {
                "Your trash is empty."
            } else {
                "No folders yet; `berth vfolder create NAME` makes one."
            }
        );
    } else {
        print!("{}", folders_table(&list, trash).render());
    }
    Ok(())
}

/// `vfolder rename`.
pub(super) async fn rename(c: &Client, arg: &str, name: &str, json: bool) -> Result<()> {
    vf::validate_name(name).map_err(Error::Usage)?;
    let f = resolve(c, arg).await?;
    let req = vf::UpdateVFolder {
        name: name.to_string(),
    };
    let renamed: VFolder = c.patch(&api_path(&["vfolders", &f.id]), &req).await?;
    if json {
        table::print_json(&renamed);
    } else {
        println!("Renamed folder {} to {name}.", f.name);
    }
    Ok(())
}

/// `vfolder delete`: into the trash.
pub(super) async fn trash(c: &Client, arg: &str, json: bool) -> Result<()> {
    let f = resolve(c, arg).await?;
    let trashed: VFolder = c.delete(&api_path(&["vfolders", &f.id])).await?;
    if json {
        table::print_json(&trashed);
    } else {
        println!(
            "Moved folder {} to the trash; `berth vfolder restore {}` brings it back.",
            f.name, f.name
        );
    }
    Ok(())
}

/// `vfolder restore`: out of the trash.
pub(super) async fn restore(c: &Client, arg: &str, json: bool) -> Result<()> {
    let f = resolve_in(c, arg, true).await?;
    let restored: VFolder = c
        .post_empty(&api_path(&["vfolders", &f.id, "restore"]))
        .await?;
    if json {
        table::print_json(&restored);
    } else {
        println!("Restored folder {} from the trash.", f.name);
    }
    Ok(())
}

/// `vfolder purge`: gone for good.
pub(super) async fn purge(c: &Client, arg: &str) -> Result<()> {
    let f = resolve_in(c, arg, true).await?;
    c.post_empty::<()>(&api_path(&["vfolders", &f.id, "purge"]))
        .await?;
    println!("Deleted folder {} and its files for good.", f.name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::test_folder as folder;
    use api::vfolders::Permission;

    #[test]
    fn folder_tables_are_readable() {
        let mut f = folder("0123456789ab", "data", "user", "me", Permission::Owner);
        let out = folders_table(std::slice::from_ref(&f), false).render();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "NAME  TYPE  OWNER  PERMISSION  USAGE          ID");
        assert_eq!(
            lines[1],
            "data  user  me     OWNER       3 MiB / 1 GiB  01234567"
        );
        f.quota_bytes = None;
        f.state = "CLONING".into();
        assert_eq!(usage(&f), "3 MiB / unlimited (cloning)");
    }
}
