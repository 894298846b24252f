//! The defences of the HTTP API, each attacked with the bad request itself: the token (file shape,
//! wrong or missing `Authorization`), DNS rebinding (a non-loopback `Host`), browser-originated
//! requests, request bodies and oversize or malformed requests sent as raw bytes, and a
//! non-loopback listen address. After each attack the daemon must still serve the next request.
//! STS is unreachable here: none of these checks involves credentials.

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;

use crate::http_support::offline;
use credd_tests::http::Reply;
use credd_tests::stack::Stack;

/// Every route, with the method it takes; the IMDS ones exist because `imds = true`.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/v1/credentials"),
    ("GET", "/v1/credentials/staging"),
    ("PUT", "/latest/api/token"),
    ("GET", "/latest/meta-data/iam/security-credentials/"),
    ("GET", "/latest/meta-data/iam/security-credentials/staging"),
    (
        "GET",
        "/latest/meta-data/iam/security-credentials-extended/staging",
    ),
    ("GET", "/latest/meta-data/placement/region"),
    ("GET", "/no/such/route"),
];

fn daemon() -> Stack {
    offline("imds = true")
}

/// A request carrying the right token and a valid IMDS TTL, plus `extra` headers.
fn attack(served: &Stack, method: &str, path: &str, extra: &[(&str, &str)]) -> Reply {
    let token = served.token();
    let mut headers = vec![
        ("Authorization", token.as_str()),
        ("X-aws-ec2-metadata-token-ttl-seconds", "60"),
    ];
    headers.extend_from_slice(extra);
    served.request(method, path, &headers)
}

#[test]
fn the_token_file_is_64_hex_chars_0600_without_a_newline() {
    let served = daemon();
    let path = served.world.token_file();
    let bytes = std::fs::read(&path).expect("read the token file");
    assert_eq!(
        bytes.len(),
        64,
        "256 bits as hex, nothing else (no newline)"
    );
    assert!(bytes.iter().all(u8::is_ascii_hexdigit), "{bytes:?}");
    let mode = std::fs::metadata(&path)
        .expect("stat the token file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
}

#[test]
fn every_start_writes_a_new_token_and_the_old_one_is_dead() {
    let mut served = daemon();
    let path = served.world.token_file();
    let token = served.token();
    served.world.stop_daemon();
    // An editor's newline, a loose mode: none of it matters, the file is written anew.
    std::fs::write(&path, format!("{token}\n")).expect("write the token file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    served.world.start_daemon();
    let new = served.token();
    assert_ne!(
        new, token,
        "whoever held the port while the daemon was down may have the old one"
    );
    assert_eq!(new.len(), 64, "{new:?}");
    assert!(new.bytes().all(|b| b.is_ascii_hexdigit()), "{new:?}");
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let get = |token: &str| {
        served
            .get_with_token("/v1/credentials/staging", token)
            .status
    };
    assert_eq!(get(&token), 401, "the old token is dead");
    assert_ne!(get(&new), 401);
}

#[test]
fn a_wrong_or_missing_authorization_gets_401_json_that_echoes_no_token() {
    let served = daemon();
    let token = served.token();
    let wrong = "0".repeat(64);
    let bearer = format!("Bearer {token}");
    let with_suffix = format!("{token}x");
    let almost = format!("{}0", &token[..63]);
    for path in ["/v1/credentials", "/v1/credentials/staging"] {
        let mut attempts: Vec<(&str, Vec<(&str, &str)>)> = vec![
            ("missing", vec![]),
            ("wrong", vec![("Authorization", wrong.as_str())]),
            ("Bearer-prefixed", vec![("Authorization", bearer.as_str())]),
            (
                "with a suffix",
                vec![("Authorization", with_suffix.as_str())],
            ),
            ("empty", vec![("Authorization", "")]),
            ("prefix", vec![("Authorization", &token[..32])]),
        ];
        if almost != token {
            attempts.push((
                "last char differs",
                vec![("Authorization", almost.as_str())],
            ));
        }
        for (what, headers) in attempts {
            let reply = served.request("GET", path, &headers);
            let code = reply.assert_error(401);
            assert_eq!(code, "Unauthorized", "{what} token on {path}: {reply}");
            assert!(!reply.body.contains(&token), "the token is echoed: {reply}");
            assert!(
                !reply.body.contains(&wrong),
                "the wrong token is echoed: {reply}"
            );
            let headers = format!("{:?}", reply.headers);
            assert!(
                !headers.contains(&token[..16]),
                "the token is in a header: {reply}"
            );
        }
    }
    served.assert_still_serving();
}

#[test]
fn a_host_that_is_not_loopback_with_our_port_is_refused_on_every_route() {
    let served = daemon();
    let port = served.addr().port();
    let rebinding = [
        format!("evil.example:{port}"),
        "evil.example".to_owned(),
        format!("localhost.evil.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
        format!("10.0.0.1:{port}"),
        "169.254.169.254".to_owned(),
        format!("127.0.0.1:{port}@evil.example"),
        // Loopback, but not our port: a page on another local port must not reach us.
        format!("127.0.0.1:+{port}"),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        "127.0.0.1".to_owned(),
        "localhost:80".to_owned(),
    ];
    for (method, path) in ROUTES {
        for host in &rebinding {
            let reply = attack(&served, method, path, &[("Host", host)]);
            let code = reply.assert_error(403);
            assert_eq!(
                code, "ForbiddenHost",
                "Host {host} on {method} {path}: {reply}"
            );
        }
    }
    // A second Host, or an absolute-form target naming another host, is no way around it.
    let two_hosts = served.send_raw(
        format!(
            "GET /healthz HTTP/1.1\r\nHost: {}\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
            served.addr()
        )
        .as_bytes(),
    );
    let two_hosts = Reply::parse(&two_hosts).expect("an answer to two Host headers");
    assert_eq!(two_hosts.assert_error(400), "InvalidHost");
    for (method, path) in ROUTES {
        let reply = attack(
            &served,
            method,
            &format!("http://evil.example:{port}{path}"),
            &[],
        );
        let code = reply.assert_error(403);
        assert_eq!(
            code, "ForbiddenHost",
            "absolute-form {method} {path}: {reply}"
        );
    }
    // Loopback literals and localhost, any case, with our port, are served.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let reply = served.request("GET", "/healthz", &[("Host", &host)]);
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, "ok"),
            "Host {host}: {reply}"
        );
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }
    served.assert_still_serving();
}

