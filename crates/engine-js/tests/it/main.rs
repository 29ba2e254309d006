//! Integration tests of the JavaScript engine: real apps as JavaScript source, run through the
//! `runtime::Engine` contract exactly as the gateway runs them.

mod support;

mod basics;
mod conformance;
mod limits;
mod measure;
mod modules;
mod web_apis;
