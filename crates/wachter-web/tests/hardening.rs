//! The answers to the security review, through the whole router: the failed-login
//! limiter, the `Host` check (DNS rebinding), cross-site POSTs, doubled cookies, asset
//! caching, and a time filter past the year 9999.

mod support;

use axum::body::Body;
use axum::http::StatusCode;
use support::{Answer, Fixture, HOST, PASSWORD, bare_request, fixture, from_peer, request};
use wachter_web::query::percent_encode;

/// A login form's token and the cookie that carries it (one pair serves many posts).
async fn login_token(fx: &Fixture) -> (String, String) {
    let form = fx.get("/login", &[]).await;
    let csrf = form
        .cookie_value("wachter_login")
        .expect("pre-login cookie");
    (csrf.clone(), format!("wachter_login={csrf}"))
}

/// `POST /login` from `peer` with the token pair, and `extra` headers.
async fn post_login(
    fx: &Fixture,
    token: &(String, String),
    peer: &str,
    username: &str,
    password: &str,
    extra: &[(&str, &str)],
) -> Answer {
    let body = [
        ("username", username),
        ("password", password),
        ("_csrf", token.0.as_str()),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", percent_encode(v)))
    .collect::<Vec<_>>()
    .join("&");
    let mut headers = vec![
        ("cookie", token.1.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    headers.extend_from_slice(extra);
    fx.send(from_peer(
        request("POST", "/login", &headers, Body::from(body)),
        peer,
    ))
    .await
}

/// A password the login refuses without running Argon2 (longer than any accepted), so
/// that a test can fail many logins quickly; it counts like any failure.
fn cheap_wrong_password() -> String {
    "x".repeat(1025)
}

#[tokio::test]
async fn failed_logins_for_one_name_are_limited_whatever_the_address_and_spelling() {
    let fx = fixture("limit_name");
    let token = login_token(&fx).await;
    let wrong = cheap_wrong_password();
    // Five failures, each from another address and spelled another way.
    for (i, spelling) in ["anna", "Anna", " ANNA", "anna ", "aNNa"]
        .iter()
        .enumerate()
    {
        let peer = format!("127.0.1.{}:40000", i + 1);
        let answer = post_login(&fx, &token, &peer, spelling, &wrong, &[]).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{spelling:?}");
    }
    // Now even the right password is not checked: 429 with the form and the wait.
    let refused = post_login(&fx, &token, "127.0.1.9:40000", "anna", PASSWORD, &[]).await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.body
    );
    let wait: u64 = refused.header("retry-after").parse().expect("Retry-After");
    assert!((1..=10).contains(&wait), "{wait}");
    assert!(refused.body.contains("id=\"login\""), "the form again");
    assert!(
        refused.body.contains("Too many failed logins"),
        "{}",
        refused.body
    );
    assert!(refused.set_cookie("wachter_session").is_none());
    assert!(
        refused.set_cookie("wachter_login").is_some(),
        "a fresh form token"
    );
    // Another user is not held up by anna's bucket.
    let vera = post_login(&fx, &token, "127.0.1.10:40000", "vera", PASSWORD, &[]).await;
    assert_eq!(vera.status, StatusCode::SEE_OTHER, "{}", vera.body);
}

#[tokio::test]
async fn failed_logins_from_one_address_are_limited_across_names() {
    let fx = fixture("limit_peer");
    let token = login_token(&fx).await;
    let wrong = cheap_wrong_password();
    let attacker = "127.0.2.1:40000";
    // (peer, user name, expected status)
    let mut steps: Vec<(&str, String, StatusCode)> = (0..10)
        .map(|i| (attacker, format!("guess{i}"), StatusCode::UNAUTHORIZED))
        .collect();
    steps.push((attacker, "guess10".into(), StatusCode::TOO_MANY_REQUESTS));
    steps.push((attacker, "vera".into(), StatusCode::TOO_MANY_REQUESTS));
    // IPv6 addresses count by their /64.
    for i in 0..10 {
        steps.push((
            ["[::1]:40000", "[::2]:40000"][i % 2],
            format!("six{i}"),
            StatusCode::UNAUTHORIZED,
        ));
    }
    steps.push(("[::3]:40000", "six10".into(), StatusCode::TOO_MANY_REQUESTS));
    steps.push((
        "127.0.2.2:40000",
        "guess11".into(),
        StatusCode::UNAUTHORIZED,
    ));
    for (step, (peer, name, status)) in steps.iter().enumerate() {
        let answer = post_login(&fx, &token, peer, name, &wrong, &[]).await;
        assert_eq!(answer.status, *status, "step {step}: {peer} {name}");
    }
    // The right password from another address still gets in.
    let vera = post_login(&fx, &token, "127.0.2.3:40000", "vera", PASSWORD, &[]).await;
    assert_eq!(vera.status, StatusCode::SEE_OTHER, "{}", vera.body);
}

#[tokio::test]
async fn a_successful_login_does_not_use_up_the_budget() {
    let fx = fixture("limit_success");
    let token = login_token(&fx).await;
    for attempt in 0..6 {
        let answer = post_login(&fx, &token, "127.0.3.1:40000", "vera", PASSWORD, &[]).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "attempt {attempt}");
    }
}

#[tokio::test]
async fn only_our_own_host_names_are_answered() {
    let fx = fixture("hosts");
    // (Host, expected status); the app's listen address is 127.0.0.1:8460.
    let cases = [
        (HOST, StatusCode::OK),
        ("localhost:8460", StatusCode::OK),
        ("[::1]:8460", StatusCode::OK),
        ("127.0.0.1:9999", StatusCode::MISDIRECTED_REQUEST),
        ("evil.example:8460", StatusCode::MISDIRECTED_REQUEST),
        ("evil.example", StatusCode::MISDIRECTED_REQUEST),
        (
            "localhost.evil.example:8460",
            StatusCode::MISDIRECTED_REQUEST,
        ),
        ("127.0.0.1.nip.io:8460", StatusCode::MISDIRECTED_REQUEST),
        ("", StatusCode::MISDIRECTED_REQUEST),
    ];
    for path in ["/login", "/api/v1/openapi.json", "/assets/app.js"] {
        for (host, status) in cases {
            let answer = fx.get(path, &[("host", host)]).await;
            assert_eq!(answer.status, status, "{path} Host: {host}");
            assert!(
                !answer.header("content-security-policy").is_empty(),
                "security headers on every answer: {path} {host}"
            );
        }
    }
    // No Host at all (HTTP/1.0), or an absolute target naming another host.
    let no_host = fx
        .send(bare_request("GET", "/login", &[], Body::empty()))
        .await;
    assert_eq!(no_host.status, StatusCode::MISDIRECTED_REQUEST);
    let absolute = fx
        .send(request(
            "GET",
            "http://evil.example:8460/login",
            &[],
            Body::empty(),
        ))
        .await;
    assert_eq!(absolute.status, StatusCode::MISDIRECTED_REQUEST);
    // The API says so in JSON, the pages in HTML.
    let api = fx
        .get("/api/v1/openapi.json", &[("host", "evil.example:8460")])
        .await;
    assert!(api.json()["error"].as_str().unwrap().contains("host name"));
    let page = fx.get("/login", &[("host", "evil.example:8460")]).await;
    assert!(page.body.contains("public_hosts"), "{}", page.body);
    assert!(
        !page.body.contains("id=\"login\""),
        "no login form for them"
    );
}

#[tokio::test]
async fn cross_site_posts_are_refused_and_same_site_ones_pass() {
    let fx = fixture("origin");
    let token = login_token(&fx).await;
    let origin = format!("http://{HOST}");
    // (headers a browser adds, expected status of a correct login)
    let cases: Vec<(Vec<(&str, &str)>, StatusCode)> = vec![
        (vec![], StatusCode::SEE_OTHER),
        (vec![("origin", &origin)], StatusCode::SEE_OTHER),
        (
            vec![("sec-fetch-site", "same-origin")],
            StatusCode::SEE_OTHER,
        ),
        (
            // What Chromium sends from our page (its Referrer-Policy hides the origin).
            vec![("origin", "null"), ("sec-fetch-site", "same-origin")],
            StatusCode::SEE_OTHER,
        ),
        (vec![("sec-fetch-site", "none")], StatusCode::SEE_OTHER),
        (
            vec![("origin", "http://evil.example")],
            StatusCode::FORBIDDEN,
        ),
        (
            vec![("origin", "http://127.0.0.1:8461")],
            StatusCode::FORBIDDEN,
        ),
        (vec![("origin", "null")], StatusCode::FORBIDDEN),
        (
            vec![("sec-fetch-site", "cross-site")],
            StatusCode::FORBIDDEN,
        ),
        (vec![("sec-fetch-site", "same-site")], StatusCode::FORBIDDEN),
        (
            vec![
                ("origin", "http://evil.example"),
                ("sec-fetch-site", "same-origin"),
            ],
            StatusCode::FORBIDDEN,
        ),
    ];
    for (i, (headers, status)) in cases.iter().enumerate() {
        let peer = format!("127.0.4.{}:40000", i + 1);
        let answer = post_login(&fx, &token, &peer, "vera", PASSWORD, headers).await;
        assert_eq!(answer.status, *status, "{headers:?}: {}", answer.body);
        if *status == StatusCode::FORBIDDEN {
            assert!(answer.set_cookie("wachter_session").is_none());
            assert!(answer.body.contains("another site"), "{}", answer.body);
        }
    }

    // Every other POST too: logout (a page form) and an API write (JSON).
    let session = fx.session("anna");
    let cookie = session.cookie();
    let cross = ("origin", "http://evil.example");
    let logout = fx
        .post_form(
            "/logout",
            &[("cookie", &cookie), cross],
            &[("_csrf", &session.csrf)],
        )
        .await;
    assert_eq!(logout.status, StatusCode::FORBIDDEN);
    assert_eq!(
        fx.get_as("/api/v1/me", &session).await.status,
        StatusCode::OK,
        "still logged in"
    );
    let api = fx
        .send(request(
            "POST",
            &format!("/api/v1/messages/{}/retry", fx.ticket),
            &[("cookie", &cookie), ("x-csrf-token", &session.csrf), cross],
            Body::empty(),
        ))
        .await;
    assert_eq!(api.status, StatusCode::FORBIDDEN);
    assert!(
        api.json()["error"]
            .as_str()
            .unwrap()
            .contains("another site")
    );
    // Reading from another site stays possible (links into the dashboard work).
    let read = fx.get("/login", &[cross]).await;
    assert_eq!(read.status, StatusCode::OK);
}

#[tokio::test]
async fn a_cookie_sent_twice_is_refused() {
    let fx = fixture("double_cookie");
    let session = fx.session("vera");
    let ours = session.cookie();
    let token = login_token(&fx).await;
    let planted = "wachter_session=planted";
    let twice_one_header = format!("{planted}; {}", session.cookie());
    let login_twice = format!("{}; wachter_login=planted", token.1);
    // (path, Cookie headers, expected status)
    let cases: Vec<(&str, Vec<&str>, StatusCode)> = vec![
        ("/hosts", vec![&twice_one_header], StatusCode::BAD_REQUEST),
        ("/hosts", vec![planted, &ours], StatusCode::BAD_REQUEST),
        (
            "/api/v1/me",
            vec![&twice_one_header],
            StatusCode::BAD_REQUEST,
        ),
        ("/login", vec![&login_twice], StatusCode::BAD_REQUEST),
        ("/hosts", vec![&ours], StatusCode::OK),
        ("/hosts", vec!["x_wachter_session=1", &ours], StatusCode::OK),
    ];
    for (path, cookies, status) in &cases {
        let headers: Vec<(&str, &str)> = cookies.iter().map(|c| ("cookie", *c)).collect();
        let answer = fx.get(path, &headers).await;
        assert_eq!(
            answer.status, *status,
            "{path} {cookies:?}: {}",
            answer.body
        );
        if *status == StatusCode::BAD_REQUEST {
            assert!(answer.body.contains("more than once"), "{}", answer.body);
        }
    }
    // The login post with a planted second login cookie does not log anyone in.
    let planted_login = post_login(
        &fx,
        &(token.0.clone(), login_twice.clone()),
        "127.0.5.1:40000",
        "vera",
        PASSWORD,
        &[],
    )
    .await;
    assert_eq!(planted_login.status, StatusCode::BAD_REQUEST);
    assert!(planted_login.set_cookie("wachter_session").is_none());
}

#[tokio::test]
async fn assets_are_cached_a_day_and_revalidated_not_kept_a_year() {
    let fx = fixture("asset_cache");
    let answer = fx.get("/assets/app.js", &[]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("cache-control"), "public, max-age=86400");
    let etag = answer.header("etag").to_string();
    assert!(etag.starts_with('"'), "{etag}");
    let revalidated = fx.get("/assets/app.js", &[("if-none-match", &etag)]).await;
    assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED);
    assert_eq!(revalidated.header("cache-control"), "public, max-age=86400");
    let missing = fx.get("/assets/nope.js", &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.header("cache-control"), "no-store");
    let page = fx.get("/login", &[]).await;
    assert_eq!(page.header("cache-control"), "no-store");
}

#[tokio::test]
async fn a_time_past_the_year_9999_is_answered_not_panicked_on() {
    let fx = fixture("far_future");
    let session = fx.session("vera");
    for field in ["since", "until"] {
        for value in ["9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00+23:59"] {
            for path in ["/hosts", "/api/v1/hosts"] {
                let uri = format!("{path}?{field}={}", percent_encode(value));
                let answer = fx.get_as(&uri, &session).await;
                assert!(
                    matches!(answer.status, StatusCode::OK | StatusCode::BAD_REQUEST),
                    "{uri}: {}",
                    answer.status
                );
            }
        }
    }
}
