//! The gateway's integration tests: one binary, each test driving its own real `berth serve`
//! process (see [`common::TestApp`]) against the local Docker engine and `berth/base`.

mod accounts;
mod apps;
mod auth;
mod bounds;
mod cli;
mod common;
mod events;
mod health;
mod isolation;
mod jupyter;
mod limits;
mod nodes;
mod reconcile;
mod revocation;
mod scheduler;
mod sessions;
mod terminal;
mod tunnel;
mod vfolders;
mod vfolders_attack;
