//! Pieces shared by pages.

pub mod dialog;
pub mod launcher;
pub mod policy_form;
pub mod status;
pub mod terminal;
