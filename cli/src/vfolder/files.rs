//! Files inside a folder: ls (every page), mkdir, mv, rm.

use super::resolve::{entry_path, resolve, shown, split_target};
use super::PAGE;
use crate::client::{api_path, segment, Client};
use crate::table::{self, Table};
use crate::{Error, Result};
use api::vfolders::{self as vf, FileList};

/// Every entry of a directory, page by page, in one list.
pub(super) async fn list_files(c: &Client, id: &str, path: &str) -> Result<FileList> {
    let mut offset = 0u64;
    let mut all: Option<FileList> = None;
    loop {
        let q = format!(
            "{}?path={}&offset={offset}&limit={PAGE}",
            api_path(&["vfolders", id, "files"]),
            segment(path)
        );
        let page: FileList = c.get(&q).await?;
        let n = page.entries.len() as u64;
        let total = page.total;
        match &mut all {
            None => all = Some(page),
            Some(a) => {
                a.entries.extend(page.entries);
                a.total = total;
            }
        }
        offset += n;
        if n == 0 || offset >= total {
            break;
        }
    }
    let all = all.unwrap_or(FileList {
        path: path.to_string(),
        entries: Vec::new(),
        total: 0,
        offset: 0,
    });
    Ok(all)
}

/// The table `vfolder ls` prints.
pub fn files_table(list: &FileList) -> Table {
    let mut t = Table::new(&["NAME", "KIND", "SIZE", "MODIFIED"]);
    for e in &list.entries {
        t.row(vec![
            e.name.clone(),
            e.kind.clone(),
            if e.kind == "dir" {
                "-".into()
            } else {
                api::Bytes(e.size).human()
            },
            e.modified.clone(),
        ]);
    }
    t
}

/// `vfolder ls`: every entry of a directory, as a table or JSON.
pub(super) async fn ls(c: &Client, target: &str, path: Option<&str>, json: bool) -> Result<()> {
    let t = split_target(target, path)?;
    let f = resolve(c, &t.folder).await?;
    let list = list_files(c, &f.id, &t.path).await?;
    if json {
        table::print_json(&list);
    } else if list.entries.is_empty() {
        eprintln!("{} is empty.", shown(&f, &t.path));
    } else {
        print!("{}", files_table(&list).render());
    }
    Ok(())
}

/// `vfolder mkdir`.
pub(super) async fn mkdir(c: &Client, target: &str, path: Option<&str>) -> Result<()> {
    let t = split_target(target, path)?;
    if t.path.is_empty() {
        return Err(Error::Usage(
            "Name the directory to make, like data/new-dir.".into(),
        ));
    }
    let f = resolve(c, &t.folder).await?;
    let req = vf::MkdirRequest {
        path: t.path.clone(),
    };
    let _: vf::FileEntry = c
        .post(&api_path(&["vfolders", &f.id, "mkdir"]), &req)
        .await?;
    println!("Made directory {}.", shown(&f, &t.path));
    Ok(())
}

/// `vfolder mv`.
pub(super) async fn mv(c: &Client, arg: &str, from: &str, to: &str) -> Result<()> {
    let (from, to) = (entry_path(from)?, entry_path(to)?);
    let f = resolve(c, arg).await?;
    let req = vf::MoveRequest {
        from: from.clone(),
        to: to.clone(),
    };
    let _: vf::FileEntry = c
        .post(&api_path(&["vfolders", &f.id, "move"]), &req)
        .await?;
    println!("Moved {} to {}.", shown(&f, &from), shown(&f, &to));
    Ok(())
}

/// `vfolder rm`: deletes the paths in batches the server accepts.
pub(super) async fn rm(c: &Client, arg: &str, paths: &[String]) -> Result<()> {
    let paths = paths
        .iter()
        .map(|p| entry_path(p))
        .collect::<Result<Vec<_>>>()?;
    let f = resolve(c, arg).await?;
    let mut deleted = 0u64;
    for batch in paths.chunks(vf::MAX_DELETE_PATHS) {
        let req = vf::DeleteFilesRequest {
            paths: batch.to_vec(),
        };
        let done: vf::DeletedFiles = c
            .post(&api_path(&["vfolders", &f.id, "delete-files"]), &req)
            .await?;
        deleted += done.deleted;
    }
    println!(
        "Deleted {deleted} {} from folder {}.",
        if deleted == 1 { "entry" } else { "entries" },
        f.name
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_tables_are_readable() {
        let list = FileList {
            path: String::new(),
            entries: vec![
                vf::FileEntry {
                    name: "sub".into(),
                    path: "sub".into(),
                    kind: "dir".into(),
                    size: 4096,
                    modified: "2025-01-01T00:00:00Z".into(),
                },
                vf::FileEntry {
                    name: "a.bin".into(),
                    path: "a.bin".into(),
                    kind: "file".into(),
                    size: 1536,
                    modified: "2025-01-02T00:00:00Z".into(),
                },
            ],
            total: 2,
            offset: 0,
        };
        let out = files_table(&list).render();
        assert_eq!(
            out,
            "NAME   KIND  SIZE     MODIFIED\nsub    dir   -        2025-01-01T00:00:00Z\na.bin  file  1.5 KiB  2025-01-02T00:00:00Z\n"
        );
    }
}
