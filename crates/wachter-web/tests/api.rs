//! The JSON API through the whole router: lists, details, filters, CSV, outbox actions and
//! the OpenAPI document.

mod support;

use axum::body::Body;
use axum::http::StatusCode;
use support::{FORMULA_HOSTNAME, fixture, request};

#[tokio::test]
async fn every_list_and_detail_answers_json() {
    let fx = fixture("api_lists");
    let viewer = fx.session("vera");
    let service = format!("/api/v1/hosts/{}", fx.service_id);
    let campaign = format!("/api/v1/campaigns/{}", fx.campaign_id);
    let messages = format!("/api/v1/campaigns/{}/messages", fx.campaign_id);
    // (uri, what its JSON must satisfy)
    type Check = fn(&serde_json::Value) -> bool;
    let cases: &[(&str, Check)] = &[
        ("/api/v1/overview", |v| v["totals"]["findings"] == 3),
        ("/api/v1/hosts", |v| {
            v["total"] == 3 && v["items"].as_array().unwrap().len() == 3
        }),
        ("/api/v1/hosts?state=open", |v| v["total"] == 2),
        ("/api/v1/hosts?network=127.70.1.0/24", |v| v["total"] == 1),
        ("/api/v1/hosts?limit=1&offset=1", |v| {
            v["total"] == 3 && v["items"].as_array().unwrap().len() == 1 && v["offset"] == 1
        }),
        (&service, |v| {
            v["findings"].as_array().is_some_and(|f| !f.is_empty())
        }),
        ("/api/v1/organisations", |v| v.is_array()),
        ("/api/v1/scans", |v| v.as_array().unwrap().len() == 1),
        ("/api/v1/scans/1", |v| v["scan"]["id"] == 1),
        ("/api/v1/campaigns", |v| v.as_array().unwrap().len() == 1),
        (&campaign, |v| v["summary"]["name"] == "test"),
        (&messages, |v| v.as_array().unwrap().len() == 1),
        ("/api/v1/triage", |v| v.as_array().unwrap().is_empty()),
        ("/api/v1/me", |v| {
            v["name"] == "vera" && v["role"] == "viewer"
        }),
    ];
    for (uri, check) in cases {
        let answer = fx.get_as(uri, &viewer).await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}: {}", answer.body);
        assert!(
            answer
                .header("content-type")
                .starts_with("application/json"),
            "{uri}"
        );
        assert!(check(&answer.json()), "{uri}: {}", answer.body);
    }
}

#[tokio::test]
async fn missing_ids_are_404_and_malformed_ids_400() {
    let fx = fixture("api_missing");
    let viewer = fx.session("vera");
    let cases = [
        ("/api/v1/hosts/999999", StatusCode::NOT_FOUND),
        ("/api/v1/organisations/999999", StatusCode::NOT_FOUND),
        ("/api/v1/scans/999999", StatusCode::NOT_FOUND),
        ("/api/v1/campaigns/999999", StatusCode::NOT_FOUND),
        ("/api/v1/campaigns/999999/messages", StatusCode::NOT_FOUND),
        ("/api/v1/triage/999999", StatusCode::NOT_FOUND),
        ("/api/v1/hosts/abc", StatusCode::BAD_REQUEST),
        ("/api/v1/scans/-1", StatusCode::BAD_REQUEST),
    ];
    for (uri, expected) in cases {
        let answer = fx.get_as(uri, &viewer).await;
        assert_eq!(answer.status, expected, "{uri}: {}", answer.body);
        assert!(answer.json()["error"].is_string(), "{uri}");
    }
}

#[tokio::test]
async fn a_bad_filter_is_a_400_that_names_the_field() {
    let fx = fixture("api_filters");
    let viewer = fx.session("vera");
    let cases = [
        ("cve=CVE-19-1", "cve"),
        ("state=owned", "state"),
        ("organisation=acme", "organisation"),
        ("network=10.0.0.0/99", "network"),
        ("since=last%20week", "since"),
        ("until=2026-02-30", "until"),
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("offset=-5", "offset"),
        ("format=xlsx", "format"),
    ];
    for (query, field) in cases {
        let uri = format!("/api/v1/hosts?{query}");
        let answer = fx.get_as(&uri, &viewer).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}");
        let error = answer.json()["error"].as_str().unwrap().to_string();
        assert!(error.starts_with(&format!("{field}: ")), "{query}: {error}");
    }
    let answer = fx.get_as("/api/v1/scans?format=pdf", &viewer).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("format: ")
    );
}

