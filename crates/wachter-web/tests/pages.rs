//! The HTML dashboard through the whole router (`wachter_web::router`), one request at a
//! time with `tower::ServiceExt::oneshot`: every page for every role, the page contract
//! the browser tests rely on, the forms (CSRF, roles), and hostile scanned content that
//! must reach the page only as escaped text.

mod support;

use std::ops::Deref;

use axum::http::StatusCode;
use support::{TestApp, campaign, message, open_service};
use wachter_core::assessment::{
    Assessment, Basis, BuildEstimate, BuildMethod, CveVerdict, Flags, ProbeResult, ProbeState,
    Product, Verdict,
};
use wachter_core::record::{
    Blob, Certificate, HttpExchange, HttpOutcome, Protocol, ServiceRecord, TlsInfo,
};
use wachter_store::view::NewTriageReport;
use wachter_store::{AttributionRow, ScanInfo};

const SCRIPT: &str = "<script>alert(1)</script>";
const SCRIPT_ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;";
const IMG: &str = "\"><img src=x onerror=alert(1)>";
const IMG_ESCAPED: &str = "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;";
const JS_URL: &str = "javascript:alert(1)";
const CVE: &str = "CVE-2023-3519";

// ---------------------------------------------------------------------------------------
// The fixture: a store with hostile evidence

struct Fixture {
    app: TestApp,
    hostile_service: i64,
    organisation_id: i64,
    campaign_id: i64,
    queued_ticket: String,
    held_ticket: String,
    triage_id: i64,
    finished_scan: i64,
    running_scan: i64,
}

impl Deref for Fixture {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.app
    }
}

fn assessment(verdict: Verdict) -> Assessment {
    Assessment {
        check: "netscaler".into(),
        product: Product::Netscaler,
        signals: vec![format!("title:{SCRIPT}")],
        build: Some(BuildEstimate {
            version: Some("13.1-48.47".into()),
            candidates: vec![],
            method: BuildMethod::Vhash,
            detail: format!("hash {IMG}"),
        }),
        probe: Some(ProbeResult {
            state: ProbeState::Vulnerable,
            reason: format!("p1 answered {SCRIPT}"),
            evidence: vec!["p1".into()],
        }),
        cves: vec![CveVerdict {
            cve: CVE.into(),
            verdict,
            basis: Basis::Both,
            detail: IMG.into(),
        }],
        flags: Flags {
            tls_names: vec![JS_URL.into()],
            ..Flags::default()
        },
    }
}

fn exchange(name: &str, request: &[u8], head: &[u8], body: &[u8]) -> HttpExchange {
    HttpExchange {
        name: name.into(),
        request: Blob::from(request),
        outcome: HttpOutcome::Response,
        detail: Some(format!("detail {SCRIPT}")),
        status: Some(200),
        status_line: Some(Blob::from(&b"HTTP/1.1 200 OK"[..])),
        headers: Some(Blob::from(head)),
        body: Some(Blob::from(body)),
        body_read: body.len() as u64,
        body_complete: true,
        connection: 1,
        first_byte_ms: Some(1),
        total_ms: 2,
    }
}

/// A service whose hostname, headers, body and certificate names are attacks.
fn hostile_record(ip: &str) -> ServiceRecord {
    let hostname = format!("{SCRIPT}{IMG}.test");
    let mut r = open_service(ip, Some(&hostname), assessment(Verdict::Vulnerable));
    r.protocol = Some(Protocol::Https);
    r.tls = Some(TlsInfo {
        established: true,
        version: Some("TLSv1.2".into()),
        sni: Some(hostname.clone()),
        chain: vec![Certificate {
            sha256: "ab".repeat(32),
            subject: format!("CN={IMG}"),
            issuer: format!("CN={SCRIPT}"),
            common_name: Some(IMG.into()),
            sans: vec![JS_URL.into(), SCRIPT.into(), IMG.into()],
            not_after: Some("2030-01-01T00:00:00Z".into()),
            der: "AA==".into(),
            ..Certificate::default()
        }],
        handshakes: 1,
        ..TlsInfo::default()
    });
    let request = format!("GET / HTTP/1.1\r\nHost: {hostname}\r\n\r\n");
    let head = format!("Server: {SCRIPT}\r\nLocation: {JS_URL}\r\nX-Img: {IMG}\r\n");
    let body = format!(
        "<html><body>{SCRIPT}<a href=\"{JS_URL}\">x</a>{IMG}<style>body{{}}</style></body></html>"
    );
    let mut binary = b"\xff\xfe".to_vec();
    binary.extend_from_slice(SCRIPT.as_bytes());
    r.http = vec![
        exchange("root", request.as_bytes(), head.as_bytes(), body.as_bytes()),
        exchange(
            "p1",
            b"GET /vpn/../vpns/cfg HTTP/1.1\r\n\r\n",
            b"X: y\r\n",
            &binary,
        ),
    ];
    r
}

