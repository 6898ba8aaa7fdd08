//! `Server::bind` and `Server::run` on a loopback port: it answers over TCP, a taken port
//! is a clear error, and the shutdown signal stops it.

mod support;

use std::time::Duration;

use support::{remove_sqlite, temp_store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wachter_web::{Exposure, ServeOptions, Server};

/// One HTTP/1.1 request over a fresh connection; the response head and body as text.
async fn fetch(address: std::net::SocketAddr, path: &str) -> String {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        String::from_utf8_lossy(&response).into_owned()
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("the server answers within 10 s")
}

#[tokio::test]
async fn the_server_answers_refuses_a_taken_port_and_stops_on_its_signal() {
    let path = temp_store("serve");
    let options = ServeOptions {
        store: path.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..ServeOptions::default()
    };
    let server = Server::bind(options.clone()).await.unwrap();
    let address = server.local_addr().unwrap();
    assert!(address.ip().is_loopback() && address.port() != 0);

    let taken = Server::bind(ServeOptions {
        listen: address,
        ..options
    })
    .await
    .err()
    .expect("the port is in use");
    assert!(taken.to_string().contains("the port is taken"), "{taken}");

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let openapi = fetch(address, "/api/v1/openapi.json").await;
    assert!(openapi.starts_with("HTTP/1.1 200"), "{openapi}");
    assert!(
        openapi
            .to_ascii_lowercase()
            .contains("server-timing: app;dur=")
    );
    let api = fetch(address, "/api/v1/overview").await;
    assert!(api.starts_with("HTTP/1.1 401"), "{api}");

    stop.send(()).unwrap();
    let finished = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("run returns after the signal");
    finished.unwrap().unwrap();
    assert!(
        tokio::net::TcpStream::connect(address).await.is_err(),
        "no longer listening"
    );
    remove_sqlite(&path);
}

#[tokio::test]
async fn a_store_that_cannot_be_opened_is_a_clear_error() {
    let path = temp_store("foreign");
    std::fs::write(&path, b"this is not a database").unwrap();
    let err = Server::bind(ServeOptions {
        store: path.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..ServeOptions::default()
    })
    .await
    .err()
    .expect("refused");
    assert!(err.to_string().contains(&path), "{err}");
    remove_sqlite(&path);
}

/// A server on a loopback port over a fresh store, with `exposure`; stopped when dropped.
struct Running {
    address: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    path: String,
}

impl Running {
    async fn start(name: &str, exposure: Exposure) -> Running {
        let path = temp_store(name);
        let store = wachter_store::Store::open(&path).unwrap();
        store
            .add_user("vera", support::password_hash(), "viewer")
            .unwrap();
        drop(store);
        let options = ServeOptions {
            store: path.clone(),
            listen: "127.0.0.1:0".parse().unwrap(),
            ..ServeOptions::default()
        };
        let server = Server::bind_exposed(options, exposure).await.unwrap();
        let address = server.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Running {
            address,
            stop: Some(stop),
            path,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        remove_sqlite(&self.path);
    }
}

/// Everything the server sends until it closes the connection (an error counts as
/// closed); `None` if it is still open after 20 s.
async fn until_closed(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&received).into_owned())
}

#[tokio::test]
async fn a_request_head_must_be_complete_in_time_however_it_trickles() {
    let server = Running::start(
        "head_deadline",
        Exposure {
            head_timeout: Duration::from_millis(400),
            ..Exposure::default()
        },
    )
    .await;
    let host = server.address.to_string();
    let complete = format!("GET /login HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let partial = format!("GET /login HTTP/1.1\r\nHost: {host}\r\nX-Slow: ");
    // (case, sent at once, then trickled a byte every 50 ms, answers expected before close)
    let cases: &[(&str, String, bool, usize)] = &[
        ("nothing at all", String::new(), false, 0),
        ("half a head, then silence", partial.clone(), false, 0),
        (
            "half a head, then a byte at a time",
            partial.clone(),
            true,
            0,
        ),
        (
            "a request, then half of the next",
            format!("{complete}{partial}"),
            false,
            1,
        ),
        (
            "a request, then the next a byte at a time",
            complete.clone(),
            true,
            1,
        ),
    ];
    for (case, at_once, trickle, answers) in cases {
        let mut stream = tokio::net::TcpStream::connect(server.address)
            .await
            .unwrap();
        stream.write_all(at_once.as_bytes()).await.unwrap();
        if *trickle {
            // At most 400 bytes (20 s); a write fails once the server has closed.
            for _ in 0..400 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if stream.write_all(b"a").await.is_err() {
                    break;
                }
            }
        }
        let received = until_closed(&mut stream)
            .await
            .unwrap_or_else(|| panic!("{case}: the connection is still open"));
        assert_eq!(
            received.matches("HTTP/1.1 200").count(),
            *answers,
            "{case}: {received}"
        );
    }
    // A client that sends its request promptly is answered as before.
    let answer = fetch(server.address, "/login").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let server = Running::start(
        "connection_cap",
        Exposure {
            max_connections: 2,
            head_timeout: Duration::from_secs(600),
            ..Exposure::default()
        },
    )
    .await;
    let first = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    let second = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    let waiting = tokio::spawn(fetch(server.address, "/login"));
    // While two connections are held, the third is not served (had the cap not held, it
    // would be answered well within this pause).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "the third connection was served");
    drop(first);
    let answer = waiting.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(second);
}

