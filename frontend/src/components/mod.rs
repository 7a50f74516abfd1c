//! Pieces shared by pages.

pub mod clone;
pub mod dialog;
pub mod dotfiles;
pub mod launcher;
pub mod listed;
pub mod policy_form;
pub mod share;
pub mod ssh;
pub mod stats;
pub mod status;
pub mod terminal;
pub mod upload;
pub mod vfolder;
