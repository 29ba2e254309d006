//! End-to-end tests: the real `terrarium` binary on an ephemeral loopback port, spoken to over
//! HTTP and through its own CLI.

mod access;
mod admission;
mod ai;
mod audit;
mod budgets;
mod cache;
mod console;
mod cookies;
mod demo;
mod deploy;
mod federation;
mod front_door;
mod functions;
mod gateway;
mod governance;
mod kv;
mod lifecycle;
mod secrets;
mod sql;
mod support;
mod tasks;
mod usage;
mod vectors;
mod visibility;
