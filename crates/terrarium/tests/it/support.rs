//! Starts the real `terrarium` binary on an ephemeral 127.0.0.1 port with its own data
//! directory, and runs CLI commands against it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_terrarium");

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/apps").join(name)
}

/// Policy modes of test servers that do not configure `[policy]`: the fixtures call
/// 127.0.0.1, are public and are owned by `user:tester`, which the bundled policies refuse or
/// send for approval. `governance.rs` tests the policies as they ship.
pub const RELAXED_POLICIES: &str =
    "\n[policy.modes]\negress = \"warn\"\negress_hosts = \"dryrun\"\nexposure = \"dryrun\"\nowner = \"warn\"\n";

/// The first admin's password in every test server.
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

pub struct Server {
    child: Child,
    pub url: String,
    pub port: u16,
    /// The admin's platform token, as `terrarium login` stored it.
    pub token: String,
    pub data_dir: PathBuf,
    /// The CLI's config home (`XDG_CONFIG_HOME`): where `terrarium login` keeps tokens.
    pub cli_home: tempfile::TempDir,
    /// Where the server's standard error goes, when the test captures it.
    pub stderr_log: Option<PathBuf>,
    _config_dir: tempfile::TempDir,
}

impl Server {
    /// Starts a server with `config` as its terrarium.toml in a fresh data directory.
    pub fn start(config: &str) -> Server {
        let data_dir = tempfile::tempdir().unwrap().keep();
        Server::start_in(config, &data_dir, &[])
    }

    pub fn start_in(config: &str, data_dir: &Path, extra: &[&str]) -> Server {
        Server::start_with(config, data_dir, extra, &[])
    }