#[tokio::test]
async fn over_tcp_the_host_is_checked_and_public_hosts_are_answered() {
    let server = Running::start(
        "public_hosts",
        Exposure {
            public_hosts: vec!["cert.example".into()],
            ..Exposure::default()
        },
    )
    .await;
    let port = server.address.port();
    let cases = [
        (server.address.to_string(), "200"),
        (format!("localhost:{port}"), "200"),
        ("cert.example".to_string(), "200"),
        (format!("cert.example:{port}"), "200"),
        (format!("evil.example:{port}"), "421"),
    ];
    for (host, status) in cases {
        let answer = fetch_with_host(server.address, "/login", Some(&host)).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{host}: {answer}"
        );
    }
    let http10 = fetch_with_host(server.address, "/login", None).await;
    assert!(http10.starts_with("HTTP/1.0 421"), "{http10}");

    let bad = Server::bind_exposed(
        ServeOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..ServeOptions::default()
        },
        Exposure {
            public_hosts: vec!["https://cert.example/".into()],
            ..Exposure::default()
        },
    )
    .await
    .err()
    .expect("a URL is not a host name");
    assert!(bad.to_string().contains("public host"), "{bad}");
}

/// One request with `Host: host` (HTTP/1.0 without one) over a fresh connection.
async fn fetch_with_host(address: std::net::SocketAddr, path: &str, host: Option<&str>) -> String {
    let request = match host {
        Some(host) => format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        None => format!("GET {path} HTTP/1.0\r\n\r\n"),
    };
    exchange(address, None, &request).await
}

/// Sends `request` from `from` (a loopback address, or any) and reads until the server
/// closes.
async fn exchange(address: std::net::SocketAddr, from: Option<&str>, request: &str) -> String {
    let exchange = async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        if let Some(from) = from {
            socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        }
        let mut stream = socket.connect(address).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response).await;
        String::from_utf8_lossy(&response).into_owned()
    };
    tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .expect("the server answers within 20 s")
}

#[tokio::test]
async fn over_tcp_failed_logins_are_counted_per_client_address() {
    let server = Running::start("peer_limit", Exposure::default()).await;
    let host = server.address.to_string();
    let form = fetch(server.address, "/login").await;
    let token = form
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: wachter_login="))
        .and_then(|v| v.split(';').next())
        .expect("pre-login cookie")
        .to_string();
    let login = |from: &'static str, name: String| {
        // Longer than any accepted password: refused without Argon2, counted all the same.
        let body = format!(
            "username={name}&password={}&_csrf={token}",
            "x".repeat(1025)
        );
        let request = format!(
            "POST /login HTTP/1.1\r\nHost: {host}\r\nCookie: wachter_login={token}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let address = server.address;
        async move { exchange(address, Some(from), &request).await }
    };
    // (client address, expected status); ten failures per address, then 429.
    let mut steps: Vec<(&'static str, &str)> = vec![("127.0.0.1", "401"); 10];
    steps.push(("127.0.0.1", "429"));
    steps.push(("127.0.0.2", "401"));
    for (step, (from, status)) in steps.into_iter().enumerate() {
        let answer = login(from, format!("guess{step}")).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "step {step} from {from}: {answer}"
        );
        if status == "429" {
            assert!(answer.contains("retry-after: "), "{answer}");
        }
    }
}
