//! What the router tests share: a fresh store per test ([`new_store`], with three users —
//! viewer, analyst, admin — sharing one password) behind `router(state)` ([`TestApp`]),
//! sessions and API tokens made directly in the store, requests sent through
//! `tower::ServiceExt::oneshot` (no socket is opened) and answers read whole.
//!
//! [`fixture`] is the backend tests' store: three services with findings (one with a
//! hostname a spreadsheet would run as a formula), an organisation owning two of them, a
//! campaign with one queued message to it, and a triage report of it. The page tests
//! fill theirs with hostile evidence (see `tests/pages.rs`).

#![allow(dead_code)] // each test crate uses its own subset

use std::ops::Deref;
use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, Response, StatusCode, header};
use tower::ServiceExt as _;
use wachter_core::assessment::{Assessment, Basis, CveVerdict, Flags, Product, Verdict};
use wachter_core::record::{ServiceRecord, Status};
use wachter_store::view::NewTriageReport;
use wachter_store::{AttributionRow, MailContent, NewCampaign, NewMessage, ScanInfo, Store};
use wachter_web::auth::{csrf_token, new_token, token_digest};
use wachter_web::query::percent_encode;
use wachter_web::{AppState, ServeOptions, StorePool, hash_password, router};

pub const PASSWORD: &str = "correct horse battery staple";
/// A hostname that would run as a formula if a CSV cell started with it.
pub const FORMULA_HOSTNAME: &str = "=HYPERLINK(\"http://evil.test\",\"x\")";
pub const CVE: &str = "CVE-2019-19781";

/// The PHC string of [`PASSWORD`], hashed once per test binary (Argon2 is slow unoptimised).
pub fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password(PASSWORD).unwrap())
}

pub use wachter_store::testing::remove_sqlite;

/// A SQLite path in the temporary folder for test `name`, with no store left there.
pub fn temp_store(name: &str) -> String {
    wachter_store::testing::temp_sqlite("web", name)
}

/// An open service on port 443, seen at the start of 2026, that `assessment` assessed.
pub fn open_service(ip: &str, hostname: Option<&str>, assessment: Assessment) -> ServiceRecord {
    let mut r = ServiceRecord::new(
        ip.parse().unwrap(),
        443,
        hostname.map(str::to_string),
        "2026-01-01T00:00:00Z".into(),
    );
    r.status = Status::Open;
    r.checks.push(assessment);
    r
}

/// A NetScaler assessment with one verdict on `cve`.
pub fn netscaler(cve: &str, verdict: Verdict, basis: Basis) -> Assessment {
    Assessment {
        check: "netscaler".into(),
        product: Product::Netscaler,
        signals: vec![],
        build: None,
        probe: None,
        cves: vec![CveVerdict {
            cve: cve.into(),
            verdict,
            basis,
            detail: String::new(),
        }],
        flags: Flags::default(),
    }
}

/// A message `[ticket] subject` to `email` about `findings` (id, state when told).
pub fn message(
    ticket: &str,
    subject: &str,
    email: &str,
    recipient_name: &str,
    organisation_id: Option<i64>,
    findings: Vec<(i64, String)>,
) -> NewMessage {
    let subject = format!("[{ticket}] {subject}");
    NewMessage {
        ticket: ticket.into(),
        content: MailContent {
            mail_from: "cert@test.test".into(),
            recipients: vec![email.into()],
            bytes: format!("Subject: {subject}\r\n\r\nbody").into_bytes(),
            subject,
            message_id: format!("<{ticket}@test.test>"),
        },
        organisation_id,
        recipient_name: recipient_name.into(),
        language: "en".into(),
        round: 1,
        findings,
    }
}

/// A campaign on `cve` (TLP amber, English) that queues `messages`; its id.
pub fn campaign(
    store: &Store,
    name: &str,
    cve: &str,
    summary: serde_json::Value,
    messages: &[NewMessage],
) -> i64 {
    let campaign = NewCampaign {
        name: name.into(),
        cve: cve.into(),
        tlp: "amber".into(),
        language: "en".into(),
        params: serde_json::json!({}),
        summary,
        not_notified_since: "2000-01-01T00:00:00Z".into(),
    };
    store
        .create_campaign(&campaign, messages)
        .unwrap()
        .campaign_id
}

