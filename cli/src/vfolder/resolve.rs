//! Naming folders, invitations and paths: a folder by id, name (mine, then shared with me,
//! then a project's) or the start of its id; `FOLDER[/PATH]` targets.

use crate::client::{api_path, Client};
use crate::{Error, Result};
use api::vfolders::{self as vf, VFolder};

/// How strongly a name binds: my own folder, one shared with me, a project folder.
pub(super) fn rank(f: &VFolder) -> u8 {
    api::vfolders::name_rank(&f.kind, f.permission)
}

/// The one item whose id starts with `arg` (4 characters at least); `too_many` is the
/// sentence when several do.
pub(super) fn by_id_prefix<'a, T>(
    list: &'a [T],
    arg: &str,
    id: impl Fn(&T) -> &str,
    too_many: impl FnOnce(usize) -> String,
) -> Result<Option<&'a T>> {
    let want = arg.to_ascii_lowercase();
    if want.len() < 4 {
        return Ok(None);
    }
    let found: Vec<&T> = list.iter().filter(|x| id(x).starts_with(&want)).collect();
    match found[..] {
        [one] => Ok(Some(one)),
        [] => Ok(None),
        _ => Err(Error::Other(too_many(found.len()))),
    }
}

/// Picks the folder `arg` names among `list`: an id, else a name (my own first, then one
/// shared with me, then a project folder), else a unique start of an id. `trash` says the
/// list is my trash (for the sentences).
pub fn pick<'a>(list: &'a [VFolder], arg: &str, trash: bool) -> Result<&'a VFolder> {
    if let Some(f) = list.iter().find(|f| f.id == arg) {
        return Ok(f);
    }
    let named: Vec<&VFolder> = list.iter().filter(|f| f.name == arg).collect();
    if let Some(best) = named.iter().map(|f| rank(f)).min() {
        let top: Vec<&VFolder> = named.into_iter().filter(|f| rank(f) == best).collect();
        if let [one] = top[..] {
            return Ok(one);
        }
        let whose = if trash {
            "in your trash"
        } else {
            match best {
                0 => "of yours",
                1 => "shared with you",
                _ => "of your projects",
            }
        };
        let which: Vec<String> = top
            .iter()
            .map(|f| format!("{} (owner {})", f.id, f.owner))
            .collect();
        return Err(Error::Other(format!(
            "{} folders {whose} are named \"{arg}\": {}; name one by its id.",
            top.len(),
            which.join(", ")
        )));
    }
    if let Some(f) = by_id_prefix(
        list,
        arg,
        |f| &f.id,
        |n| format!("\"{arg}\" is the start of {n} folder ids; give more of the id or the name."),
    )? {
        return Ok(f);
    }
    Err(Error::Other(if trash {
        format!(
            "There is no folder named \"{}\" in your trash; `berth vfolder list --trash` shows what is there.",
            arg.escape_default()
        )
    } else {
        format!(
            "There is no folder named \"{}\"; `berth vfolder list` shows the folders you can use.",
            arg.escape_default()
        )
    }))
}

/// `GET /vfolders` (or my trash).
pub(super) async fn folders(c: &Client, trash: bool) -> Result<Vec<VFolder>> {
    let path = if trash {
        format!("{}?trash=true", api_path(&["vfolders"]))
    } else {
        api_path(&["vfolders"])
    };
    c.get(&path).await
}

/// The folder `arg` names (an id is asked for directly; it may be in the trash).
pub(super) async fn resolve_in(c: &Client, arg: &str, trash: bool) -> Result<VFolder> {
    if arg.is_empty() {
        return Err(Error::Usage("Name a folder by its name or id.".into()));
    }
    if uuid::Uuid::parse_str(arg).is_ok() {
        return c
            .get(&api_path(&["vfolders", &arg.to_ascii_lowercase()]))
            .await;
    }
    let list = folders(c, trash).await?;
    pick(&list, arg, trash).cloned()
}

/// The folder `arg` names among the usable ones (not the trash).
pub(super) async fn resolve(c: &Client, arg: &str) -> Result<VFolder> {
    resolve_in(c, arg, false).await
}

/// A folder and a path inside it, from `FOLDER[/PATH]` and an optional separate PATH.
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    pub folder: String,
    /// Normalised; empty for the folder itself.
    pub path: String,
    /// The path was written with a trailing `/`: it names a directory.
    pub dir: bool,
}