fn plain_record(ip: &str, verdict: Verdict) -> ServiceRecord {
    let assessment = Assessment {
        signals: vec![],
        flags: Flags::default(),
        ..assessment(verdict)
    };
    let mut r = open_service(ip, None, assessment);
    r.protocol = Some(Protocol::Https);
    r
}

fn fixture(name: &str) -> Fixture {
    let mut store = support::new_store(name);
    // The organisation: the store takes the constituency's `Organisation`, made from JSON.
    let organisation = serde_json::from_value(serde_json::json!({
        "name": format!("Hospital {SCRIPT}"),
        "sector": "health",
        "networks": ["127.61.0.0/24"],
        "domains": ["hospital.test"],
        "contacts": [{"email": "cert@hospital.test", "name": IMG}],
        "notes": IMG,
    }))
    .unwrap();
    store.upsert_organisations(&[organisation]).unwrap();
    let organisation_id = store.organisations().unwrap()[0].id;

    let finished_scan = store
        .begin_scan(&ScanInfo {
            ports: "443".into(),
            check: "netscaler".into(),
            scope: "127.61.0.0/16".into(),
            params: serde_json::json!({"note": SCRIPT}).to_string(),
            ..ScanInfo::default()
        })
        .unwrap();
    store
        .write_batch(
            finished_scan,
            &[
                hostile_record("127.61.0.1"),
                plain_record("127.61.0.2", Verdict::Mitigated),
                plain_record("127.61.1.3", Verdict::Patched),
            ],
        )
        .unwrap();
    store.finish_scan(finished_scan, false, "{}").unwrap();

    let services = store.services_page(0, 100).unwrap();
    let service = |ip: &str| services.iter().find(|s| s.ip == ip).unwrap().service_id;
    let hostile_service = service("127.61.0.1");
    store
        .write_attributions(&[hostile_service, service("127.61.0.2")].map(|service_id| {
            AttributionRow {
                service_id,
                organisation_id: Some(organisation_id),
                method: "network".into(),
                matched: Some("127.61.0.0/24".into()),
                detail: serde_json::json!({}),
                ..AttributionRow::default()
            }
        }))
        .unwrap();

    // A campaign: one message queued, one held after a rejection.
    let open = store.notice_candidates(Some(CVE)).unwrap();
    assert_eq!(open.len(), 2, "two open findings");
    let tickets = store.reserve_tickets("T", 2).unwrap();
    let message = |ticket: &str, finding: &wachter_store::NoticeCandidate| {
        message(
            ticket,
            SCRIPT,
            "cert@hospital.test",
            &format!("Hospital {IMG}"),
            Some(organisation_id),
            vec![(finding.finding_id, finding.state.clone())],
        )
    };
    let campaign_id = campaign(
        &store,
        &format!("round {SCRIPT}"),
        CVE,
        serde_json::json!({"why": IMG}),
        &[
            message(&tickets[0], &open[0]),
            message(&tickets[1], &open[1]),
        ],
    );
    let held = store
        .outbox(Some(campaign_id))
        .unwrap()
        .into_iter()
        .find(|m| m.ticket == tickets[1])
        .unwrap();
    let claimed = store
        .claim_message(held.id, "2026-01-01T00:00:00Z", "2000-01-01T00:00:00Z")
        .unwrap()
        .unwrap();
    assert!(
        store
            .message_failed(&claimed, &format!("550 {SCRIPT}"), None)
            .unwrap()
    );

    let triage_id = store
        .add_triage_report(&NewTriageReport {
            label: format!("image {IMG}"),
            organisation_id: Some(organisation_id),
            service_id: Some(hostile_service),
            verdict: "compromised".into(),
            hits: 1,
            report: serde_json::json!({
                "evidence": "bundle.tar.gz", "kind": "tar_gz", "verdict": "compromised",
                "reason": "A webshell was found.", "rules": 40, "areas": ["/var/vpn"],
                "hits": [{"rule": "webshell", "severity": "compromise", "cves": [CVE],
                          "source": "test", "description": IMG, "path": format!("/var/vpn/{SCRIPT}.php"),
                          "line": 1, "excerpt": format!("<?php {SCRIPT} ?>")}],
                "more_hits": {}, "coverage": [], "problems": [], "more_problems": {},
                "summary": {"entries": 3, "files": 2, "bytes_read": 9}
            }),
        })
        .unwrap();

    // A scan still running, for the live progress.
    let running_scan = store.begin_scan(&ScanInfo::default()).unwrap();
    store
        .write_batch(
            running_scan,
            &[plain_record("127.61.0.2", Verdict::Mitigated)],
        )
        .unwrap();
    Fixture {
        hostile_service,
        organisation_id,
        campaign_id,
        queued_ticket: tickets[0].clone(),
        held_ticket: tickets[1].clone(),
        triage_id,
        finished_scan,
        running_scan,
        app: TestApp::serve(store),
    }
}

