//! Sharing: invitations (invite, list, accept, decline), members, unshare and leave.

use super::resolve::{by_id_prefix, resolve};
use crate::client::{api_path, Client};
use crate::table::{self, Table};
use crate::{Error, Result};
use api::vfolders::{self as vf, Invitation, Member, Permission, VFolder};

/// `vfolder invite`.
pub(super) async fn invite(
    c: &Client,
    arg: &str,
    user: &str,
    perm: &str,
    json: bool,
) -> Result<()> {
    let perm = Permission::parse_grant(perm).map_err(Error::Usage)?;
    if user.trim().is_empty() {
        return Err(Error::Usage(
            "Name the user to invite by username or id.".into(),
        ));
    }
    let f = resolve(c, arg).await?;
    let req = vf::InviteRequest {
        user: user.trim().to_string(),
        permission: perm.as_str().to_ascii_lowercase(),
    };
    let inv: Invitation = c
        .post(&api_path(&["vfolders", &f.id, "invitations"]), &req)
        .await?;
    if json {
        table::print_json(&inv);
    } else {
        println!(
            "Invited {} to folder {} ({}); it is shared once they accept.",
            inv.invitee,
            f.name,
            inv.permission.describe()
        );
    }
    Ok(())
}

/// The invitations waiting for me.
pub(super) async fn inbox(c: &Client) -> Result<Vec<Invitation>> {
    c.get(&api_path(&["invitations"])).await
}

/// The invitation `arg` names: its id, the folder's name, or the start of its id.
pub fn pick_invitation<'a>(list: &'a [Invitation], arg: &str) -> Result<&'a Invitation> {
    if let Some(i) = list.iter().find(|i| i.id == arg) {
        return Ok(i);
    }
    let named: Vec<&Invitation> = list.iter().filter(|i| i.vfolder_name == arg).collect();
    match named[..] {
        [one] => return Ok(one),
        [] => {}
        _ => {
            let which: Vec<String> = named
                .iter()
                .map(|i| format!("{} (from {})", i.id, i.inviter))
                .collect();
            return Err(Error::Other(format!(
                "{} invitations are to folders named \"{arg}\": {}; give the invitation's id.",
                named.len(),
                which.join(", ")
            )));
        }
    }
    if let Some(i) = by_id_prefix(
        list,
        arg,
        |i| &i.id,
        |n| format!("\"{arg}\" is the start of {n} invitation ids; give more of the id."),
    )? {
        return Ok(i);
    }
    Err(Error::Other(if list.is_empty() {
        "You have no invitations waiting.".to_string()
    } else {
        format!(
            "You have no invitation to a folder named \"{}\"; `berth vfolder invitations` lists yours.",
            arg.escape_default()
        )
    }))
}

/// The table `vfolder invitations` prints.
pub fn invitations_table(list: &[Invitation]) -> Table {
    let mut t = Table::new(&["ID", "FOLDER", "FROM", "PERMISSION", "AGE"]);
    for i in list {
        t.row(vec![
            i.id.chars().take(8).collect(),
            i.vfolder_name.clone(),
            i.inviter.clone(),
            i.permission.as_str().to_string(),
            table::age(&i.created_at),
        ]);
    }
    t
}

/// `vfolder invitations`: those waiting for me.
pub(super) async fn invitations(c: &Client, json: bool) -> Result<()> {
    let list = inbox(c).await?;
    if json {
        table::print_json(&list);
    } else if list.is_empty() {
        eprintln!("No invitations wait for you.");
    } else {
        print!("{}", invitations_table(&list).render());
    }
    Ok(())
}

/// `vfolder accept`.
pub(super) async fn accept(c: &Client, arg: &str, json: bool) -> Result<()> {
    let list = inbox(c).await?;
    let inv = pick_invitation(&list, arg)?;
    let f: VFolder = c
        .post_empty(&api_path(&["invitations", &inv.id, "accept"]))
        .await?;
    if json {
        table::print_json(&f);
    } else {
        println!(
            "Folder {} from {} is now shared with you ({}).",
            f.name,
            inv.inviter,
            f.permission.describe()
        );
    }
    Ok(())
}

/// `vfolder decline`.
pub(super) async fn decline(c: &Client, arg: &str) -> Result<()> {
    let list = inbox(c).await?;
    let inv = pick_invitation(&list, arg)?;
    c.post_empty::<()>(&api_path(&["invitations", &inv.id, "decline"]))
        .await?;
    println!(
        "Declined the invitation to folder {} from {}.",
        inv.vfolder_name, inv.inviter
    );
    Ok(())
}

/// `vfolder members`.
pub(super) async fn members(c: &Client, arg: &str, json: bool) -> Result<()> {
    let f = resolve(c, arg).await?;
    let list: Vec<Member> = c.get(&api_path(&["vfolders", &f.id, "members"])).await?;
    if json {
        table::print_json(&list);
    } else if list.is_empty() {
        eprintln!("Folder {} is not shared with anyone.", f.name);
    } else {
        let mut t = Table::new(&["USER", "PERMISSION"]);
        for m in &list {
            t.row(vec![m.username.clone(), m.permission.as_str().to_string()]);
        }
        print!("{}", t.render());
    }
    Ok(())
}

/// `vfolder unshare`.
pub(super) async fn unshare(c: &Client, arg: &str, user: &str) -> Result<()> {
    let f = resolve(c, arg).await?;
    c.delete::<()>(&api_path(&["vfolders", &f.id, "members", user.trim()]))
        .await?;
    println!(
        "Folder {} is no longer shared with {}.",
        f.name,
        user.trim()
    );
    Ok(())
}

/// `vfolder leave`.
pub(super) async fn leave(c: &Client, arg: &str) -> Result<()> {
    let f = resolve(c, arg).await?;
    c.post_empty::<()>(&api_path(&["vfolders", &f.id, "leave"]))
        .await?;
    println!("You left folder {} of {}.", f.name, f.owner);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invitations_by_id_folder_name_or_id_start() {
        let inv = |id: &str, name: &str, from: &str| Invitation {
            id: id.into(),
            vfolder: "f".into(),
            vfolder_name: name.into(),
            inviter: from.into(),
            invitee: "me".into(),
            permission: Permission::Rw,
            state: "PENDING".into(),
            created_at: "2025-01-01T00:00:00Z".into(),
        };
        let list = vec![
            inv("1111aaaa", "data", "alice"),
            inv("2222bbbb", "data", "bob"),
            inv("3333cccc", "models", "bob"),
        ];
        assert_eq!(pick_invitation(&list, "models").unwrap().id, "3333cccc");
        assert_eq!(pick_invitation(&list, "2222").unwrap().id, "2222bbbb");
        assert_eq!(pick_invitation(&list, "1111aaaa").unwrap().id, "1111aaaa");
        assert!(pick_invitation(&list, "data")
            .unwrap_err()
            .to_string()
            .contains("2 invitations are to folders named \"data\""));
        assert_eq!(
            pick_invitation(&[], "x").unwrap_err().to_string(),
            "You have no invitations waiting."
        );
    }
}
