//! A Vault-shaped HTTP test server. It is NOT HashiCorp Vault: no Vault-compatible server can be
//! installed on this machine (Vault and OpenBao are in neither Debian, npm nor PyPI), so this
//! server follows Vault's documented request and response shapes for the calls Terrarium makes:
//!
//! - `POST /v1/auth/<mount>/login` (AppRole) → `{"auth": {"client_token", "lease_duration", "renewable"}}`
//! - `POST /v1/auth/token/renew-self` → the same `auth` block
//! - `GET /v1/<mount>/data/<path>` (KV v2 read) → `{"data": {"data": {...}, "metadata": {"version"}}, "lease_duration": 0}`
//! - `POST /v1/transit/encrypt|decrypt/<key>`, `POST /v1/transit/keys/<key>/rotate`, `GET /v1/transit/keys/<key>`
//!
//! Tokens are checked on every call (`X-Vault-Token`; 403 with `{"errors": [...]}` otherwise)
//! and every call is counted, so tests can see caching, renewal and sign-in again.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// What the server holds and counts.
#[derive(Default)]
pub struct VaultState {
    /// `<mount>/<path>` → (version, data).
    pub kv: HashMap<String, (u64, serde_json::Map<String, Value>)>,
    /// token → when it expires (`None`: never).
    pub tokens: HashMap<String, Option<Instant>>,
    pub role_id: String,
    pub secret_id: String,
    /// Lease of tokens from AppRole sign-in.
    pub token_lease: Duration,
    /// transit key → latest version.
    pub transit_keys: HashMap<String, u64>,
    /// transit ciphertext → plaintext (base64), as opaque as Vault's.
    pub transit_ciphertexts: HashMap<String, String>,
    /// Calls by kind: `login`, `renew`, `kv_read`, `encrypt`, `decrypt`, `rotate`, `denied`.
    pub calls: HashMap<&'static str, u64>,
}

pub struct VaultShapedServer {
    pub address: SocketAddr,
    pub state: Arc<Mutex<VaultState>>,
}

impl VaultShapedServer {
    /// Starts the server on 127.0.0.1 with one static `root_token` and an AppRole.
    pub fn start(root_token: &str, role_id: &str, secret_id: &str, token_lease: Duration) -> VaultShapedServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the Vault-shaped server");
        let address = listener.local_addr().expect("local address");
        let mut state = VaultState {
            role_id: role_id.to_owned(),
            secret_id: secret_id.to_owned(),
            token_lease,
            ..VaultState::default()
        };
        state.tokens.insert(root_token.to_owned(), None);
        state.transit_keys.insert("terrarium".to_owned(), 1);
        let state = Arc::new(Mutex::new(state));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let _ = serve(stream, &state);
                });
            }
        });
        VaultShapedServer { address, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Writes a KV v2 secret, as `vault kv put` would (a new version each time).
    pub fn put_kv(&self, mount: &str, path: &str, data: Value) {
        let mut state = self.state.lock().unwrap();
        let entry = state.kv.entry(format!("{mount}/{path}")).or_insert((0, serde_json::Map::new()));
        entry.0 += 1;
        entry.1 = data.as_object().cloned().unwrap_or_default();
    }

    pub fn calls(&self, kind: &str) -> u64 {
        self.state.lock().unwrap().calls.get(kind).copied().unwrap_or(0)
    }

    /// Revokes every token (as `vault token revoke` would), so the next call must sign in again.
    pub fn revoke_all_tokens_but(&self, keep: &str) {
        self.state.lock().unwrap().tokens.retain(|token, _| token == keep);
    }
}

struct Request {
    method: String,
    path: String,
    token: Option<String>,
    body: Value,
}