#[test]
fn requests_that_look_like_they_come_from_a_browser_are_refused_on_every_route() {
    let served = daemon();
    let browser_headers: &[(&str, &str)] = &[
        ("Origin", "https://evil.example"),
        ("Origin", "null"),
        ("Origin", "http://127.0.0.1"),
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Site", "same-site"),
        ("Sec-Fetch-Site", "same-origin"),
    ];
    for (method, path) in ROUTES {
        for header in browser_headers {
            let reply = attack(&served, method, path, &[*header]);
            let code = reply.assert_error(403);
            assert_eq!(
                code, "BrowserRequest",
                "{header:?} on {method} {path}: {reply}"
            );
        }
    }
    // A user typing the URL (Sec-Fetch-Site: none) is not a cross-site request.
    let reply = served.request("GET", "/healthz", &[("Sec-Fetch-Site", "none")]);
    assert_eq!((reply.status, reply.body.as_str()), (200, "ok"), "{reply}");
    served.assert_still_serving();
}

#[test]
fn request_bodies_are_refused_with_413() {
    let served = daemon();
    for (method, path) in ROUTES {
        let reply = served.send_raw(
            format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 4096\r\n\
                 Connection: close\r\n\r\n{}",
                served.addr(),
                "x".repeat(4096)
            )
            .as_bytes(),
        );
        let reply = Reply::parse(&reply).unwrap_or_else(|| panic!("no answer on {path}"));
        assert_eq!(
            reply.assert_error(413),
            "RequestTooLarge",
            "{method} {path}"
        );

        let reply = served.send_raw(
            format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\n\
                 Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                served.addr()
            )
            .as_bytes(),
        );
        let reply = Reply::parse(&reply).unwrap_or_else(|| panic!("no answer on {path}"));
        assert_eq!(
            reply.assert_error(413),
            "RequestTooLarge",
            "chunked {method} {path}"
        );
    }
    served.assert_still_serving();
}