#[tokio::test]
async fn every_list_downloads_as_csv_with_formulas_neutralised() {
    let fx = fixture("api_csv");
    let viewer = fx.session("vera");
    let messages = format!("/api/v1/campaigns/{}/messages?format=csv", fx.campaign_id);
    let cases = [
        (
            "/api/v1/hosts?format=csv",
            "wachter-hosts.csv",
            "finding_id,service_id,ip,port,hostname",
        ),
        (
            "/api/v1/organisations?format=csv",
            "wachter-organisations.csv",
            "id,name,sector",
        ),
        (
            "/api/v1/scans?format=csv",
            "wachter-scans.csv",
            "id,started_at",
        ),
        (
            "/api/v1/campaigns?format=csv",
            "wachter-campaigns.csv",
            "id,name,cve",
        ),
        (
            &messages,
            &format!("wachter-campaign-{}-messages.csv", fx.campaign_id),
            "ticket,campaign_id",
        ),
        (
            "/api/v1/triage?format=csv",
            "wachter-triage.csv",
            "id,imported_at",
        ),
    ];
    for (uri, filename, header) in cases {
        let answer = fx.get_as(uri, &viewer).await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}: {}", answer.body);
        assert_eq!(
            answer.header("content-type"),
            "text/csv; charset=utf-8",
            "{uri}"
        );
        assert_eq!(
            answer.header("content-disposition"),
            format!("attachment; filename=\"{filename}\""),
            "{uri}"
        );
        assert!(answer.body.starts_with(header), "{uri}: {}", answer.body);
    }

    let hosts = fx.get_as("/api/v1/hosts?format=csv&limit=1", &viewer).await;
    let lines: Vec<&str> = hosts.body.lines().collect();
    assert_eq!(
        lines.len(),
        4,
        "every row, whatever the page: {}",
        hosts.body
    );
    // The hostile hostname is a text cell starting with a quote, never a formula.
    let neutralised = format!("\"'{}\"", FORMULA_HOSTNAME.replace('"', "\"\""));
    assert!(hosts.body.contains(&neutralised), "{}", hosts.body);
    assert!(!hosts.body.contains(",=HYPERLINK") && !hosts.body.contains(",\"=HYPERLINK"));

    let filtered = fx
        .get_as("/api/v1/hosts?format=csv&state=patched", &viewer)
        .await;
    assert_eq!(filtered.body.lines().count(), 2, "{}", filtered.body);

    let told = fx.get_as(&messages, &viewer).await;
    assert!(told.body.contains(",'@SUM(1+1),"), "{}", told.body);
}

#[tokio::test]
async fn outbox_actions_need_an_analyst_and_change_the_message() {
    let fx = fixture("api_outbox");
    let analyst = fx.session("anna");
    let viewer = fx.session("vera");
    let act = |session: &support::Session, action: &str, ticket: &str| {
        let cookie = session.cookie();
        let csrf = session.csrf.clone();
        let uri = format!("/api/v1/messages/{ticket}/{action}");
        request(
            "POST",
            &uri,
            &[("cookie", &cookie), ("x-csrf-token", &csrf)],
            Body::empty(),
        )
    };
    let answer = fx.send(act(&viewer, "cancel", &fx.ticket)).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "a viewer may not");

    let answer = fx.send(act(&analyst, "retry", &fx.ticket)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json()["changed"],
        0,
        "a queued message is not held: nothing to retry"
    );

    let answer = fx.send(act(&analyst, "cancel", &fx.ticket)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.json()["changed"], 1);
    let messages = fx
        .get_as(
            &format!("/api/v1/campaigns/{}/messages", fx.campaign_id),
            &viewer,
        )
        .await;
    assert_eq!(messages.json()[0]["state"], "cancelled");

    for ticket in ["T-99999999", "..%2F..%2Fetc"] {
        let answer = fx.send(act(&analyst, "cancel", ticket)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{ticket}");
    }
}

#[tokio::test]
async fn the_openapi_document_is_public_and_lists_every_route() {
    let fx = fixture("api_openapi");
    let answer = fx.get("/api/v1/openapi.json", &[]).await;
    assert_eq!(answer.status, StatusCode::OK);
    let document = answer.json();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document["paths"].as_object().unwrap();
    for (method, path, _) in wachter_web::api::ROUTES {
        let full = format!("{}{path}", wachter_web::api::PREFIX);
        assert!(
            paths
                .get(&full)
                .and_then(|item| item.get(*method))
                .is_some(),
            "{method} {full} is not documented"
        );
    }
    let documented: usize = paths
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        wachter_web::api::ROUTES.len(),
        "nothing undocumented, nothing extra"
    );
    // Every documented route answers something other than 404/405 (the table is the router).
    let cookie = fx.session("vera").cookie();
    for (method, path, _) in wachter_web::api::ROUTES {
        let uri = format!(
            "{}{}",
            wachter_web::api::PREFIX,
            path.replace("{id}", "1").replace("{ticket}", &fx.ticket)
        );
        let answer = fx
            .send(request(
                &method.to_uppercase(),
                &uri,
                &[("cookie", &cookie)],
                Body::empty(),
            ))
            .await;
        assert!(
            answer.status != StatusCode::NOT_FOUND || answer.json()["error"] == "not found",
            "{method} {uri}: {}",
            answer.status
        );
        assert_ne!(
            answer.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri}"
        );
    }
}
