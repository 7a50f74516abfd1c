//! The admin pages (admins and superadmins only): tabs for users, projects (with their
//! dotfiles), policies, the domain's dotfiles, nodes (with the scheduler's queue) and usage, a
//! file per tab.

mod dotfiles;
mod nodes;
mod policies;
mod projects;
mod usage;
mod users;

use crate::AdminTab;
use leptos::prelude::*;

#[component]
pub fn AdminPage(tab: AdminTab) -> impl IntoView {
    view! {
        <div class="admin-page">
            <nav class="tabs" role="tablist">
                {AdminTab::ALL.into_iter().map(|t| view! {
                    <a role="tab" id=format!("tab-{}", t.slug()) href=format!("#/admin/{}", t.slug())
                        class:active=t == tab aria-selected=(t == tab).to_string()>
                        {t.label()}
                    </a>
                }).collect_view()}
            </nav>
            {match tab {
                AdminTab::Users => view! { <users::UsersTab /> }.into_any(),
                AdminTab::Projects => view! { <projects::ProjectsTab /> }.into_any(),
                AdminTab::Policies => view! { <policies::PoliciesTab /> }.into_any(),
                AdminTab::Dotfiles => view! { <dotfiles::DotfilesTab /> }.into_any(),
                AdminTab::Nodes => view! { <nodes::NodesTab /> }.into_any(),
                AdminTab::Usage => view! { <usage::UsageTab /> }.into_any(),
            }}
        </div>
    }
}