fn serve(stream: TcpStream, state: &Mutex<VaultState>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    loop {
        let Some(request) = read_request(&mut reader)? else {
            return Ok(());
        };
        let (status, body) = handle(&request, state);
        let body = if status == 204 { String::new() } else { body.to_string() };
        write!(
            stream,
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        stream.flush()?;
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut length = 0;
    let mut token = None;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "x-vault-token" => token = Some(value.trim().to_owned()),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok(Some(Request { method, path, token, body }))
}

fn count(state: &mut VaultState, kind: &'static str) {
    *state.calls.entry(kind).or_default() += 1;
}

fn errors(message: &str) -> Value {
    json!({ "errors": [message] })
}

fn handle(request: &Request, state: &Mutex<VaultState>) -> (u16, Value) {
    let mut state = state.lock().unwrap();
    let path = request.path.strip_prefix("/v1/").unwrap_or_default().to_owned();
    if request.method == "POST" && path.starts_with("auth/") && path.ends_with("/login") {
        count(&mut state, "login");
        let good =
            request.body["role_id"] == state.role_id.as_str() && request.body["secret_id"] == state.secret_id.as_str();
        if !good {
            return (400, errors("invalid role or secret ID"));
        }
        return (200, issue_token(&mut state));
    }
    // Every other call needs a valid token.
    let now = Instant::now();
    let valid = request
        .token
        .as_ref()
        .and_then(|token| state.tokens.get(token))
        .is_some_and(|expires| expires.is_none_or(|at| at > now));
    if !valid {
        count(&mut state, "denied");
        return (403, errors("permission denied"));
    }
    if request.method == "POST" && path == "auth/token/renew-self" {
        count(&mut state, "renew");
        let lease = state.token_lease;
        let token = request.token.clone().unwrap_or_default();
        state.tokens.insert(token.clone(), Some(now + lease));
        return (
            200,
            json!({ "auth": { "client_token": token, "lease_duration": lease.as_secs(), "renewable": true } }),
        );
    }
    if let Some(rest) = path.strip_prefix("transit/") {
        return transit(&mut state, &request.method, rest, &request.body);
    }
    if request.method == "GET"
        && let Some((mount, secret_path)) = path.split_once("/data/")
    {
        count(&mut state, "kv_read");
        return match state.kv.get(&format!("{mount}/{secret_path}")) {
            Some((version, data)) => (
                200,
                json!({
                    "request_id": "00000000-0000-0000-0000-000000000000",
                    "lease_id": "",
                    "renewable": false,
                    "lease_duration": 0,
                    "data": { "data": data, "metadata": { "version": version, "created_time": "2026-11-22T00:00:00Z", "deletion_time": "", "destroyed": false } },
                    "wrap_info": null,
                    "warnings": null,
                    "auth": null
                }),
            ),
            None => (404, errors("")),
        };
    }
    (404, errors("unsupported path"))
}

fn issue_token(state: &mut VaultState) -> Value {
    let token = format!("hvs.test{}", state.tokens.len() + 1);
    let lease = state.token_lease;
    state.tokens.insert(token.clone(), Some(Instant::now() + lease));
    json!({ "auth": { "client_token": token, "accessor": "", "policies": ["terrarium"], "lease_duration": lease.as_secs(), "renewable": true } })
}

fn transit(state: &mut VaultState, method: &str, rest: &str, body: &Value) -> (u16, Value) {
    let parts: Vec<&str> = rest.split('/').collect();
    match (method, parts.as_slice()) {
        ("POST", ["encrypt", key]) => {
            count(state, "encrypt");
            let Some(&version) = state.transit_keys.get(*key) else { return (400, errors("encryption key not found")) };
            let Some(plaintext) = body["plaintext"].as_str() else { return (400, errors("missing plaintext")) };
            let ciphertext = format!("vault:v{version}:{}", state.transit_ciphertexts.len() + 1);
            state.transit_ciphertexts.insert(ciphertext.clone(), plaintext.to_owned());
            (200, json!({ "data": { "ciphertext": ciphertext, "key_version": version } }))
        }
        ("POST", ["decrypt", _key]) => {
            count(state, "decrypt");
            match body["ciphertext"].as_str().and_then(|ciphertext| state.transit_ciphertexts.get(ciphertext)) {
                Some(plaintext) => (200, json!({ "data": { "plaintext": plaintext } })),
                None => (400, errors("invalid ciphertext")),
            }
        }
        ("POST", ["keys", key, "rotate"]) => {
            count(state, "rotate");
            *state.transit_keys.entry((*key).to_owned()).or_default() += 1;
            (204, Value::Null)
        }
        ("GET", ["keys", key]) => match state.transit_keys.get(*key) {
            Some(version) => {
                (200, json!({ "data": { "name": key, "latest_version": version, "type": "aes256-gcm96" } }))
            }
            None => (404, errors("")),
        },
        _ => (404, errors("unsupported transit path")),
    }
}