impl Fixture {
    fn pages(&self) -> Vec<String> {
        vec![
            "/".into(),
            "/hosts".into(),
            "/hosts?state=open&limit=1".into(),
            format!("/hosts/{}", self.hostile_service),
            "/organisations".into(),
            "/organisations?sector=health".into(),
            format!("/organisations/{}", self.organisation_id),
            "/scans".into(),
            format!("/scans/{}", self.finished_scan),
            format!("/scans/{}", self.running_scan),
            "/campaigns".into(),
            format!("/campaigns/{}", self.campaign_id),
            "/triage".into(),
            format!("/triage/{}", self.triage_id),
            "/account".into(),
        ]
    }
}

// ---------------------------------------------------------------------------------------
// What every page must be: inert markup

/// Every start tag of `html` (from `<` to `>`): data is escaped, so each `<` in the page
/// opens a tag the templates wrote.
fn tags(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        if after.starts_with(|c: char| c.is_ascii_alphabetic()) {
            let end = after.find('>').map_or(after.len(), |e| e + 1);
            out.push(&rest[start..start + 1 + end]);
        }
        rest = after;
    }
    out
}

/// No inline style, no script without `src`, no event-handler attribute, no `javascript:`
/// or foreign URL in any attribute, no image or frame at all.
fn assert_inert(page: &str, html: &str) {
    assert!(!html.contains("style=\""), "{page}: inline style attribute");
    for tag in tags(html) {
        let lower = tag.to_ascii_lowercase();
        if lower.starts_with("<script") {
            assert!(
                lower.starts_with("<script src=\"/assets/"),
                "{page}: inline or foreign script {tag}"
            );
        }
        for banned in [
            "<img",
            "<iframe",
            "<object",
            "<embed",
            "<style",
            "<base",
            "<meta http-equiv",
        ] {
            assert!(!lower.starts_with(banned), "{page}: {tag}");
        }
        assert!(!lower.contains("javascript:"), "{page}: {tag}");
        assert!(
            !lower.contains("src=\"http"),
            "{page}: foreign source {tag}"
        );
        let mut words = lower.split(|c: char| c.is_whitespace());
        words.next();
        for word in words {
            assert!(
                !(word.starts_with("on") && word.contains('=')),
                "{page}: event handler in {tag}"
            );
        }
    }
}

/// Every form that posts carries the session's CSRF token.
fn assert_forms_carry_csrf(page: &str, html: &str, csrf: &str) {
    let mut forms = 0;
    for (start, _) in html.match_indices("<form") {
        let end = html[start..].find("</form>").map(|e| start + e).unwrap();
        let form = &html[start..end];
        if form.contains("method=\"post\"") {
            forms += 1;
            assert!(
                form.contains(&format!("name=\"_csrf\" value=\"{csrf}\"")),
                "{page}: a form without the CSRF token: {form}"
            );
        }
    }
    assert!(forms >= 1, "{page}: at least the logout form");
}

// ---------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn every_page_renders_for_a_viewer_with_layout_and_inert_markup() {
    let fx = fixture("every_page");
    let viewer = fx.session("vera");
    for page in fx.pages() {
        let answer = fx.get_as(&page, &viewer).await;
        assert_eq!(answer.status, StatusCode::OK, "{page}: {}", answer.body);
        assert!(
            answer.header("content-type").starts_with("text/html"),
            "{page}"
        );
        assert!(
            answer
                .header("content-security-policy")
                .contains("script-src 'self'")
        );
        let html = &answer.body;
        assert!(html.contains("<nav"), "{page}");
        for link in [
            "/",
            "/hosts",
            "/organisations",
            "/scans",
            "/campaigns",
            "/triage",
            "/account",
        ] {
            assert!(
                html.contains(&format!("<a href=\"{link}\"")),
                "{page}: nav link {link}"
            );
        }
        assert!(
            !html.contains("href=\"/admin/users\""),
            "{page}: admin link for a viewer"
        );
        assert!(
            html.contains("<form id=\"logout\" method=\"post\" action=\"/logout\">"),
            "{page}"
        );
        assert!(
            html.contains("<link rel=\"stylesheet\" href=\"/assets/app.css\">"),
            "{page}"
        );
        assert!(
            html.contains("<script src=\"/assets/app.js\" defer></script>"),
            "{page}"
        );
        assert_inert(&page, html);
        assert_forms_carry_csrf(&page, html, &viewer.csrf);
    }
}

