//! `[data.postgres]` in `terrarium.toml`: where apps' data lives when `[data] backend` is
//! `postgres`.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresSection {
    /// The environment variable holding the connection URL (`postgres://user:password@host/db`,
    /// or `postgres:///db?host=/run/postgresql` for a Unix socket): never the URL itself, which
    /// carries a password.
    pub url_env: String,
    /// Connections the pool keeps open at most.
    pub max_connections: u32,
}

impl Default for PostgresSection {
    fn default() -> PostgresSection {
        PostgresSection { url_env: "TERRARIUM_DATA_POSTGRES_URL".to_owned(), max_connections: 16 }
    }
}

impl PostgresSection {
    /// Every problem of the section, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.url_env.is_empty() {
            problems
                .push("data.postgres.url_env is empty; name the environment variable that holds the URL".to_owned());
        }
        if self.max_connections == 0 {
            problems.push("data.postgres.max_connections is 0; give a number of connections".to_owned());
        }
        problems
    }

    /// The connection URL from the environment, or what to set.
    pub fn build(&self) -> Result<String, String> {
        match std::env::var(&self.url_env) {
            Ok(url) if !url.is_empty() => Ok(url),
            _ => Err(format!(
                "[data] backend = \"postgres\" reads the connection URL from ${}, which is not set; \
                 export it (postgres://user:password@host:5432/database)",
                self.url_env
            )),
        }
    }
}
