//! The gateway's integration tests: one binary, each test driving its own real `berth serve`
//! process (see [`common::TestApp`]) against the local Docker engine and `berth/base`.

mod accounts;
mod apps;
mod auth;
mod bounds;
mod cli;
mod common;
mod contract;
mod crash;
mod database;
mod dotfiles;
mod events;
mod health;
mod home;
mod idle;
mod isolation;
mod jupyter;
mod limits;
mod metrics;
mod nodes;
mod reconcile;
mod replicas;
mod revocation;
mod scheduler;
mod sessions;
mod shutdown;
mod ssh;
mod stats;
mod terminal;
mod tunnel;
mod usage;
mod vfolders;
mod vfolders_attack;
mod wsproxy;