#[tokio::test]
async fn admins_see_every_page_and_the_users_page() {
    let fx = fixture("admin_pages");
    let admin = fx.session("adam");
    let mut pages = fx.pages();
    pages.push("/admin/users".into());
    for page in pages {
        let answer = fx.get_as(&page, &admin).await;
        assert_eq!(answer.status, StatusCode::OK, "{page}: {}", answer.body);
        assert!(answer.body.contains("href=\"/admin/users\""), "{page}");
        assert_inert(&page, &answer.body);
        assert_forms_carry_csrf(&page, &answer.body, &admin.csrf);
    }
}

#[tokio::test]
async fn the_users_page_is_forbidden_below_admin() {
    let fx = fixture("admin_forbidden");
    for user in ["vera", "anna"] {
        let session = fx.session(user);
        let answer = fx.get_as("/admin/users", &session).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{user}");
        assert!(answer.body.contains("<nav") || answer.body.contains("Not allowed"));
        let answer = fx
            .post_as(
                "/admin/users",
                &session,
                &[
                    ("name", "eve"),
                    ("password", "long enough password"),
                    ("role", "admin"),
                ],
            )
            .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{user}");
    }
    assert!(fx.store().users().unwrap().iter().all(|u| u.name != "eve"));
}

#[tokio::test]
async fn hostile_scanned_content_is_shown_only_escaped() {
    let fx = fixture("hostile");
    let viewer = fx.session("vera");
    let host = fx
        .get_as(&format!("/hosts/{}", fx.hostile_service), &viewer)
        .await;
    assert_eq!(host.status, StatusCode::OK, "{}", host.body);
    let html = &host.body;
    // The payloads are there, as text.
    assert!(html.contains(SCRIPT_ESCAPED), "escaped <script>");
    assert!(html.contains(IMG_ESCAPED), "escaped attribute breakout");
    assert!(html.contains(JS_URL), "javascript: URL as text");
    // The host's name in the heading, the certificate names, headers and body.
    let h1 = &html[html.find("<h1>").unwrap()..html.find("</h1>").unwrap()];
    assert!(
        h1.contains("127.61.0.1:443") && h1.contains(SCRIPT_ESCAPED),
        "{h1}"
    );
    for section in ["findings", "certificate", "evidence", "messages"] {
        assert!(
            html.contains(&format!("<section id=\"{section}\"")),
            "{section}"
        );
    }
    let certificate = section(html, "certificate");
    assert!(
        certificate.contains(&format!("CN={IMG_ESCAPED}")),
        "{certificate}"
    );
    assert!(
        certificate.contains(&format!("CN={SCRIPT_ESCAPED}")),
        "{certificate}"
    );
    assert!(
        certificate.contains(&format!("<code>{JS_URL}</code>")),
        "{certificate}"
    );
    assert!(certificate.contains(&"ab".repeat(32)));
    let evidence = section(html, "evidence");
    assert!(
        evidence.matches("<pre class=\"raw").count() >= 6,
        "{evidence}"
    );
    assert!(evidence.contains(&format!(
        "Server: {SCRIPT_ESCAPED}\nLocation: {JS_URL}\nX-Img: {IMG_ESCAPED}"
    )));
    assert!(
        evidence.contains("HTTP/1.1 200 OK\nServer:"),
        "status line with headers"
    );
    assert!(
        evidence.contains(&format!("&lt;a href=&quot;{JS_URL}&quot;&gt;")),
        "body as text"
    );
    assert!(
        evidence.contains(&format!("\\xff\\xfe{SCRIPT_ESCAPED}")),
        "binary body as \\xNN"
    );
    assert!(evidence.contains("&lt;style&gt;"), "body style as text");
    let findings = section(html, "findings");
    assert!(findings.contains("13.1-48.47"), "build");
    assert!(findings.contains("state-vulnerable"), "probe state");
    assert!(
        findings.contains(&format!("hash {IMG_ESCAPED}")),
        "build detail escaped"
    );

    // Wherever a hostile string shows up, it is never raw, and nothing became active.
    let mut pages = fx.pages();
    pages.push("/hosts?network=127.61.0.1".to_string());
    for page in pages {
        let answer = fx.get_as(&page, &viewer).await;
        assert_eq!(answer.status, StatusCode::OK, "{page}");
        let html = &answer.body;
        assert!(!html.contains(SCRIPT), "{page}: raw <script> payload");
        assert!(!html.contains(IMG), "{page}: raw attribute breakout");
        assert!(!html.contains("<img"), "{page}: an image tag");
        assert!(
            !html.to_ascii_lowercase().contains("href=\"javascript:"),
            "{page}"
        );
        assert_inert(&page, html);
    }
    for (page, expected) in [
        ("/".to_string(), SCRIPT_ESCAPED),
        ("/hosts".to_string(), SCRIPT_ESCAPED),
        (
            format!("/organisations/{}", fx.organisation_id),
            IMG_ESCAPED,
        ),
        (format!("/campaigns/{}", fx.campaign_id), SCRIPT_ESCAPED),
        (format!("/triage/{}", fx.triage_id), SCRIPT_ESCAPED),
    ] {
        let answer = fx.get_as(&page, &viewer).await;
        assert!(
            answer.body.contains(expected),
            "{page}: {expected} expected"
        );
    }
}

