//! WordPress, for real: Debian's `wordpress` package (6.1) with its Akismet plugin (5.0.2) and
//! MariaDB, pointed at a hamgate server by the must-use plugin in `deploy/wordpress`. Comments
//! are posted through `wp-comments-post.php` as a visitor posts them; a moderator's "Spam" /
//! "Not spam" goes back through the Akismet plugin. Needs `mariadb-server`, `php-cli`,
//! `php-mysql`, `php-curl` and `wordpress` (scripts/test installs them); when one is missing
//! this test fails rather than skips.

// A test may panic: unwrap and expect are denied outside tests only (Cargo.toml, clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::process::free_port;
use common::{http_request, known_site_settings, TestServer, HAM, SPAM};
use hamgate::comment::Label;
use hamgate::config::{hash_key, SiteSettings};
use hamgate::labels::file::FileLabelLog;
use hamgate::labels::LabelLog;
use serde_json::Value;

const KEY: &str = "wordpress-blog-key";
/// Held by the main thresholds (p 0.26 with the shipped model).
const HELD: &str = "Nice post, I will share it with my friends";
/// Published at first (p 0.11), near the accept threshold.
const NEAR: &str = "Love it, thanks for sharing";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Everything `tests/wordpress/start.sh` started, killed as one process group on drop.
struct WordPress {
    child: Child,
    dir: PathBuf,
    url: String,
    addr: SocketAddr,
}

impl Drop for WordPress {
    fn drop(&mut self) {
        let pgid = self.child.id().to_string();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .status();
        let _ = self.child.wait();
    }
}

fn prerequisites() {
    let missing: Vec<&str> = [
        ("mariadbd", "/usr/sbin/mariadbd"),
        ("php", "/usr/bin/php"),
        ("wordpress", "/usr/share/wordpress/wp-load.php"),
        (
            "akismet",
            "/usr/share/wordpress/wp-content/plugins/akismet/akismet.php",
        ),
    ]
    .into_iter()
    .filter(|(_, p)| !Path::new(p).exists())
    .map(|(n, _)| n)
    .collect();
    assert!(
        missing.is_empty(),
        "missing {missing:?}: run scripts/test, or apt-get install wordpress mariadb-server php-cli php-mysql php-curl"
    );
}

