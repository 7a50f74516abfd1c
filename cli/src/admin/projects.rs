//! `berth admin project …`: create, list, and members.

use super::{MemberCmd, ProjectCmd};
use crate::client::{api_path, Client};
use crate::table::{self, Table};
use crate::Result;
use api::projects::{AddMember, CreateProject, Project};

/// Runs `admin project …`.
pub(super) async fn project(c: &Client, cmd: ProjectCmd) -> Result<()> {
    match cmd {
        ProjectCmd::Add { name, description } => {
            let body = CreateProject { name, description };
            let v: Project = c.post(&api_path(&["projects"]), &body).await?;
            println!("Created project {}.", v.name);
        }
        ProjectCmd::List { json } => {
            let list: Vec<Project> = c.get(&api_path(&["projects"])).await?;
            if json {
                table::print_json(&list);
            } else if list.is_empty() {
                eprintln!("No projects.");
            } else {
                print!("{}", projects_table(&list).render());
            }
        }
        ProjectCmd::Member {
            cmd: MemberCmd::Add { project, user },
        } => {
            let _: Project = c
                .post(
                    &api_path(&["projects", &project, "members"]),
                    &AddMember { user: user.clone() },
                )
                .await?;
            println!("Added {user} to project {project}.");
        }
        ProjectCmd::Member {
            cmd: MemberCmd::Rm { project, user },
        } => {
            let _: Project = c
                .delete(&api_path(&["projects", &project, "members", &user]))
                .await?;
            println!("Removed {user} from project {project}.");
        }
    }
    Ok(())
}

/// `project list`: one project a line, its members by username.
pub fn projects_table(list: &[Project]) -> Table {
    let mut t = Table::new(&["NAME", "MEMBERS", "DESCRIPTION", "CREATED", "ID"]);
    for p in list {
        let members: Vec<&str> = p.members.iter().map(|m| m.username.as_str()).collect();
        t.row(vec![
            p.name.clone(),
            table::truncate(&members.join(","), 40),
            table::truncate(&p.description, 40),
            p.created_at.clone(),
            p.id.clone(),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn project_tables_list_members() {
        let list = json!([{"id": "p1", "name": "vision", "description": "Images.",
            "created_at": "2025-01-01T00:00:00Z",
            "members": [{"id": "u1", "username": "alice"}, {"id": "u2", "username": "bob"}]}]);
        let list: Vec<Project> = serde_json::from_value(list).unwrap();
        let out = projects_table(&list).render();
        assert!(out.contains("vision  alice,bob  Images."), "{out}");
    }
}