/// A fresh store behind the router; removed when dropped.
pub struct TestApp {
    pub app: Router,
    pub state: AppState,
    pub path: String,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        remove_sqlite(&self.path);
    }
}

/// A fresh store for test `name` with the users `vera` (viewer), `anna` (analyst) and
/// `adam` (admin); fill it, then [`TestApp::serve`] it.
pub fn new_store(name: &str) -> Store {
    let store = Store::open(&temp_store(name)).unwrap();
    for (user, role) in [("vera", "viewer"), ("anna", "analyst"), ("adam", "admin")] {
        store.add_user(user, password_hash(), role).unwrap();
    }
    store
}

impl TestApp {
    /// The router over `store` (closed here; the app opens its own handles).
    pub fn serve(store: Store) -> TestApp {
        let path = store.location().to_string();
        drop(store);
        let state = AppState::new(
            StorePool::open(&path, 2).unwrap(),
            ServeOptions {
                store: path.clone(),
                ..ServeOptions::default()
            },
        );
        let app = router(state.clone());
        TestApp { app, state, path }
    }

    /// Another handle on the store, to look behind the app's back.
    pub fn store(&self) -> Store {
        Store::open(&self.path).unwrap()
    }

    fn user_id(&self, name: &str) -> i64 {
        self.store()
            .users()
            .unwrap()
            .into_iter()
            .find(|u| u.name == name)
            .unwrap()
            .id
    }

    /// A session made directly in the store (no Argon2 on the way).
    pub fn session(&self, user: &str) -> Session {
        let (secret, digest) = new_token("").unwrap();
        let csrf = csrf_token(&secret);
        self.store()
            .create_session(
                &digest,
                self.user_id(user),
                &token_digest(&csrf),
                "2999-01-01T00:00:00Z",
            )
            .unwrap();
        Session { secret, csrf }
    }

    /// An API token of `user` with `scope`, expiring at `expires_at`.
    pub fn token(&self, user: &str, scope: &str, expires_at: Option<&str>) -> (i64, String) {
        let (secret, digest) = new_token("wachter_").unwrap();
        let id = self
            .store()
            .add_token(user, "test", &digest, scope, expires_at)
            .unwrap()
            .unwrap();
        assert_eq!(digest, token_digest(&secret));
        (id, secret)
    }

    pub fn revoke(&self, token_id: i64) {
        assert!(
            self.store()
                .revoke_token(token_id, "2026-01-01T00:00:00Z")
                .unwrap()
        );
    }

    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.app.clone().oneshot(request).await.unwrap();
        Answer::read(response).await
    }

    pub async fn get(&self, uri: &str, headers: &[(&str, &str)]) -> Answer {
        self.send(request("GET", uri, headers, Body::empty())).await
    }

    /// `GET uri` with the session's cookie.
    pub async fn get_as(&self, uri: &str, session: &Session) -> Answer {
        self.get(uri, &[("cookie", &session.cookie())]).await
    }

    pub async fn post_form(
        &self,
        uri: &str,
        headers: &[(&str, &str)],
        form: &[(&str, &str)],
    ) -> Answer {
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut headers = headers.to_vec();
        headers.push(("content-type", "application/x-www-form-urlencoded"));
        self.send(request("POST", uri, &headers, Body::from(body)))
            .await
    }

    /// Posts a form with the session's cookie and CSRF token.
    pub async fn post_as(&self, uri: &str, session: &Session, fields: &[(&str, &str)]) -> Answer {
        let mut form = vec![("_csrf", session.csrf.as_str())];
        form.extend_from_slice(fields);
        self.post_form(uri, &[("cookie", &session.cookie())], &form)
            .await
    }
}

/// A session cookie value and its CSRF token.
#[derive(Clone, Debug)]
pub struct Session {
    pub secret: String,
    pub csrf: String,
}

impl Session {
    pub fn cookie(&self) -> String {
        format!("wachter_session={}", self.secret)
    }
}

/// The `Host` a browser sends to the app's default listen address.
pub const HOST: &str = "127.0.0.1:8460";

/// A request as a client sends it: with `Host: 127.0.0.1:8460` unless `headers` name
/// another (the router answers only to its own names).
pub fn request(method: &str, uri: &str, headers: &[(&str, &str)], body: Body) -> Request<Body> {
    let mut request = bare_request(method, uri, headers, body);
    if !request.headers().contains_key(header::HOST) {
        request
            .headers_mut()
            .insert(header::HOST, header::HeaderValue::from_static(HOST));
    }
    request
}

