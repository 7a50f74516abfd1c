//! One file per page (the admin pages are one folder, a file per tab).

pub mod admin;
pub mod folder;
pub mod folders;
pub mod login;
pub mod session;
pub mod sessions;
pub mod settings;