/// The daemon answered `raw` with a 4xx, or closed the connection without answering.
#[track_caller]
fn assert_refused_or_closed(served: &Stack, what: &str, raw: &[u8]) {
    let answer = served.send_raw(raw);
    if !answer.is_empty() {
        let text = String::from_utf8_lossy(&answer);
        let status = text
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|s| s.parse::<u16>().ok());
        assert!(
            status.is_some_and(|s| (400..500).contains(&s)),
            "{what}: expected a 4xx or a closed connection, got {text:?}"
        );
    }
    served.assert_still_serving();
}

#[test]
fn an_oversize_header_gets_4xx_or_a_closed_connection_and_the_next_request_is_served() {
    let served = daemon();
    let huge_value = "a".repeat(64 * 1024);
    assert_refused_or_closed(
        &served,
        "one 64 KiB header",
        format!(
            "GET /healthz HTTP/1.1\r\nHost: {}\r\nX-Big: {huge_value}\r\n\r\n",
            served.addr()
        )
        .as_bytes(),
    );
    let many: String = (0..500).map(|i| format!("X-H{i}: v\r\n")).collect();
    assert_refused_or_closed(
        &served,
        "500 headers",
        format!(
            "GET /healthz HTTP/1.1\r\nHost: {}\r\n{many}\r\n",
            served.addr()
        )
        .as_bytes(),
    );
    let long_path = "/".to_owned() + &"p".repeat(64 * 1024);
    assert_refused_or_closed(
        &served,
        "a 64 KiB request line",
        format!(
            "GET {long_path} HTTP/1.1\r\nHost: {}\r\n\r\n",
            served.addr()
        )
        .as_bytes(),
    );
    let token = served.token();
    let reply = served.request("GET", "/v1/credentials/nope", &[("Authorization", &token)]);
    assert_eq!(reply.assert_error(404), "UnknownProfile");
}

#[test]
fn garbage_requests_never_take_the_daemon_down() {
    let served = daemon();
    let host = served.addr().to_string();
    let request = |head: &str| -> Vec<u8> {
        format!("{head}\r\nHost: {host}\r\nConnection: close\r\n\r\n").into_bytes()
    };
    let with_bytes = |head: &str, name: &str, value: &[u8]| -> Vec<u8> {
        let mut raw =
            format!("{head}\r\nHost: {host}\r\nConnection: close\r\n{name}: ").into_bytes();
        raw.extend_from_slice(value);
        raw.extend_from_slice(b"\r\n\r\n");
        raw
    };
    let complete: Vec<(&str, Vec<u8>)> = vec![
        ("binary noise", (0..=255u8).cycle().take(4096).collect()),
        (
            "an HTTP/2 preface",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
        ),
        (
            "a TLS ClientHello",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
        ),
        ("a bare method", b"GET\r\n\r\n".to_vec()),
        ("HTTP/9", request("GET /healthz HTTP/9.9")),
        (
            "a header without colon",
            with_bytes("GET /healthz HTTP/1.1", "X", b"a\r\nnocolon"),
        ),
        (
            "a NUL in a header",
            with_bytes("GET /healthz HTTP/1.1", "X", b"a\0b"),
        ),
        (
            "a non-UTF-8 Host",
            b"GET /healthz HTTP/1.1\r\nHost: \xff\xfe\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "a non-UTF-8 token",
            with_bytes("GET /v1/credentials HTTP/1.1", "Authorization", b"\xff\xfe"),
        ),
        (
            "a non-UTF-8 IMDS TTL",
            with_bytes(
                "PUT /latest/api/token HTTP/1.1",
                "X-aws-ec2-metadata-token-ttl-seconds",
                b"\xff",
            ),
        ),
        (
            "two Content-Lengths",
            with_bytes(
                "GET /healthz HTTP/1.1",
                "Content-Length",
                b"1\r\nContent-Length: 2",
            ),
        ),
        (
            "a negative Content-Length",
            with_bytes("GET /healthz HTTP/1.1", "Content-Length", b"-1"),
        ),
        (
            "a path that is not a path",
            request("GET http://[::1 HTTP/1.1"),
        ),
        (
            "percent garbage as a profile",
            request("GET /v1/credentials/%ff%00%2e%2e HTTP/1.1"),
        ),
        (
            "dot segments",
            request("GET /v1/credentials/../../healthz HTTP/1.1"),
        ),
    ];
    for (what, raw) in &complete {
        assert_refused_or_closed(&served, what, raw);
    }

    // Requests that never finish: hung up at once, or held open while others are served.
    let incomplete: Vec<Vec<u8>> = vec![
        b"\r\n\r\n\r\n".to_vec(),
        format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Cut: ").into_bytes(),
        b"GET /heal".to_vec(),
    ];
    for raw in &incomplete {
        let mut stream = TcpStream::connect(served.addr()).expect("connect to the daemon");
        stream.write_all(raw).expect("write part of a request");
        drop(stream);
        served.assert_still_serving();
    }
    let held: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut stream = TcpStream::connect(served.addr()).expect("connect to the daemon");
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                .expect("write");
            stream
        })
        .collect();
    served.assert_still_serving();
    drop(held);
}

