//! Where `terrarium login` keeps the caller's platform tokens: one per server, in
//! `$XDG_CONFIG_HOME/terrarium/credentials.json` (or `~/.config/...`), mode 0600.

use std::collections::BTreeMap;

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Credentials {
    /// Server base URL → its sign-in.
    servers: BTreeMap<String, Credential>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Credential {
    pub user: String,
    pub access_token: String,
    /// Unix seconds after which the token no longer works.
    pub expires_at: u64,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

impl Credentials {
    pub fn path() -> anyhow::Result<PathBuf> {
        let config_home = match std::env::var_os("XDG_CONFIG_HOME").filter(|dir| !dir.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => match std::env::var_os("HOME").filter(|dir| !dir.is_empty()) {
                Some(home) => PathBuf::from(home).join(".config"),
                None => bail!("neither XDG_CONFIG_HOME nor HOME is set; cannot find where to keep your sign-in"),
            },
        };
        Ok(config_home.join("terrarium").join("credentials.json"))
    }

    /// The user names this machine is signed in as, once each.
    pub fn users(&self) -> Vec<String> {
        let mut users: Vec<String> = self.servers.values().map(|credential| credential.user.clone()).collect();
        users.sort();
        users.dedup();
        users
    }

    pub fn load() -> anyhow::Result<Credentials> {
        let path = Credentials::path()?;
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{} is damaged; delete it and run `terrarium login` again", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Credentials::default()),
            Err(error) => Err(error).with_context(|| format!("failed to read {}", path.display())),
        }
    }

    /// Writes the file with mode 0600 (its folder 0700), replacing it atomically.
    pub fn save(&self) -> anyhow::Result<PathBuf> {
        let path = Credentials::path()?;
        let dir = path.parent().expect("the credentials file has a folder");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
        durable::write_private(&path, serde_json::to_string_pretty(self)?.as_bytes())
            .with_context(|| format!("failed to write {}", path.display()))?;
        Ok(path)
    }

    pub fn set(&mut self, server: &str, credential: Credential) {
        self.servers.insert(server.to_owned(), credential);
    }

    pub fn remove(&mut self, server: &str) -> Option<Credential> {
        self.servers.remove(server)
    }

    /// The token for `server`, or what to do to get one.
    pub fn token_for(&self, server: &str) -> anyhow::Result<String> {
        match self.servers.get(server) {
            Some(credential) if credential.expires_at > unix_now() => Ok(credential.access_token.clone()),
            Some(credential) => bail!(
                "your sign-in as {} at {server} has expired; run `terrarium login --password --server {server}`",
                credential.user
            ),
            None => bail!(
                "you are not signed in to {server}; run `terrarium login --password --server {server}` \
                 (or pass a token with --token / TERRARIUM_TOKEN)"
            ),
        }
    }

    pub fn expires_at(lifetime_secs: u64) -> u64 {
        unix_now().saturating_add(lifetime_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_per_server_and_expiry() {
        let mut credentials = Credentials::default();
        assert!(credentials.token_for("http://a").unwrap_err().to_string().contains("terrarium login"));
        credentials.set(
            "http://a",
            Credential { user: "ana".into(), access_token: "t1".into(), expires_at: Credentials::expires_at(60) },
        );
        credentials.set("http://b", Credential { user: "ana".into(), access_token: "t2".into(), expires_at: 1 });
        assert_eq!(credentials.token_for("http://a").unwrap(), "t1");
        assert!(credentials.token_for("http://b").unwrap_err().to_string().contains("expired"));
        assert!(credentials.remove("http://a").is_some());
        assert!(credentials.token_for("http://a").is_err());
    }
}