    /// Starts a server; `config` may set its own `[server]` (a fixed port), `envs` adds variables.
    pub fn start_with(config: &str, data_dir: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Server {
        Server::start_full(config, data_dir, extra, envs, false)
    }

    /// Like [`Server::start_with`]; with `capture_stderr`, the server's log goes to [`Server::stderr_log`].
    pub fn start_full(
        config: &str,
        data_dir: &Path,
        extra: &[&str],
        envs: &[(&str, &str)],
        capture_stderr: bool,
    ) -> Server {
        Server::try_start_full(config, data_dir, extra, envs, capture_stderr)
            .unwrap_or_else(|| panic!("the server did not start (its log is above)"))
    }

    /// Like [`Server::start_full`]; `None` when the server exits before serving (a port taken
    /// between choosing it and binding it, say).
    pub fn try_start_full(
        config: &str,
        data_dir: &Path,
        extra: &[&str],
        envs: &[(&str, &str)],
        capture_stderr: bool,
    ) -> Option<Server> {
        let config_dir = tempfile::tempdir().unwrap();
        let config_path = config_dir.path().join("terrarium.toml");
        let mut config = match config.contains("[server]") {
            true => config.to_owned(),
            false => format!("[server]\nlisten = \"127.0.0.1:0\"\nadjustable_clock = true\n{config}"),
        };
        if !config.contains("[policy") {
            config.push_str(RELAXED_POLICIES);
        }
        std::fs::write(&config_path, config).unwrap();
        let stderr_log = capture_stderr.then(|| config_dir.path().join("stderr.log"));
        let mut child = Command::new(BIN)
            .envs(envs.iter().copied())
            .env("TERRARIUM_ADMIN_PASSWORD", ADMIN_PASSWORD)
            // A captured log is for grepping, so it holds everything.
            .args(["serve", "--log", if capture_stderr { "debug" } else { "warn" }, "--config"])
            .arg(&config_path)
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(match &stderr_log {
                Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
                None => Stdio::inherit(),
            })
            .spawn()
            .expect("the terrarium binary starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.wait();
                return None;
            };
            if let Some(rest) = line.strip_prefix("Terrarium is serving on ") {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let port = url.rsplit(':').next().unwrap().parse().unwrap();
        let mut server = Server {
            child,
            url,
            port,
            token: String::new(),
            data_dir: data_dir.to_owned(),
            cli_home: tempfile::tempdir().unwrap(),
            stderr_log,
            _config_dir: config_dir,
        };
        server.wait_ready();
        server.login("admin", ADMIN_PASSWORD);
        server.token = server.stored_token();
        Some(server)
    }

    /// `terrarium login --password` as `user`, the password on standard input, like a script would.
    pub fn login(&self, user: &str, password: &str) -> Output {
        let mut child = Command::new(BIN)
            .args(["login", "--password", "--username", user, "--server", &self.url])
            .env("XDG_CONFIG_HOME", self.cli_home.path())
            .env_remove("TERRARIUM_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        let output = child.wait_with_output().unwrap();
        if user == "admin" {
            assert!(output.status.success(), "admin login failed: {}", stderr(&output));
        }
        output
    }

    /// The token `terrarium login` stored for this server.
    pub fn stored_token(&self) -> String {
        let path = self.cli_home.path().join("terrarium/credentials.json");
        let credentials: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        credentials["servers"][&self.url]["access_token"].as_str().unwrap().to_owned()
    }

    fn wait_ready(&self) {
        wait_for("the server to answer /readyz with 200", || {
            match client().get(format!("{}/readyz", self.url)).send() {
                Ok(response) if response.status() == 200 => Ok(()),
                Ok(response) => Err(format!("status {}", response.status())),
                Err(error) => Err(error.to_string()),
            }
        });
    }

    /// Runs the server's background task `name` now (`POST /api/v1/tasks/{name}/run`) and
    /// returns once it is over; panics when the run failed.
    pub fn run_task(&self, name: &str) {
        let response =
            client().post(format!("{}/api/v1/tasks/{name}/run", self.url)).bearer_auth(&self.token).send().unwrap();
        let status = response.status();
        let body: serde_json::Value = response.json().unwrap();
        assert!(status == 200 && body["error"].is_null(), "task {name} failed ({status}): {body}");
    }

    /// The audit log as the admin reads it (`GET /api/v1/audit?QUERY`), newest first.
    pub fn audit_events(&self, query: &str) -> serde_json::Value {
        client()
            .get(format!("{}/api/v1/audit?{query}", self.url))
            .bearer_auth(&self.token)
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    /// Moves the server's clock forward (the test server's clock is adjustable).
    pub fn advance_clock(&self, by: Duration) {
        let response = client()
            .post(format!("{}/api/v1/clock", self.url))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({ "advance_secs": by.as_secs() }))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "the clock did not move: {}", response.text().unwrap());
    }

    /// Runs `terrarium ARGS --server URL` as whoever last signed in with [`Server::login`].
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs `terrarium ARGS` with `token` (a user's platform token) instead of the stored login.
    pub fn cli_as(&self, token: &str, args: &[&str]) -> Output {
        self.command(args).args(["--token", token]).output().unwrap()
    }

    /// `terrarium ARGS --server URL` with this server's CLI home, ready to run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .args(["--server", &self.url])
            .env("XDG_CONFIG_HOME", self.cli_home.path())
            .env_remove("TERRARIUM_TOKEN");
        command
    }

    /// Adds user `name` with `grants` (`namespace:role`) as the admin, and returns a token of theirs.
    pub fn user_token(&self, name: &str, grants: &[&str]) -> String {
        let added: serde_json::Value =
            serde_json::from_str(&self.cli_ok(&["users", "add", name, "--output", "json"])).unwrap();
        for grant in grants {
            let (namespace, role) = grant.split_once(':').unwrap();
            self.cli_ok(&["roles", "grant", namespace, &format!("user:{name}"), role]);
        }
        let response: serde_json::Value = client()
            .post(format!("{}/auth/login", self.url))
            .json(&serde_json::json!({ "username": name, "password": added["password"] }))
            .send()
            .unwrap()
            .json()
            .unwrap();
        response["access_token"].as_str().expect("a token").to_owned()
    }

    /// Like [`Server::cli`], asserting success, returning stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let output = self.cli(args);
        assert!(output.status.success(), "terrarium {args:?} failed:\n{}\n{}", stdout(&output), stderr(&output));
        stdout(&output)
    }

    pub fn deploy(&self, dir: &Path) -> serde_json::Value {
        let out = self.cli_ok(&["deploy", dir.to_str().unwrap(), "--output", "json"]);
        serde_json::from_str(&out).unwrap_or_else(|_| panic!("deploy prints JSON, got {out}"))
    }

    pub fn app_url(&self, namespace: &str, app: &str, path: &str) -> String {
        format!("{}/apps/{namespace}/{app}{path}", self.url)
    }

    pub fn get(&self, namespace: &str, app: &str, path: &str) -> reqwest::blocking::Response {
        client().get(self.app_url(namespace, app, path)).send().unwrap()
    }

    /// The server's resident memory in KiB, from `/proc`.
    pub fn resident_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|line| line.starts_with("VmRSS:")).expect("VmRSS in /proc/PID/status");
        line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmRSS in KiB")
    }

    /// Stops the server as a crash would (SIGKILL), keeping its data directory.
    pub fn kill(mut self) -> PathBuf {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.data_dir.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Each test runs on both backends: the embedded SQLite and PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $name() {
                super::$name(super::DataBackend::Sqlite);
            })*
        }
        mod postgres {
            $(#[test]
            fn $name() {
                super::$name(super::DataBackend::Postgres);
            })*
        }
    };
}
pub(crate) use on_both_backends;