#[test]
fn a_huge_content_length_is_refused_without_waiting_for_the_body() {
    let served = daemon();
    for (method, path) in [
        ("PUT", "/latest/api/token"),
        ("GET", "/healthz"),
        ("POST", "/v1/credentials"),
    ] {
        assert_refused_or_closed(
            &served,
            &format!("Content-Length: 99999999999 on {method} {path}"),
            format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 99999999999\r\n\
                 X-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\nonly this much",
                served.addr()
            )
            .as_bytes(),
        );
    }
    assert_refused_or_closed(
        &served,
        "a Content-Length beyond u64",
        format!(
            "PUT /latest/api/token HTTP/1.1\r\nHost: {}\r\nContent-Length: 999999999999999999999999\r\n\r\n",
            served.addr()
        )
        .as_bytes(),
    );
}

#[test]
fn errors_are_json_4xx_for_what_retrying_cannot_fix_and_5xx_for_what_it_can() {
    let served = daemon();
    let token = served.token();
    let auth = [("Authorization", token.as_str())];
    assert_eq!(
        served
            .request("GET", "/v1/credentials/no-such-profile", &auth)
            .assert_error(404),
        "UnknownProfile"
    );
    assert_eq!(
        served
            .request("GET", "/v2/anything", &auth)
            .assert_error(404),
        "NotFound"
    );
    assert_eq!(
        served
            .request("DELETE", "/v1/credentials", &auth)
            .assert_error(405),
        "MethodNotAllowed"
    );
    // A name that does not decode is a JSON 400 too (axum's own answer is text/plain).
    for path in [
        "/v1/credentials/%ff",
        "/latest/meta-data/iam/security-credentials/%ff",
    ] {
        let mut headers = auth.to_vec();
        let imds_token;
        if path.starts_with("/latest") {
            imds_token = served
                .request(
                    "PUT",
                    "/latest/api/token",
                    &[("X-aws-ec2-metadata-token-ttl-seconds", "60")],
                )
                .body;
            headers.push(("X-aws-ec2-metadata-token", imds_token.as_str()));
        }
        assert_eq!(
            served.request("GET", path, &headers).assert_error(400),
            "InvalidPath"
        );
    }
    // STS is down: the request is answered promptly with a retryable 5xx, not a 4xx.
    let started = std::time::Instant::now();
    let reply = served.request("GET", "/v1/credentials/staging", &auth);
    assert!((500..600).contains(&reply.status), "{reply}");
    reply.assert_error(reply.status);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    // Healthz says ok and nothing else, and is not cached either.
    let reply = served.request("GET", "/healthz", &[]);
    assert_eq!((reply.status, reply.body.as_str()), (200, "ok"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
}

#[test]
fn a_non_loopback_listen_address_is_refused_at_startup() {
    for listen in ["0.0.0.0:9911", "[::]:9911", "192.0.2.10:9911", "0.0.0.0:0"] {
        let mut world = credd_tests::world::World::new();
        world.write_shared_credentials("access", "AKIDEXAMPLE", "not-a-real-secret");
        world.write_config(&format!(
            "[daemon]\nlisten = \"{listen}\"\n\n[access]\nsource = \"iam-user\"\naws_profile = \"access\"\n\n\
             [profiles.staging]\nrole_arn = \"arn:aws:iam::222222222222:role/Administrator\"\n"
        ));
        let failed = world
            .try_start_daemon(&[])
            .expect_err(&format!("listen = {listen} must be refused"));
        assert!(
            failed.status.is_some_and(|s| !s.success()),
            "listen = {listen}: {failed}"
        );
        assert!(
            failed.log.contains("not a loopback address"),
            "listen = {listen}: {failed}"
        );
        assert!(
            failed.log.contains("config.toml:2:"),
            "the error names file:line: {failed}"
        );
    }
}