/// A request with exactly `headers` (no `Host` unless given).
pub fn bare_request(
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Body,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body).unwrap()
}

/// `request` as if it came over a connection from `peer` (what `wachter serve` tells the
/// router; requests without it share one "unknown" address).
pub fn from_peer(mut request: Request<Body>, peer: &str) -> Request<Body> {
    let peer: std::net::SocketAddr = peer.parse().unwrap();
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    request
}

/// A response read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    async fn read(response: Response<Body>) -> Answer {
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024).await.unwrap();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Header `name`, or `""` when it is not there.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The `Set-Cookie` line for cookie `name`, if set.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_string)
    }

    /// The value of cookie `name` as set by this response.
    pub fn cookie_value(&self, name: &str) -> Option<String> {
        let line = self.set_cookie(name)?;
        let pair = line.split(';').next()?;
        Some(pair.split_once('=')?.1.to_string())
    }
}

/// The backend tests' store (see the module doc).
pub struct Fixture {
    pub app: TestApp,
    /// The queued message's ticket.
    pub ticket: String,
    /// A service id that exists.
    pub service_id: i64,
    pub campaign_id: i64,
    /// [`ORGANISATION`], owning 127.70.0.1 and 127.70.0.2.
    pub organisation_id: i64,
    pub triage_id: i64,
}

/// The fixture's organisation.
pub const ORGANISATION: &str = "Ziekenhuis Noord";

impl Deref for Fixture {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.app
    }
}

/// The backend tests' store, for test `name`.
pub fn fixture(name: &str) -> Fixture {
    let mut store = new_store(name);
    let scan = store.begin_scan(&ScanInfo::default()).unwrap();
    let service =
        |ip, hostname, verdict| open_service(ip, hostname, netscaler(CVE, verdict, Basis::Probe));
    store
        .write_batch(
            scan,
            &[
                service("127.70.0.1", Some(FORMULA_HOSTNAME), Verdict::Vulnerable),
                service("127.70.0.2", Some("vpn.example.test"), Verdict::Mitigated),
                service("127.70.1.3", None, Verdict::Patched),
            ],
        )
        .unwrap();
    store.finish_scan(scan, false, "{}").unwrap();
    let organisation = serde_json::from_value(serde_json::json!({
        "name": ORGANISATION,
        "sector": "Healthcare",
        "networks": ["127.70.0.0/24"],
        "contacts": [{"email": "soc@example.test"}],
    }))
    .unwrap();
    store.upsert_organisations(&[organisation]).unwrap();
    let organisation_id = store.organisations().unwrap()[0].id;
    let owned: Vec<AttributionRow> = store
        .services_page(0, 100)
        .unwrap()
        .into_iter()
        .filter(|s| s.ip.starts_with("127.70.0."))
        .map(|s| AttributionRow {
            service_id: s.service_id,
            organisation_id: Some(organisation_id),
            method: "network".into(),
            matched: Some("127.70.0.0/24".into()),
            detail: serde_json::json!({}),
            ..AttributionRow::default()
        })
        .collect();
    assert_eq!(owned.len(), 2);
    store.write_attributions(&owned).unwrap();
    let open = store.notice_candidates(Some(CVE)).unwrap();
    let ticket = store.reserve_tickets("T", 1).unwrap().remove(0);
    let findings = open
        .iter()
        .map(|c| (c.finding_id, c.state.clone()))
        .collect();
    let queued = message(
        &ticket,
        "test",
        "soc@example.test",
        "@SUM(1+1)",
        Some(organisation_id),
        findings,
    );
    let triage_id = store
        .add_triage_report(&NewTriageReport {
            label: "noord-vpn.tar.gz".into(),
            organisation_id: Some(organisation_id),
            service_id: None,
            verdict: "clean".into(),
            hits: 0,
            report: serde_json::json!({"verdict": "clean", "hits": []}),
        })
        .unwrap();
    Fixture {
        campaign_id: campaign(&store, "test", CVE, serde_json::json!({}), &[queued]),
        service_id: open[0].service_id,
        ticket,
        organisation_id,
        triage_id,
        app: TestApp::serve(store),
    }
}