/// Where apps' data (key-value and SQL) lives in a test: the embedded SQLite, or a fresh database on the
/// PostgreSQL that `scripts/test` starts.
#[derive(Clone, Copy, Debug)]
pub enum DataBackend {
    Sqlite,
    Postgres,
}

impl DataBackend {
    /// The `terrarium.toml` lines and environment that put a server on this backend; for
    /// PostgreSQL, a database of its own is created first.
    pub fn settings(self) -> (String, Vec<(String, String)>) {
        match self {
            DataBackend::Sqlite => (String::new(), Vec::new()),
            DataBackend::Postgres => {
                let folder = std::env::var("TERRARIUM_TEST_POSTGRES").expect(
                    "TERRARIUM_TEST_POSTGRES names the socket folder of the PostgreSQL scripts/test starts; run the suite with scripts/test",
                );
                static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let name =
                    format!("it_{}_{}", std::process::id(), NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
                let created =
                    Command::new("createdb").args(["-h", &folder, "-U", "terrarium", &name]).output().unwrap();
                assert!(created.status.success(), "createdb {name}: {}", String::from_utf8_lossy(&created.stderr));
                let url = format!("postgres://terrarium@localhost/{name}?host={folder}");
                ("[data]\nbackend = \"postgres\"\n".to_owned(), vec![("TERRARIUM_DATA_POSTGRES_URL".to_owned(), url)])
            }
        }
    }
}

impl Server {
    /// Starts a server in `data_dir` whose apps' data is on `backend`; `settings` are what
    /// [`DataBackend::settings`] answered (the same database across restarts).
    pub fn start_on(settings: &(String, Vec<(String, String)>), data_dir: &Path) -> Server {
        let envs: Vec<(&str, &str)> = settings.1.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
        Server::start_with(&settings.0, data_dir, &[], &envs)
    }
}

/// How long [`wait_for`] waits: only a broken build gets there, however busy the machine is.
pub const WAIT_CEILING: Duration = Duration::from_secs(60);

/// Waits for background work to reach a state: calls `check` until it answers `Ok`, and
/// answers that. `Err` says what `check` saw instead, for the failure message. Drive background
/// work with [`Server::run_task`] where you can; poll with this where something outside the
/// server (a webhook receiver, a mail server) must see it.
pub fn wait_for<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let started = Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        match check() {
            Ok(value) => return value,
            Err(seen) if started.elapsed() >= WAIT_CEILING => {
                panic!("waited {WAIT_CEILING:?} for {what}; the last check saw: {seen}")
            }
            Err(_) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(250));
            }
        }
    }
}

/// A check for [`wait_for`] from a condition and what to show when it does not hold.
pub fn holds(condition: bool, seen: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(seen()) }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Copies a fixture app into a temporary folder so a test can edit it.
pub fn copy_fixture(name: &str) -> tempfile::TempDir {
    let target = tempfile::tempdir().unwrap();
    copy_dir(&fixture(name), target.path());
    target
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
