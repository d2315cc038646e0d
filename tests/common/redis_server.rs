//! A real `redis-server` for the tests: on a free loopback port (never the system one on
//! 6379), in its own data directory, killed on drop.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::process::{free_port, ChildGuard};

/// How long a Redis server may take to answer PING after it is spawned.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A free loopback port whose Redis Cluster bus port (port + 10000) is free too.
pub fn free_cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// `redis-cli -h 127.0.0.1 -p PORT ARGS...`, its stdout trimmed; `None` when it failed.
pub fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .arg("-h")
        .arg("127.0.0.1")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A `redis-server` child process: `--bind 127.0.0.1 --save "" --appendonly no`, then the
/// caller's extra arguments (which win: Redis takes the last value of an option). Its output
/// goes to `redis.log` in its data directory. SIGKILLed on drop.
pub struct RedisServer {
    /// The port it listens on.
    pub port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    child: ChildGuard,
    _temp: Option<tempfile::TempDir>,
}

impl RedisServer {
    /// A server with no persistence on a free port, in a temporary directory.
    pub fn start() -> RedisServer {
        RedisServer::start_with(free_port(), &[])
    }

    /// A server on `port` with `extra` arguments, in a temporary directory.
    pub fn start_with(port: u16, extra: &[&str]) -> RedisServer {
        let temp = tempfile::tempdir().expect("temporary directory");
        let mut server = RedisServer::start_in(temp.path(), port, extra);
        server._temp = Some(temp);
        server
    }

    /// A server on `port` with `extra` arguments and its data in `dir` (which the caller keeps,
    /// e.g. to start another server over the same append-only file).
    pub fn start_in(dir: &Path, port: u16, extra: &[&str]) -> RedisServer {
        let mut server = RedisServer {
            port,
            dir: dir.to_path_buf(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: ChildGuard(None),
            _temp: None,
        };
        server.spawn();
        server
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// What the server wrote to its log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        self.child.kill();
    }

    /// Kills the server (if running) and starts it again: same port, directory and arguments.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Spawns the process and waits until it answers PING (not LOADING: its data is loaded)
    /// and is the one answering on the port.
    fn spawn(&mut self) {
        assert!(self.child.0.is_none(), "redis-server is already running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("redis.log"))
            .expect("redis log file");
        let child = Command::new("redis-server")
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("redis-server starts (is it installed? scripts/test installs it)");
        let pid = child.id();
        self.child = ChildGuard::new(child);

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let exited = self
                .child
                .0
                .as_mut()
                .and_then(|c| c.try_wait().expect("wait on redis-server"));
            if let Some(status) = exited {
                self.child.0 = None;
                panic!(
                    "redis-server on port {} exited at start-up ({status}):\n{}",
                    self.port,
                    self.log()
                );
            }
            if redis_cli(self.port, &["ping"]).as_deref() == Some("PONG") {
                // Make sure it is our server that answers, not another one on the same port.
                let info = redis_cli(self.port, &["info", "server"]).unwrap_or_default();
                assert!(
                    info.lines()
                        .any(|l| l.trim() == format!("process_id:{pid}")),
                    "another process answers on port {}:\n{info}",
                    self.port
                );
                return;
            }
            if Instant::now() > deadline {
                self.kill();
                panic!(
                    "redis-server on port {} did not answer PING within {START_TIMEOUT:?}:\n{}",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
