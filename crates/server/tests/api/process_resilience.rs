//! Hostile and failing clients against the real binary: connection
//! timeouts, the connection cap, shutdown with a stalled client, and
//! stalled readers of the streamed application list.
//!
//! Timings here run on a shared, noisy machine: every bound is generous,
//! and nothing asserts that something happened *late enough*.

use crate::helpers::RequestAs;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::process::{start_with, wait_ready, Server};

const ROOT_TOKEN: &str = "glpat-test-root-token-0123456789";

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}?mode=rwc", dir.path().join("l.db").display())
}

async fn start(dir: &tempfile::TempDir, env: &[(&str, &str)]) -> Server {
    let mut server = start_with(&sqlite_url(dir), ROOT_TOKEN, env);
    wait_ready(&mut server).await;
    server
}

fn addr(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

fn connect(server: &Server) -> TcpStream {
    let s = TcpStream::connect(addr(server)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Read until the server closes the connection (EOF or reset), failing
/// after `bound`. Returns what was read.
fn read_until_closed(s: &mut TcpStream, bound: Duration) -> Vec<u8> {
    let deadline = Instant::now() + bound;
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        assert!(
            Instant::now() < deadline,
            "the server did not close the connection within {bound:?}; read {} bytes",
            got.len()
        );
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

/// Read one small response with `Content-Length` (headers and body).
fn read_response(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if body.len() >= len {
                return text;
            }
        }
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed mid-response: {text}");
        got.extend_from_slice(&buf[..n]);
    }
}

const LIVENESS: &[u8] = b"GET /-/liveness HTTP/1.1\r\nHost: latchkey\r\n\r\n";

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_after_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        &dir,
        &[
            ("LATCHKEY_HTTP_IDLE_TIMEOUT", "1"),
            ("LATCHKEY_HTTP_HEADER_TIMEOUT", "30"),
        ],
    )
    .await;
    let mut s = connect(&server);
    // Keep-alive still works: three requests on one connection.
    for _ in 0..3 {
        s.write_all(LIVENESS).unwrap();
        let res = read_response(&mut s);
        assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    }
    let rest = read_until_closed(&mut s, Duration::from_secs(20));
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}

