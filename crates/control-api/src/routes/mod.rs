//! The routes, by area: each file holds the handlers of one part of the API, which authenticate
//! with [`crate::Caller`] and leave every decision to the services they call.

pub(crate) mod accounts;
pub(crate) mod apps;
pub(crate) mod auth;
pub(crate) mod data;
pub(crate) mod platform;
pub(crate) mod policy;
pub(crate) mod secrets;
pub(crate) mod usage;