/// The part of `html` inside `<section id="{id}"` … `</section>`.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html.find(&format!("<section id=\"{id}\"")).unwrap();
    let end = html[start..].find("</section>").unwrap();
    &html[start..start + end]
}

#[tokio::test]
async fn pages_follow_the_contract_of_the_browser_tests() {
    let fx = fixture("contract");
    let viewer = fx.session("vera");
    let overview = fx.get_as("/", &viewer).await.body;
    for needle in [
        "<section id=\"totals\"",
        "<table id=\"counts\"",
        "<div id=\"trend-chart\" class=\"chart\" data-src=\"/api/v1/overview\"",
        "<table id=\"newest\"",
        "<script src=\"/assets/uPlot.iife.min.js\" defer></script>",
        "href=\"/assets/uPlot.min.css\"",
    ] {
        assert!(overview.contains(needle), "overview: {needle}");
    }
    // uPlot before app.js: deferred scripts run in document order.
    assert!(overview.find("uPlot.iife.min.js").unwrap() < overview.find("/assets/app.js").unwrap());

    let hosts = fx
        .get_as("/hosts?state=open&network=127.61.0.0%2F24", &viewer)
        .await
        .body;
    for needle in [
        "<form id=\"filters\" method=\"get\"",
        "<table id=\"hosts\"",
        &format!("<tr data-service-id=\"{}\">", fx.hostile_service),
        &format!(
            "<a class=\"host-link\" href=\"/hosts/{}\">",
            fx.hostile_service
        ),
        "<a id=\"download-csv\" class=\"download-csv\" href=\"/api/v1/hosts?format=csv&amp;state=open&amp;network=127.61.0.0%2F24\"",
    ] {
        assert!(hosts.contains(needle), "hosts: {needle}\n{hosts}");
    }
    assert!(
        !hosts.contains("data-service-id=\"") || !hosts.contains("127.61.1.3"),
        "filtered"
    );

    for (page, needle) in [
        (
            "/organisations",
            "href=\"/api/v1/organisations?format=csv\"",
        ),
        (
            "/organisations?sector=health",
            "href=\"/api/v1/organisations?format=csv&amp;sector=health\"",
        ),
        ("/scans", "href=\"/api/v1/scans?format=csv\""),
        ("/campaigns", "href=\"/api/v1/campaigns?format=csv\""),
        ("/triage", "href=\"/api/v1/triage?format=csv\""),
    ] {
        let body = fx.get_as(page, &viewer).await.body;
        assert!(
            body.contains(&format!("class=\"download-csv\" {needle}")),
            "{page}: {needle}"
        );
    }
    let campaign = fx
        .get_as(&format!("/campaigns/{}", fx.campaign_id), &viewer)
        .await
        .body;
    assert!(campaign.contains(&format!(
        "class=\"download-csv\" href=\"/api/v1/campaigns/{}/messages?format=csv\"",
        fx.campaign_id
    )));
    // "Still open": the whole list is the host list filtered by the campaign, and its CSV.
    let still_open = format!("campaign={}&amp;state=open", fx.campaign_id);
    assert!(
        campaign.contains(&format!(
            "<a id=\"still-open-link\" href=\"/hosts?{still_open}\">"
        )),
        "{campaign}"
    );
    assert!(campaign.contains(&format!(
        "class=\"download-csv\" href=\"/api/v1/hosts?format=csv&amp;{still_open}\""
    )));
    assert!(!campaign.contains("Showing the first"), "nothing capped");
    let told = fx
        .get_as(
            &format!("/hosts?campaign={}&state=open", fx.campaign_id),
            &viewer,
        )
        .await
        .body;
    assert_eq!(told.matches("<tr data-service-id=").count(), 2, "{told}");
    assert!(told.contains(&format!(
        "name=\"campaign\" type=\"text\" inputmode=\"numeric\" value=\"{}\"",
        fx.campaign_id
    )));
    assert!(campaign.contains(&fx.queued_ticket) && campaign.contains(&fx.held_ticket));
    assert!(
        campaign.contains("550 &lt;script&gt;"),
        "the SMTP error, escaped"
    );

    let running = fx
        .get_as(&format!("/scans/{}", fx.running_scan), &viewer)
        .await
        .body;
    assert!(running.contains(&format!(
        "<div id=\"scan-progress\" data-live=\"/api/v1/scans/{}\"",
        fx.running_scan
    )));
    assert!(running.contains("data-field=\"observations\""));
    assert!(running.contains("The changes are shown once the scan has ended."));
    let finished = fx
        .get_as(&format!("/scans/{}", fx.finished_scan), &viewer)
        .await
        .body;
    assert!(!finished.contains("id=\"scan-progress\""));

    let organisation = fx
        .get_as(&format!("/organisations/{}", fx.organisation_id), &viewer)
        .await
        .body;
    assert!(organisation.contains(&format!(
        "<a id=\"org-hosts-link\" href=\"/hosts?organisation={}\">",
        fx.organisation_id
    )));
    assert!(
        !organisation.contains("Showing the first"),
        "nothing capped"
    );

    let organisations = fx.get_as("/organisations", &viewer).await.body;
    assert!(organisations.contains(&format!(
        "<tr data-organisation-id=\"{}\" class=\"has-open\">",
        fx.organisation_id
    )));
}

