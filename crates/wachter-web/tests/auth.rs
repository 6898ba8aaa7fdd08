//! Logging in and out, sessions, CSRF, API tokens and roles, through the whole router.

mod support;

use axum::body::Body;
use axum::http::StatusCode;
use support::{Answer, Fixture, PASSWORD, fixture, request};

/// Opens the login form and posts it with the pre-login cookie it set.
async fn login(fx: &Fixture, username: &str, password: &str, next: &str) -> Answer {
    let form = fx.get("/login", &[]).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let csrf = form
        .cookie_value("wachter_login")
        .expect("pre-login cookie");
    assert!(form.body.contains(&csrf), "the form carries the token");
    let cookie = format!("wachter_login={csrf}");
    fx.post_form(
        "/login",
        &[("cookie", &cookie)],
        &[
            ("username", username),
            ("password", password),
            ("_csrf", &csrf),
            ("next", next),
        ],
    )
    .await
}

fn session_cookie(answer: &Answer) -> String {
    format!(
        "wachter_session={}",
        answer
            .cookie_value("wachter_session")
            .expect("session cookie")
    )
}

#[tokio::test]
async fn login_sets_a_strict_session_cookie_and_the_session_works() {
    let fx = fixture("login_ok");
    let form = fx.get("/login", &[]).await;
    let pre = form.set_cookie("wachter_login").unwrap();
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(pre.contains(attribute), "{pre}");
    }
    assert!(form.body.contains("id=\"login\""), "{}", form.body);

    let answer = login(&fx, "anna", PASSWORD, "").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.header("location"), "/");
    let cookie = answer.set_cookie("wachter_session").unwrap();
    for attribute in [
        "Path=/;",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Max-Age=43200",
    ] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    let secret = answer.cookie_value("wachter_session").unwrap();
    assert_eq!(secret.len(), 43, "32 random bytes, base64url");

    let me = fx
        .get("/api/v1/me", &[("cookie", &session_cookie(&answer))])
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    let me = me.json();
    assert_eq!(
        (me["name"].as_str(), me["role"].as_str()),
        (Some("anna"), Some("analyst"))
    );
    // The CSRF token is derived from the cookie; the store keeps digests only.
    let csrf = me["csrf"].as_str().unwrap();
    assert_eq!(csrf, wachter_web::auth::csrf_token(&secret));
    let stored = fx
        .store()
        .session(
            &wachter_web::auth::token_digest(&secret),
            "2026-01-01T00:00:00Z",
        )
        .unwrap()
        .unwrap();
    assert_ne!(stored.csrf_digest, csrf);
    assert_eq!(stored.csrf_digest, wachter_web::auth::token_digest(csrf));
}

#[tokio::test]
async fn a_failed_login_says_the_same_whichever_half_was_wrong() {
    let fx = fixture("login_wrong");
    let wrong_password = login(&fx, "anna", "wrong", "").await;
    let unknown_user = login(&fx, "nobody", PASSWORD, "").await;
    let empty = login(&fx, "", "", "").await;
    for answer in [&wrong_password, &unknown_user, &empty] {
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
        assert!(answer.set_cookie("wachter_session").is_none());
        assert!(answer.body.contains("id=\"login\""), "the form again");
        assert!(
            answer.body.contains("Wrong user name or password."),
            "{}",
            answer.body
        );
    }
}

#[tokio::test]
async fn login_needs_the_double_submitted_csrf_token() {
    let fx = fixture("login_csrf");
    let form = fx.get("/login", &[]).await;
    let csrf = form.cookie_value("wachter_login").unwrap();
    let cookie = format!("wachter_login={csrf}");
    let other = "A".repeat(43);
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("no cookie, no field", &[]),
        ("cookie, no field", &[("cookie", &cookie)]),
        ("field, no cookie", &[]),
        ("cookie and a different field", &[("cookie", &cookie)]),
    ];
    for (case, headers) in cases {
        let field = match *case {
            "field, no cookie" => csrf.as_str(),
            "cookie and a different field" => other.as_str(),
            _ => "",
        };
        let answer = fx
            .post_form(
                "/login",
                headers,
                &[
                    ("username", "anna"),
                    ("password", PASSWORD),
                    ("_csrf", field),
                ],
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{case}: {}",
            answer.body
        );
        assert!(answer.set_cookie("wachter_session").is_none(), "{case}");
        assert!(answer.body.contains("id=\"login\""), "{case}: a fresh form");
    }
}

