//! Apps' SQL databases on PostgreSQL, for `[data] backend = "postgres"`.

pub mod translate;