#[tokio::test]
async fn the_hosts_list_pages_with_the_same_filters() {
    let fx = fixture("paging");
    let viewer = fx.session("vera");
    let first = fx.get_as("/hosts?limit=1", &viewer).await.body;
    assert_eq!(first.matches("<tr data-service-id=").count(), 1);
    assert!(
        first.contains("<a id=\"next-page\" rel=\"next\" href=\"/hosts?offset=1&amp;limit=1\">"),
        "{first}"
    );
    assert!(!first.contains("id=\"prev-page\""));
    let second = fx
        .get_as("/hosts?state=open&limit=1&offset=1", &viewer)
        .await
        .body;
    assert!(
        second.contains("<a id=\"prev-page\" rel=\"prev\" href=\"/hosts?state=open&amp;limit=1\">"),
        "{second}"
    );
    assert!(
        !second.contains("id=\"next-page\""),
        "two open findings: page 2 is the last"
    );
    let bad = fx.get_as("/hosts?state=owned", &viewer).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("state: expected"), "{}", bad.body);
}

#[tokio::test]
async fn missing_ids_are_404_pages() {
    let fx = fixture("missing");
    let viewer = fx.session("vera");
    for page in [
        "/hosts/999999",
        "/hosts/abc",
        "/hosts/-3",
        "/organisations/999999",
        "/scans/999999",
        "/campaigns/999999",
        "/triage/999999",
        "/nowhere",
    ] {
        let answer = fx.get_as(page, &viewer).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{page}");
        if page != "/nowhere" {
            assert!(
                answer.header("content-type").starts_with("text/html"),
                "{page}"
            );
            assert!(answer.body.contains("Not found"), "{page}: {}", answer.body);
        }
    }
}

#[tokio::test]
async fn pages_without_a_session_send_to_the_login() {
    let fx = fixture("no_session");
    for page in fx.pages() {
        let answer = fx.get(&page, &[]).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{page}");
        assert!(answer.header("location").starts_with("/login"), "{page}");
    }
    let login = fx.get("/login", &[]).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(
        login
            .body
            .contains("<form id=\"login\" method=\"post\" action=\"/login\">")
    );
    assert!(
        login.body.contains("name=\"_csrf\" value=\"")
            && !login.body.contains("name=\"_csrf\" value=\"\"")
    );
    assert!(!login.body.contains("<nav"));
    assert_inert("/login", &login.body);
}