#[tokio::test]
async fn login_redirects_only_to_local_paths() {
    let fx = fixture("login_next");
    let cases = [
        ("//evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        (
            "/hosts?cve=CVE-2019-19781&state=open",
            "/hosts?cve=CVE-2019-19781&state=open",
        ),
    ];
    for (next, expected) in cases {
        let answer = login(&fx, "vera", PASSWORD, next).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{next}");
        assert_eq!(answer.header("location"), expected, "{next}");
    }
}

#[tokio::test]
async fn a_page_without_a_session_redirects_to_login_with_its_path() {
    let fx = fixture("page_redirect");
    let answer = fx.get("/hosts?cve=CVE-2019-19781", &[]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(
        answer.header("location"),
        "/login?next=%2Fhosts%3Fcve%3DCVE-2019-19781"
    );
    let form = fx
        .get("/login?next=%2Fhosts%3Fcve%3DCVE-2019-19781", &[])
        .await;
    assert!(
        form.body.contains("/hosts?cve=CVE-2019-19781"),
        "next kept in the form"
    );
}

#[tokio::test]
async fn a_form_posted_after_the_session_ended_logs_in_to_the_overview() {
    // After logging in the browser GETs `next`; a POST-only route would answer 405.
    let fx = fixture("post_redirect");
    for path in [
        "/logout",
        "/account/tokens",
        "/admin/users/role",
        "/campaigns/1/messages/T-1/retry",
    ] {
        let answer = fx
            .post_form(
                path,
                &[("cookie", "wachter_session=expired")],
                &[("_csrf", "x")],
            )
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(answer.header("location"), "/login", "{path}: no next");
    }
    let head = fx
        .send(request("HEAD", "/scans?x=1", &[], Body::empty()))
        .await;
    assert_eq!(head.header("location"), "/login?next=%2Fscans%3Fx%3D1");
}

#[tokio::test]
async fn logout_needs_the_csrf_token_and_ends_the_session() {
    let fx = fixture("logout");
    let session = fx.session("vera");
    let cookie = session.cookie();
    let wrong = "B".repeat(43);
    for (case, token) in [("missing", None), ("wrong", Some(wrong.as_str()))] {
        let form: Vec<(&str, &str)> = token.map(|t| vec![("_csrf", t)]).unwrap_or_default();
        let answer = fx.post_form("/logout", &[("cookie", &cookie)], &form).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{case}");
        assert_eq!(
            fx.get_as("/api/v1/me", &session).await.status,
            StatusCode::OK
        );
    }
    let answer = fx.post_as("/logout", &session, &[]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.header("location"), "/login");
    let cleared = answer.set_cookie("wachter_session").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let after = fx.get_as("/api/v1/me", &session).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn cookie_authenticated_api_writes_need_the_csrf_header() {
    let fx = fixture("api_csrf");
    let session = fx.session("anna");
    let cookie = session.cookie();
    let uri = format!("/api/v1/messages/{}/cancel", fx.ticket);
    let wrong = "C".repeat(43);
    let cases: &[(&str, Option<&str>, StatusCode)] = &[
        ("missing", None, StatusCode::FORBIDDEN),
        ("wrong", Some(&wrong), StatusCode::FORBIDDEN),
        ("right", Some(&session.csrf), StatusCode::OK),
    ];
    for (case, token, expected) in cases {
        let mut headers = vec![("cookie", cookie.as_str())];
        if let Some(token) = token {
            headers.push(("x-csrf-token", token));
        }
        let answer = fx
            .send(request("POST", &uri, &headers, Body::empty()))
            .await;
        assert_eq!(answer.status, *expected, "{case}: {}", answer.body);
        if *expected == StatusCode::FORBIDDEN {
            assert!(
                answer.json()["error"].as_str().unwrap().contains("CSRF"),
                "{case}"
            );
        }
    }
}

#[tokio::test]
async fn bearer_tokens_read_or_write_within_their_users_role() {
    let fx = fixture("tokens");
    let (_, analyst_read) = fx.token("anna", "read", None);
    let (_, analyst_write) = fx.token("anna", "write", None);
    let (_, viewer_write) = fx.token("vera", "write", None);
    let (revoked_id, revoked) = fx.token("anna", "write", None);
    fx.revoke(revoked_id);
    let (_, expired) = fx.token("anna", "write", Some("2020-01-01T00:00:00Z"));
    let (_, live) = fx.token("anna", "read", Some("2999-01-01T00:00:00Z"));
    let cancel = format!("/api/v1/messages/{}/cancel", fx.ticket);
    let cases: &[(&str, &str, &str, StatusCode)] = &[
        (
            "read token reads",
            &analyst_read,
            "GET /api/v1/hosts",
            StatusCode::OK,
        ),
        (
            "token not yet expired",
            &live,
            "GET /api/v1/overview",
            StatusCode::OK,
        ),
        (
            "read token cannot write",
            &analyst_read,
            "POST",
            StatusCode::FORBIDDEN,
        ),
        (
            "viewer's write token cannot act",
            &viewer_write,
            "POST",
            StatusCode::FORBIDDEN,
        ),
        (
            "revoked token",
            &revoked,
            "GET /api/v1/me",
            StatusCode::UNAUTHORIZED,
        ),
        (
            "expired token",
            &expired,
            "GET /api/v1/me",
            StatusCode::UNAUTHORIZED,
        ),
        (
            "unknown token",
            "wachter_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "GET /api/v1/me",
            StatusCode::UNAUTHORIZED,
        ),
        (
            "not ours",
            "abc",
            "GET /api/v1/me",
            StatusCode::UNAUTHORIZED,
        ),
        (
            "analyst's write token acts",
            &analyst_write,
            "POST",
            StatusCode::OK,
        ),
    ];
    for (case, token, what, expected) in cases {
        let authorization = format!("Bearer {token}");
        let (method, uri) = match what.split_once(' ') {
            Some((method, uri)) => (method, uri),
            None => (*what, cancel.as_str()),
        };
        let answer = fx
            .send(request(
                method,
                uri,
                &[("authorization", &authorization)],
                Body::empty(),
            ))
            .await;
        assert_eq!(answer.status, *expected, "{case}: {}", answer.body);
        assert!(answer.json().is_object(), "{case}: JSON");
    }
    // No credentials at all: 401 JSON with a challenge.
    let none = fx.get("/api/v1/hosts", &[]).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.json()["error"], "authentication required");
    assert!(none.header("www-authenticate").starts_with("Bearer"));
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let fx = fixture("headers");
    let session = fx.session("vera");
    let answers = [
        fx.get("/login", &[]).await,
        fx.get("/", &[]).await,
        fx.get_as("/", &session).await,
        fx.get("/api/v1/openapi.json", &[]).await,
        fx.get("/api/v1/hosts", &[]).await,
        fx.get_as("/api/v1/hosts?cve=nope", &session).await,
        fx.get_as("/api/v1/hosts?format=csv", &session).await,
        fx.get("/no/such/page", &[]).await,
        fx.post_form("/login", &[], &[]).await,
        fx.get("/assets/no-such-asset.js", &[]).await,
        fx.send(request(
            "POST",
            "/api/v1/messages/T-1/cancel",
            &[("content-length", "2000000")],
            Body::from(vec![b'x'; 2_000_000]),
        ))
        .await,
    ];
    assert_eq!(
        answers.last().unwrap().status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "bodies over 1 MiB are refused"
    );
    for answer in &answers {
        let context = format!("{} {:?}", answer.status, answer.header("location"));
        assert_eq!(
            answer.header("content-security-policy"),
            wachter_web::security::CONTENT_SECURITY_POLICY,
            "{context}"
        );
        assert_eq!(
            answer.header("x-content-type-options"),
            "nosniff",
            "{context}"
        );
        assert_eq!(answer.header("x-frame-options"), "DENY", "{context}");
        assert_eq!(answer.header("referrer-policy"), "no-referrer", "{context}");
        assert_eq!(answer.header("cache-control"), "no-store", "{context}");
        let timing = answer.header("server-timing");
        let millis = timing
            .strip_prefix("app;dur=")
            .unwrap_or_else(|| panic!("{context}: {timing}"));
        let (whole, tenths) = millis.split_once('.').unwrap();
        assert!(
            whole.bytes().all(|b| b.is_ascii_digit()) && tenths.len() == 1,
            "{context}: {timing}"
        );
    }
}

#[tokio::test]
async fn an_oversized_form_is_refused() {
    let fx = fixture("big_form");
    let session = fx.session("vera");
    let big = "x".repeat(70 * 1024);
    let answer = fx
        .post_form(
            "/logout",
            &[("cookie", &session.cookie())],
            &[("_csrf", &session.csrf), ("pad", &big)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert_eq!(
        fx.get_as("/api/v1/me", &session).await.status,
        StatusCode::OK
    );
}
