//! One file per page.

pub mod login;
pub mod session;
pub mod sessions;
pub mod shell;