#[tokio::test]
async fn analysts_retry_and_cancel_messages_from_the_campaign_page() {
    let fx = fixture("campaign_actions");
    let campaign = format!("/campaigns/{}", fx.campaign_id);
    let retry = format!("{campaign}/messages/{}/retry", fx.held_ticket);
    let cancel = format!("{campaign}/messages/{}/cancel", fx.queued_ticket);

    // Viewers see no buttons and may not post.
    let viewer = fx.session("vera");
    let page = fx.get_as(&campaign, &viewer).await.body;
    assert!(!page.contains("/retry\"") && !page.contains("/cancel\""));
    assert_eq!(
        fx.post_as(&retry, &viewer, &[]).await.status,
        StatusCode::FORBIDDEN
    );

    let analyst = fx.session("anna");
    let page = fx.get_as(&campaign, &analyst).await.body;
    assert!(
        page.contains(&format!("action=\"{retry}\"")),
        "retry for the held message"
    );
    assert!(
        page.contains(&format!("action=\"{cancel}\"")),
        "cancel for the queued one"
    );
    assert!(!page.contains(&format!("{campaign}/messages/{}/retry", fx.queued_ticket)));
    assert_forms_carry_csrf(&campaign, &page, &analyst.csrf);

    // A wrong token changes nothing.
    assert_eq!(
        fx.post_form(
            &retry,
            &[("cookie", &analyst.cookie())],
            &[("_csrf", "forged")]
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    let state = |ticket: &str| {
        fx.store()
            .outbox(Some(fx.campaign_id))
            .unwrap()
            .into_iter()
            .find(|m| m.ticket == ticket)
            .unwrap()
            .state
    };
    assert_eq!(state(&fx.held_ticket), "held");

    let answer = fx.post_as(&retry, &analyst, &[]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(
        answer.header("location"),
        format!("{campaign}?done=retried")
    );
    assert_eq!(state(&fx.held_ticket), "queued");

    let answer = fx.post_as(&cancel, &analyst, &[]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(state(&fx.queued_ticket), "cancelled");
    let page = fx
        .get_as(&format!("{campaign}?done=cancelled"), &analyst)
        .await
        .body;
    assert!(page.contains("The message is cancelled"));

    // Cancelling again changes nothing; a ticket of no such campaign is not found.
    let answer = fx.post_as(&cancel, &analyst, &[]).await;
    assert_eq!(
        answer.header("location"),
        format!("{campaign}?done=unchanged")
    );
    let elsewhere = format!("/campaigns/999999/messages/{}/cancel", fx.held_ticket);
    assert_eq!(
        fx.post_as(&elsewhere, &analyst, &[]).await.status,
        StatusCode::NOT_FOUND
    );
    let unknown = format!("{campaign}/messages/T-0/cancel");
    assert_eq!(
        fx.post_as(&unknown, &analyst, &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(state(&fx.held_ticket), "queued");
}

#[tokio::test]
async fn api_tokens_are_created_shown_once_and_revoked() {
    let fx = fixture("tokens");
    let viewer = fx.session("vera");
    let created = fx
        .post_as(
            "/account/tokens",
            &viewer,
            &[
                ("name", "ci <b>"),
                ("scope", "read"),
                ("expires_days", "30"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert!(created.header("cache-control").contains("no-store"));
    let start =
        created.body.find("<code id=\"new-token\">").unwrap() + "<code id=\"new-token\">".len();
    let secret: String = created.body[start..]
        .chars()
        .take_while(|c| *c != '<')
        .collect();
    assert!(
        secret.starts_with("wachter_") && secret.len() > 40,
        "{secret}"
    );
    assert!(created.body.contains("ci &lt;b&gt;"));
    let tokens = fx.store().tokens().unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        (tokens[0].user.as_str(), tokens[0].scope.as_str()),
        ("vera", "read")
    );
    assert!(tokens[0].expires_at.is_some());

    // The secret works for the API and is never shown again.
    let bearer = format!("Bearer {secret}");
    let me = fx.get("/api/v1/me", &[("authorization", &bearer)]).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    let account = fx.get_as("/account", &viewer).await.body;
    assert!(!account.contains(&secret));
    assert!(account.contains(&format!(
        "action=\"/account/tokens/{}/revoke\"",
        tokens[0].id
    )));

    // A viewer may not make a write token; nonsense is refused with the reason.
    for (fields, reason) in [
        (
            vec![("name", "w"), ("scope", "write")],
            "Only analysts and admins",
        ),
        (
            vec![("name", ""), ("scope", "read")],
            "Give the token a name",
        ),
        (
            vec![("name", "x"), ("scope", "read"), ("expires_days", "-1")],
            "The expiry is a number",
        ),
        (
            vec![("name", "x"), ("scope", "root")],
            "The scope is read or write",
        ),
    ] {
        let answer = fx.post_as("/account/tokens", &viewer, &fields).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{fields:?}");
        assert!(answer.body.contains(reason), "{fields:?}: {}", answer.body);
    }
    assert_eq!(fx.store().tokens().unwrap().len(), 1);

    // An analyst may; and cannot see or revoke the viewer's token.
    let analyst = fx.session("anna");
    let answer = fx
        .post_as(
            "/account/tokens",
            &analyst,
            &[("name", "w"), ("scope", "write")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let analyst_page = fx.get_as("/account", &analyst).await.body;
    assert!(!analyst_page.contains(&format!("data-token-id=\"{}\"", tokens[0].id)));
    let revoke = format!("/account/tokens/{}/revoke", tokens[0].id);
    assert_eq!(
        fx.post_as(&revoke, &analyst, &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(
        fx.store()
            .tokens()
            .unwrap()
            .iter()
            .all(|t| t.revoked_at.is_none())
    );

    // Its owner can; an admin sees everyone's.
    let answer = fx.post_as(&revoke, &viewer, &[]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.header("location"), "/account?done=revoked");
    let revoked = fx
        .store()
        .tokens()
        .unwrap()
        .into_iter()
        .find(|t| t.id == tokens[0].id)
        .unwrap();
    assert!(revoked.revoked_at.is_some());
    let admin_page = fx.get_as("/account", &fx.session("adam")).await.body;
    assert_eq!(admin_page.matches("data-token-id=").count(), 2);
}

#[tokio::test]
async fn admins_add_change_and_remove_users() {
    let fx = fixture("users");
    let admin = fx.session("adam");
    let add = |name: &'static str, password: &'static str, role: &'static str| {
        let admin = &admin;
        let fx = &fx;
        async move {
            fx.post_as(
                "/admin/users",
                admin,
                &[("name", name), ("password", password), ("role", role)],
            )
            .await
        }
    };
    let short = add("olga", "too short", "viewer").await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert!(short.body.contains("at least 12 characters"));
    assert_eq!(
        add("olga", "long enough password", "owner").await.status,
        StatusCode::BAD_REQUEST
    );
    // The name rule `wachter user add` applies: inner spaces yes, padding and control
    // characters no, at most 64 characters.
    let long_name: &'static str = "x".repeat(65).leak();
    for (name, problem) in [
        (" olga", "starts or ends with a space"),
        ("olga ", "starts or ends with a space"),
        ("ol\tga", "holds a control character"),
        ("", "is empty"),
        (long_name, "is longer than 64 characters"),
    ] {
        let refused = add(name, "long enough password", "viewer").await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{name:?}");
        assert!(
            refused.body.contains(&format!("The user name {problem}.")),
            "{name:?}: {}",
            refused.body
        );
    }
    let two_words = add("Jan de Vries", "long enough password", "viewer").await;
    assert_eq!(
        two_words.status,
        StatusCode::SEE_OTHER,
        "{}",
        two_words.body
    );
    let added = add("olga", "long enough password", "viewer").await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    assert_eq!(added.header("location"), "/admin/users?done=added");
    assert_eq!(
        add("OLGA", "long enough password", "viewer").await.status,
        StatusCode::CONFLICT
    );
    let role = |name: &str| {
        fx.store()
            .users()
            .unwrap()
            .into_iter()
            .find(|u| u.name == name)
            .map(|u| u.role)
    };
    assert_eq!(role("olga").as_deref(), Some("viewer"));

    let answer = fx
        .post_as(
            "/admin/users/role",
            &admin,
            &[("name", "olga"), ("role", "analyst")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(role("olga").as_deref(), Some("analyst"));
    let own = fx
        .post_as(
            "/admin/users/role",
            &admin,
            &[("name", "adam"), ("role", "viewer")],
        )
        .await;
    assert_eq!(own.status, StatusCode::BAD_REQUEST);
    assert_eq!(role("adam").as_deref(), Some("admin"));

    let page = fx.get_as("/admin/users", &admin).await.body;
    assert!(page.contains("action=\"/admin/users/remove\""));
    assert!(page.contains("<tr data-user=\"olga\">"));
    assert_forms_carry_csrf("/admin/users", &page, &admin.csrf);
    let yourself = fx
        .post_as("/admin/users/remove", &admin, &[("name", "adam")])
        .await;
    assert_eq!(yourself.status, StatusCode::BAD_REQUEST);
    let removed = fx
        .post_as("/admin/users/remove", &admin, &[("name", "olga")])
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    assert_eq!(role("olga"), None);
    let again = fx
        .post_as("/admin/users/remove", &admin, &[("name", "olga")])
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn assets_are_embedded_with_their_types() {
    let fx = fixture("assets");
    for (name, content_type) in [
        ("app.css", "text/css"),
        ("app.js", "text/javascript"),
        ("uPlot.iife.min.js", "text/javascript"),
        ("uPlot.min.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let answer = fx.get(&format!("/assets/{name}"), &[]).await;
        assert_eq!(answer.status, StatusCode::OK, "{name}");
        assert!(
            answer.header("content-type").starts_with(content_type),
            "{name}"
        );
        assert_eq!(answer.header("x-content-type-options"), "nosniff");
        assert!(answer.header("cache-control").contains("max-age"), "{name}");
        let etag = answer.header("etag").to_string();
        let cached = fx
            .get(&format!("/assets/{name}"), &[("if-none-match", &etag)])
            .await;
        assert_eq!(cached.status, StatusCode::NOT_MODIFIED, "{name}");
    }
    for missing in ["/assets/nope.js", "/assets/..%2FCargo.toml", "/assets/"] {
        assert_eq!(
            fx.get(missing, &[]).await.status,
            StatusCode::NOT_FOUND,
            "{missing}"
        );
    }
}
