//! Pieces shared by pages.

pub mod launcher;
pub mod status;
pub mod terminal;
