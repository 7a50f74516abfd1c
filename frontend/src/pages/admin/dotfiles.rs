//! Admin → Dotfiles: the domain's dotfiles, written into everyone's sessions first (a
//! project's and the user's own at the same path win over them).

use crate::components::dotfiles::DotfilesEditor;
use ::api::dotfiles::Level;
use leptos::prelude::*;

#[component]
pub fn DotfilesTab() -> impl IntoView {
    view! {
        <div class="admin-dotfiles">
            <DotfilesEditor level=Level::Domain base="/api/v1/admin/dotfiles".to_string()
                title="Domain dotfiles"
                intro="Written into every session of every user, first: a project's file and then the user's own at the same path win over these. Paths are ~/… (the session user's home, owned by them) or /etc/… (owned by root)." />
        </div>
    }
}