#[tokio::test]
async fn trickled_headers_are_cut_at_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        &dir,
        &[
            ("LATCHKEY_HTTP_HEADER_TIMEOUT", "1"),
            ("LATCHKEY_HTTP_IDLE_TIMEOUT", "60"),
        ],
    )
    .await;
    // A connection that never sends anything is closed too.
    let mut silent = connect(&server);
    // Slowloris: a header line every 200 ms, never the blank line.
    let mut s = connect(&server);
    s.write_all(b"GET /-/liveness HTTP/1.1\r\nHost: latchkey\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 1024];
    loop {
        assert!(
            Instant::now() < deadline,
            "trickled headers kept the connection open"
        );
        if s.write_all(b"X-Slow: 1\r\n").is_err() {
            break;
        }
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    read_until_closed(&mut silent, Duration::from_secs(20));
    // The server still answers.
    let mut s = connect(&server);
    s.write_all(LIVENESS).unwrap();
    assert!(read_response(&mut s).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_stalled_body_gets_408_and_a_closed_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir, &[("LATCHKEY_HTTP_BODY_TIMEOUT", "1")]).await;
    let mut s = connect(&server);
    let head = format!(
        "POST /api/v4/applications HTTP/1.1\r\nHost: latchkey\r\nPRIVATE-TOKEN: {ROOT_TOKEN}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nname=half"
    );
    s.write_all(head.as_bytes()).unwrap();
    let got = read_until_closed(&mut s, Duration::from_secs(20));
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.ends_with(r#"{"message":"408 Request Timeout"}"#),
        "{text}"
    );
    // A body that arrives in time is fine.
    let res = reqwest::Client::new()
        .post(format!("{}/api/v4/applications", server.base))
        .private_token(ROOT_TOKEN)
        .form(&[
            ("name", "whole"),
            ("redirect_uri", "https://a/cb"),
            ("scopes", "api"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn sigterm_exits_within_the_shutdown_timeout_despite_a_stalled_client() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(
        &dir,
        &[
            ("LATCHKEY_SHUTDOWN_TIMEOUT", "2"),
            ("LATCHKEY_HTTP_BODY_TIMEOUT", "600"),
            ("LATCHKEY_HTTP_HEADER_TIMEOUT", "600"),
            ("LATCHKEY_HTTP_IDLE_TIMEOUT", "600"),
        ],
    )
    .await;
    // One request in flight whose body never comes, one idle keep-alive
    // connection, one connection that never sent a byte.
    let mut stalled = connect(&server);
    let head = format!(
        "POST /api/v4/applications HTTP/1.1\r\nHost: latchkey\r\nPRIVATE-TOKEN: {ROOT_TOKEN}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nname="
    );
    stalled.write_all(head.as_bytes()).unwrap();
    let mut idle = connect(&server);
    idle.write_all(LIVENESS).unwrap();
    assert!(read_response(&mut idle).starts_with("HTTP/1.1 200"));
    let _silent = connect(&server);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = started + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "latchkey did not exit within 20 s of SIGTERM (shutdown timeout 2 s)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");
    // The idle connection was closed (the stalled one with the process).
    read_until_closed(&mut idle, Duration::from_secs(5));
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_others_close() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        &dir,
        &[
            ("LATCHKEY_MAX_CONNECTIONS", "2"),
            ("LATCHKEY_HTTP_HEADER_TIMEOUT", "600"),
            ("LATCHKEY_HTTP_IDLE_TIMEOUT", "600"),
        ],
    )
    .await;
    // wait_ready's client kept a pooled connection: let the runtime run
    // its close before this test blocks the thread in std reads.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = connect(&server);
        s.write_all(LIVENESS).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        // A slot may still be held by wait_ready's pooled connection for a
        // moment; the request is answered once it is released.
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let res = read_response(&mut s);
        assert!(res.starts_with("HTTP/1.1 200"), "{res}");
        assert!(Instant::now() < deadline);
        held.push(s);
    }
    // A third is not served while both are held.
    let mut third = connect(&server);
    third.write_all(LIVENESS).unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut buf = [0u8; 64];
    match third.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("a third connection was served over the cap: {other:?}"),
    }
    // Once one closes, the waiting one is served.
    held.pop();
    let res = read_response(&mut third);
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    // And the instance keeps answering new clients as slots free up.
    drop(third);
    let res = reqwest::Client::new()
        .get(format!("{}/-/readiness", server.base))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// The database for a stalled-reader test: SQLite, or PostgreSQL with
/// `LATCHKEY_TEST_API_BACKEND=postgres`.
async fn database(dir: &tempfile::TempDir) -> (String, Option<super::helpers::PostgresDb>) {
    match std::env::var("LATCHKEY_TEST_API_BACKEND").as_deref() {
        Ok("postgres") => {
            let admin = std::env::var("LATCHKEY_TEST_POSTGRES_URL")
                .expect("LATCHKEY_TEST_API_BACKEND=postgres needs LATCHKEY_TEST_POSTGRES_URL");
            let db = super::helpers::PostgresDb::create(&admin).await;
            (db.url.clone(), Some(db))
        }
        _ => (sqlite_url(dir), None),
    }
}

/// A client that asks for the whole list, reads its first bytes and then
/// stops reading, with a small receive buffer.
async fn stalled_reader(server: &Server) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut s = socket.connect(addr(server).parse().unwrap()).await.unwrap();
    s.write_all(
        format!(
            "GET /api/v4/applications HTTP/1.1\r\nHost: latchkey\r\nPRIVATE-TOKEN: {ROOT_TOKEN}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    s
}

/// Read to the end; `None` if the server did not close within `bound`.
async fn drain(s: &mut tokio::net::TcpStream, bound: Duration) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let read = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(bound, read).await.ok()?;
    Some(got)
}

const APPS: usize = 1200;
const STALLED: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_readers_of_the_full_list_hold_no_database_connection() {
    use futures::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    let (url, _pg) = database(&dir).await;
    let max_lists = (STALLED + 1).to_string();
    let mut server = start_with(
        &url,
        ROOT_TOKEN,
        &[
            ("LATCHKEY_DATABASE_POOL_SIZE", "2"),
            ("LATCHKEY_DATABASE_TIMEOUT", "2"),
            ("LATCHKEY_HTTP_WRITE_TIMEOUT", "10"),
            ("LATCHKEY_MAX_STREAMED_LISTS", &max_lists),
        ],
    );
    wait_ready(&mut server).await;
    let client = reqwest::Client::new();
    let apps_url = format!("{}/api/v4/applications", server.base);
    // About 10 kB of JSON per application: the list is far larger than the
    // socket buffers, so a client that stops reading stalls the response.
    // (Five redirect URIs: one may be at most 2,000 bytes.)
    let redirect = (0..5)
        .map(|i| format!("https://example.com/cb{i}/{}", "a".repeat(1_950)))
        .collect::<Vec<_>>()
        .join("\n");
    let created = futures::stream::iter(0..APPS)
        .map(|i| {
            let req = client.post(&apps_url).private_token(ROOT_TOKEN).form(&[
                ("name", format!("app {i}")),
                ("redirect_uri", redirect.clone()),
                ("scopes", "api".to_owned()),
            ]);
            async move { req.send().await.unwrap().status() }
        })
        .buffer_unordered(16)
        .filter(|s| futures::future::ready(*s == 201))
        .count()
        .await;
    assert_eq!(created, APPS);

    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        stalled.push(stalled_reader(&server).await);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    // More stalled readers than pool connections, and the database still
    // answers: readiness, and a full list for a client that reads.
    for _ in 0..3 {
        let res = client
            .get(format!("{}/-/readiness", server.base))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }
    let res = client
        .get(&apps_url)
        .private_token(ROOT_TOKEN)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let list: Vec<serde_json::Value> = res.json().await.unwrap();
    assert_eq!(list.len(), APPS);

    // At the cap, one more unpaginated list is refused at once.
    stalled.push(stalled_reader(&server).await);
    let last_stalled_at = Instant::now();
    let res = client
        .get(&apps_url)
        .private_token(ROOT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(
        res.text().await.unwrap(),
        r#"{"message":"503 Service Unavailable"}"#
    );
    // Pages are not capped.
    let res = client
        .get(format!("{apps_url}?per_page=100&page=5"))
        .private_token(ROOT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Past the write timeout the stalled responses are cut: what they
    // still hold ends without the final chunk.
    tokio::time::sleep(
        (last_stalled_at + Duration::from_secs(16)).saturating_duration_since(Instant::now()),
    )
    .await;
    for mut s in stalled {
        let got = drain(&mut s, Duration::from_secs(30))
            .await
            .expect("a stalled reader's connection was not closed");
        assert!(
            !got.ends_with(b"0\r\n\r\n"),
            "a stalled response was completed"
        );
    }
    // The slots are free again.
    let res = client
        .get(&apps_url)
        .private_token(ROOT_TOKEN)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