fn start_wordpress(dir: &Path, hamgate: SocketAddr) -> WordPress {
    use std::os::unix::process::CommandExt;
    let port = free_port();
    let mut child = Command::new(root().join("tests/wordpress/start.sh"))
        .arg(dir)
        .arg(port.to_string())
        .arg(format!("http://{hamgate}"))
        .arg(KEY)
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tests/wordpress/start.sh runs");
    let stdout = child.stdout.take().expect("stdout");
    let wp = WordPress {
        child,
        dir: dir.to_path_buf(),
        url: format!("http://127.0.0.1:{port}"),
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line == "ready" {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(180))
        .unwrap_or_else(|_| {
            let log = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
            panic!(
                "WordPress did not start within 180 s\nmariadb: {}\nsetup: {}\nphp: {}",
                log("mariadb.log"),
                log("setup.json"),
                log("php.log")
            )
        });
    wp
}

/// Posts a comment on the first post as a visitor from `ip` would.
async fn post_comment(wp: &WordPress, ip: &str, author: &str, text: &str) {
    let form = [
        ("comment_post_ID", "1"),
        ("author", author),
        ("email", &format!("{}@example.org", author.to_lowercase())),
        ("url", ""),
        ("comment", text),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", urlencode(v)))
    .collect::<Vec<_>>()
    .join("&");
    let r = http_request(
        wp.addr,
        "POST",
        "/wp-comments-post.php",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-test-ip", ip),
        ],
        form.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 302, "WordPress took the comment: {r:?}");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every comment's status (`1` published, `0` waiting for moderation, `spam`), after marking
/// `mark` (`approve` = "Not spam", or `spam`) on comment `id` first, as a moderator would.
async fn comments(wp: &WordPress, mark: Option<(&str, u64)>) -> Vec<(u64, String, String)> {
    let mut cmd = Command::new("php");
    cmd.arg(root().join("tests/wordpress/comments.php"))
        .arg(wp.dir.join("wp"))
        .arg(&wp.url);
    if let Some((what, id)) = mark {
        cmd.arg(what).arg(id.to_string());
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("php runs"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "comments.php failed\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("comments.php printed no JSON ({e}): {stdout}"));
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_u64().unwrap(),
                c["content"].as_str().unwrap().to_string(),
                c["approved"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn status_of(all: &[(u64, String, String)], text: &str) -> (u64, String) {
    all.iter()
        .rev()
        .find(|(_, c, _)| c == text)
        .map(|(id, _, s)| (*id, s.clone()))
        .unwrap_or_else(|| panic!("no comment {text:?} in {all:?}"))
}

async fn labels_in(log: &Path) -> Vec<(Label, String)> {
    let (log, _) = FileLabelLog::open(log).expect("the label log");
    log.read_all()
        .await
        .expect("read the label log")
        .into_iter()
        .map(|l| (l.record.label, l.record.comment.content))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wordpress_with_the_akismet_plugin_is_decided_and_taught_by_hamgate() {
    prerequisites();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = known_site_settings();
    settings.feedback.label_log = dir.path().join("labels.log");
    settings.sites.insert(
        "blog".into(),
        SiteSettings {
            key_sha256: vec![hash_key(KEY)],
            ..SiteSettings::default()
        },
    );
    let hamgate = TestServer::start(settings).await;
    let started = Instant::now();
    let wp = start_wordpress(dir.path(), hamgate.http_addr);
    eprintln!("WordPress up in {:?}", started.elapsed());

    // 1. Three visitors: spam lands in the spam folder, ham is published, the held one waits
    //    in the moderation queue (never published, never dropped).
    post_comment(&wp, "203.0.113.20", "Vid", SPAM).await;
    post_comment(&wp, "203.0.113.21", "Ann", HAM).await;
    post_comment(&wp, "203.0.113.22", "Pat", HELD).await;
    let all = comments(&wp, None).await;
    let (spam_id, spam) = status_of(&all, SPAM);
    assert_eq!(spam, "spam", "{all:?}");
    assert_eq!(status_of(&all, HAM).1, "1", "{all:?}");
    assert_eq!(status_of(&all, HELD).1, "0", "{all:?}");
    assert!(
        labels_in(&dir.path().join("labels.log")).await.is_empty(),
        "no label yet"
    );

    // 2. "Not spam" in WordPress reaches hamgate as a HAM label of that comment.
    let all = comments(&wp, Some(("approve", spam_id))).await;
    assert_eq!(status_of(&all, SPAM).1, "1", "{all:?}");
    let labels = labels_in(&dir.path().join("labels.log")).await;
    assert_eq!(labels, vec![(Label::Ham, SPAM.to_string())], "{labels:?}");

    // 3. "Spam" on a published comment teaches hamgate, and a similar comment posted next is
    //    no longer published.
    post_comment(&wp, "198.51.100.30", "Sam", NEAR).await;
    let all = comments(&wp, None).await;
    let (near_id, near) = status_of(&all, NEAR);
    assert_eq!(near, "1", "published at first: {all:?}");
    comments(&wp, Some(("spam", near_id))).await;
    let labels = labels_in(&dir.path().join("labels.log")).await;
    assert_eq!(
        labels.last(),
        Some(&(Label::Spam, NEAR.to_string())),
        "{labels:?}"
    );
    let similar = format!("{NEAR}!");
    post_comment(&wp, "198.51.100.31", "Sam", &similar).await;
    let all = comments(&wp, None).await;
    let (_, after) = status_of(&all, &similar);
    assert!(
        after == "0" || after == "spam",
        "the similar comment after the moderator's Spam is held or spam, not published: {all:?}"
    );
    drop(wp);
    hamgate
        .stop(Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
}
