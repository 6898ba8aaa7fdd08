//! The JSON API through the whole router: lists, details, filters, CSV, outbox actions and
//! the OpenAPI document.

mod support;

use axum::body::Body;
use axum::http::StatusCode;
use support::{FORMULA_HOSTNAME, ORGANISATION, fixture, request};

#[tokio::test]
async fn every_list_and_detail_answers_json() {
    let fx = fixture("api_lists");
    let viewer = fx.session("vera");
    let service = format!("/api/v1/hosts/{}", fx.service_id);
    let organisation = format!("/api/v1/organisations/{}", fx.organisation_id);
    let campaign = format!("/api/v1/campaigns/{}", fx.campaign_id);
    let messages = format!("/api/v1/campaigns/{}/messages", fx.campaign_id);
    let told = format!("/api/v1/hosts?campaign={}&state=open", fx.campaign_id);
    let triage = format!("/api/v1/triage/{}", fx.triage_id);
    let (organisation_id, campaign_id, ticket) =
        (fx.organisation_id, fx.campaign_id, fx.ticket.clone());
    // (uri, what its JSON must satisfy)
    type Check = Box<dyn Fn(&serde_json::Value) -> bool>;
    let cases: Vec<(&str, Check)> = vec![
        (
            "/api/v1/overview",
            Box::new(|v| v["totals"]["findings"] == 3),
        ),
        (
            "/api/v1/hosts",
            Box::new(|v| v["total"] == 3 && v["items"].as_array().unwrap().len() == 3),
        ),
        ("/api/v1/hosts?state=open", Box::new(|v| v["total"] == 2)),
        (
            "/api/v1/hosts?network=127.70.1.0/24",
            Box::new(|v| v["total"] == 1),
        ),
        (
            "/api/v1/hosts?limit=1&offset=1",
            Box::new(|v| {
                v["total"] == 3 && v["items"].as_array().unwrap().len() == 1 && v["offset"] == 1
            }),
        ),
        (
            "/api/v1/hosts?sector=healthcare",
            Box::new(move |v| {
                v["total"] == 2
                    && v["items"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|row| row["organisation_id"] == organisation_id)
            }),
        ),
        // The campaign's findings still open: the two it told.
        (&told, Box::new(|v| v["total"] == 2)),
        (
            &service,
            Box::new(|v| v["findings"].as_array().is_some_and(|f| !f.is_empty())),
        ),
        (
            "/api/v1/organisations",
            Box::new(move |v| {
                let all = v.as_array().unwrap();
                let org = &all[0];
                all.len() == 1
                    && org["id"] == organisation_id
                    && org["name"] == ORGANISATION
                    && org["sector"] == "Healthcare"
                    && org["services"] == 2
                    && (org["vulnerable"].as_u64(), org["mitigated"].as_u64()) == (Some(1), Some(1))
                    && org["messages_waiting"] == 1
            }),
        ),
        (
            "/api/v1/organisations?sector=HEALTHCARE",
            Box::new(|v| v.as_array().unwrap().len() == 1),
        ),
        (
            "/api/v1/organisations?sector=energy",
            Box::new(|v| v.as_array().unwrap().is_empty()),
        ),
        (
            &organisation,
            Box::new(move |v| {
                let ips: Vec<&str> = v["hosts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h["ip"].as_str().unwrap())
                    .collect();
                v["summary"]["name"] == ORGANISATION
                    && v["networks"] == serde_json::json!(["127.70.0.0/24"])
                    && v["contacts"][0]["email"] == "soc@example.test"
                    && ips == ["127.70.0.1", "127.70.0.2"]
                    && (v["hosts_total"].as_u64(), v["history_total"].as_u64())
                        == (Some(2), Some(2))
                    && v["history"].as_array().unwrap().len() == 2
                    && v["messages_total"] == 1
                    && v["messages"][0]["ticket"] == ticket.as_str()
                    && v["messages"][0]["campaign_id"] == campaign_id
                    && v["triage_reports"][0]["label"] == "noord-vpn.tar.gz"
            }),
        ),
        (
            "/api/v1/scans",
            Box::new(|v| v.as_array().unwrap().len() == 1),
        ),
        (
            "/api/v1/scans/1",
            Box::new(|v| {
                v["scan"]["id"] == 1
                    && v["scan"]["state"] == "finished"
                    && v["diff"].is_null()
                    && v["diff_entries"] == 0
            }),
        ),
        (
            "/api/v1/campaigns",
            Box::new(|v| v.as_array().unwrap().len() == 1),
        ),
        (
            &campaign,
            Box::new(|v| {
                v["summary"]["name"] == "test"
                    && v["still_open"].as_array().unwrap().len() == 2
                    && v["still_open_total"] == 2
            }),
        ),
        (&messages, Box::new(|v| v.as_array().unwrap().len() == 1)),
        (
            "/api/v1/triage",
            Box::new(move |v| {
                v.as_array().unwrap().len() == 1 && v[0]["organisation"] == ORGANISATION
            }),
        ),
        (
            &triage,
            Box::new(move |v| {
                v["summary"]["organisation_id"] == organisation_id
                    && v["summary"]["verdict"] == "clean"
                    && v["report"] == serde_json::json!({"verdict": "clean", "hits": []})
            }),
        ),
        (
            "/api/v1/me",
            Box::new(|v| v["name"] == "vera" && v["role"] == "viewer"),
        ),
    ];
    for (uri, check) in &cases {
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
        ("campaign=first", "campaign"),
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

    // The campaign page's "still open" download.
    let still_open = fx
        .get_as(
            &format!(
                "/api/v1/hosts?format=csv&campaign={}&state=open",
                fx.campaign_id
            ),
            &viewer,
        )
        .await;
    assert_eq!(still_open.status, StatusCode::OK);
    assert_eq!(still_open.body.lines().count(), 3, "{}", still_open.body);

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
    let host_filters: Vec<&str> = paths["/api/v1/hosts"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for filter in [
        "cve",
        "state",
        "organisation",
        "sector",
        "network",
        "since",
        "until",
        "campaign",
        "offset",
        "limit",
        "format",
    ] {
        assert!(
            host_filters.contains(&filter),
            "{filter} in {host_filters:?}"
        );
    }
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