/// Splits `FOLDER[/PATH]` (or FOLDER and a separate PATH) and checks the path.
pub fn split_target(target: &str, extra: Option<&str>) -> Result<Target> {
    let (folder, inline) = match target.split_once('/') {
        Some((f, p)) => (f, Some(p)),
        None => (target, None),
    };
    if folder.is_empty() {
        return Err(Error::Usage(format!(
            "\"{}\" does not start with a folder; write FOLDER/PATH, like data/train.csv.",
            target.escape_default()
        )));
    }
    let raw = match (inline, extra) {
        (Some(p), Some(_)) if !p.is_empty() => {
            return Err(Error::Usage(
                "Give the path once: as FOLDER/PATH or as a separate argument, not both.".into(),
            ))
        }
        (_, Some(e)) => e,
        (Some(p), None) => p,
        (None, None) => "",
    };
    let path = vf::normalize_path(raw).map_err(Error::Usage)?;
    Ok(Target {
        folder: folder.to_string(),
        dir: raw.ends_with('/') || path.is_empty(),
        path,
    })
}

/// A path to an entry inside a folder, normalised (not the folder itself).
pub(super) fn entry_path(p: &str) -> Result<String> {
    vf::normalize_entry_path(p).map_err(Error::Usage)
}

/// `folder/path` for sentences.
pub(super) fn shown(f: &VFolder, path: &str) -> String {
    if path.is_empty() {
        f.name.clone()
    } else {
        format!("{}/{path}", f.name)
    }
}

#[cfg(test)]
mod tests {

    use super::super::test_folder as folder;
    use super::*;
    use api::vfolders::Permission;

    #[test]
    fn names_prefer_mine_then_shared_then_project() {
        let list = vec![
            folder("aaaa0001", "data", "project", "vision", Permission::Wd),
            folder("bbbb0002", "data", "user", "alice", Permission::Ro),
            folder("cccc0003", "data", "user", "me", Permission::Owner),
            folder("dddd0004", "shared", "user", "alice", Permission::Rw),
            folder("dddd0005", "shared", "user", "bob", Permission::Ro),
            folder("eeee0006", "proj", "project", "vision", Permission::Wd),
        ];
        assert_eq!(pick(&list, "data", false).unwrap().id, "cccc0003");
        assert_eq!(pick(&list[..2], "data", false).unwrap().id, "bbbb0002");
        assert_eq!(pick(&list[..1], "data", false).unwrap().id, "aaaa0001");
        assert_eq!(pick(&list, "proj", false).unwrap().id, "eeee0006");
        assert_eq!(pick(&list, "bbbb0002", false).unwrap().id, "bbbb0002");
        assert_eq!(pick(&list, "EEEE", false).unwrap().id, "eeee0006");
        let e = pick(&list, "shared", false).unwrap_err().to_string();
        assert!(
            e.starts_with("2 folders shared with you are named \"shared\": dddd0004 (owner alice), dddd0005 (owner bob)"),
            "{e}"
        );
        assert!(pick(&list, "dddd", false)
            .unwrap_err()
            .to_string()
            .contains("start of 2 folder ids"));
        assert_eq!(
            pick(&list, "nope", false).unwrap_err().to_string(),
            "There is no folder named \"nope\"; `berth vfolder list` shows the folders you can use."
        );
        assert!(pick(&list, "nope", true)
            .unwrap_err()
            .to_string()
            .contains("in your trash"));
    }

    #[test]
    fn targets_split_into_folder_and_checked_path() {
        let t = split_target("data/a//b/", None).unwrap();
        assert_eq!(
            t,
            Target {
                folder: "data".into(),
                path: "a/b".into(),
                dir: true
            }
        );
        let t = split_target("data", Some("x.csv")).unwrap();
        assert_eq!((t.path.as_str(), t.dir), ("x.csv", false));
        let t = split_target("data/", Some("x")).unwrap();
        assert_eq!(t.path, "x");
        assert!(split_target("data", None).unwrap().dir);
        let e = split_target("data/../etc", None).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("\"..\" is not allowed"), "{e}");
        assert_eq!(
            split_target("data/a", Some("b")).unwrap_err().exit_code(),
            2
        );
        assert_eq!(split_target("/etc", None).unwrap_err().exit_code(), 2);
    }
}
