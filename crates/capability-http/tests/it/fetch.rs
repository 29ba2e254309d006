//! Allowed calls: responses, bodies, headers, redirects, and the limits on them.

use std::time::Duration;

use runtime::OutboundError;

use crate::{body_text, config, deployment, entries, factory, failed, get, outbound, request, upstream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_when_the_operator_allows_loopback_and_the_app_lists_the_host() {
    let upstream = upstream::start().await;
    let port = upstream.port;
    let outbound = outbound(
        config(&["127.0.0.1/32"]),
        &entries(&[&format!("upstream.test:{port}"), &format!("127.0.0.1:{port}")]),
    );
    for url in [format!("http://upstream.test:{port}/hello"), format!("http://127.0.0.1:{port}/hello")] {
        let response = get(&outbound, &url).await.unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(body_text(&response), "hello");
        assert_eq!(response.url, url);
        assert!(response.headers.iter().any(|(name, value)| name == "content-type" && value.starts_with("text/plain")));
    }
    assert_eq!(upstream.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_headers_and_body_reach_the_upstream() {
    let upstream = upstream::start().await;
    let port = upstream.port;
    let outbound = outbound(config(&["127.0.0.1/32"]), &entries(&[&format!("upstream.test:{port}")]));
    let url = format!("http://upstream.test:{port}/echo");
    let headers = [("Content-Type", "application/json"), ("X-Custom", "yes"), ("Host", "elsewhere.test")];
    let response = outbound.fetch(request("post", &url, &headers, r#"{"a":1}"#)).await.unwrap();
    let echo = body_text(&response);
    assert!(echo.contains("method=POST\n"), "{echo}");
    // The app's Host header is dropped: the URL decides where the request goes.
    assert!(echo.contains(&format!("host=upstream.test:{port}\n")), "{echo}");
    assert!(echo.contains("content-type=application/json\n"), "{echo}");
    assert!(echo.contains("x-custom=yes\n"), "{echo}");
    assert!(echo.contains("body={\"a\":1}\n"), "{echo}");
    // The platform's User-Agent unless the app sets its own.
    assert!(echo.contains("user-agent=terrarium-test/1\n"), "{echo}");
    let response = outbound.fetch(request("GET", &url, &[("User-Agent", "my-app")], "")).await.unwrap();
    assert!(body_text(&response).contains("user-agent=my-app\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_body_is_capped() {
    let upstream = upstream::start().await;
    let port = upstream.port;
    let mut config = config(&["127.0.0.1/32"]);
    config.max_response_bytes = 3000;
    let outbound = outbound(config, &entries(&[&format!("upstream.test:{port}")]));

    let at_limit = get(&outbound, &format!("http://upstream.test:{port}/big/3000")).await.unwrap();
    assert_eq!(at_limit.body.len(), 3000);
    let streamed_at_limit = get(&outbound, &format!("http://upstream.test:{port}/stream/3000")).await.unwrap();
    assert_eq!(streamed_at_limit.body.len(), 3000);

    // Refused from its Content-Length, and while streaming when there is none.
    for path in ["big/3001", "stream/100000"] {
        let url = format!("http://upstream.test:{port}/{path}");
        let message = failed(&url, get(&outbound, &url).await);
        assert_eq!(
            message,
            "fetch to \"upstream.test\" failed: the response body is larger than the limit of 3000 bytes"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_followed_within_the_allow_list() {
    let upstream = upstream::start().await;
    let port = upstream.port;
    let outbound = outbound(
        config(&["127.0.0.1/32"]),
        &entries(&[&format!("upstream.test:{port}"), &format!("other.test:{port}")]),
    );
    let credentials = [("Authorization", "Bearer app-token"), ("Cookie", "session=1"), ("Content-Type", "text/plain")];
    let redirect = |to: &str, status: u16| format!("http://upstream.test:{port}/redirect?status={status}&to={to}");

    // Same origin: credentials stay.
    let url = redirect("/echo", 302);
    let response = outbound.fetch(request("GET", &url, &credentials, "")).await.unwrap();
    assert_eq!(response.url, format!("http://upstream.test:{port}/echo"));
    assert!(
        body_text(&response).contains("authorization=Bearer app-token\ncookie=session=1\n"),
        "{}",
        body_text(&response)
    );

    // Another host: Authorization and Cookie are dropped.
    let url = redirect(&format!("http://other.test:{port}/echo"), 302);
    let response = outbound.fetch(request("GET", &url, &credentials, "")).await.unwrap();
    assert_eq!(response.url, format!("http://other.test:{port}/echo"));
    assert!(body_text(&response).contains("authorization=-\ncookie=-\n"), "{}", body_text(&response));

    // 303 turns a POST into a GET without a body.
    let url = redirect("/echo", 303);
    let response = outbound.fetch(request("POST", &url, &credentials, "payload")).await.unwrap();
    let echo = body_text(&response);
    assert!(echo.contains("method=GET\n") && echo.contains("body=\n") && echo.contains("content-type=-\n"), "{echo}");

    // 307 keeps the method and the body.
    let url = redirect("/echo", 307);
    let response = outbound.fetch(request("POST", &url, &credentials, "payload")).await.unwrap();
    let echo = body_text(&response);
    assert!(echo.contains("method=POST\n") && echo.contains("body=payload\n"), "{echo}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_limited() {
    let upstream = upstream::start().await;
    let port = upstream.port;
    let mut config = config(&["127.0.0.1/32"]);
    config.max_redirects = 3;
    let outbound = outbound(config, &entries(&[&format!("upstream.test:{port}")]));

    let response = get(&outbound, &format!("http://upstream.test:{port}/loop/0?until=3")).await.unwrap();
    assert_eq!(body_text(&response), "done after 3 redirects");

    let url = format!("http://upstream.test:{port}/loop/0?until=4");
    let message = failed(&url, get(&outbound, &url).await);
    assert_eq!(message, "fetch to \"upstream.test\" failed: more than 3 redirects");
    // The fourth redirect was received but not followed.
    assert_eq!(upstream.hits(), 4 + 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upstream_times_out() {
    let upstream = upstream::start().await;
    let port = upstream.port;
    let mut config = config(&["127.0.0.1/32"]);
    config.timeout = Duration::from_millis(300);
    let outbound = outbound(config, &entries(&[&format!("upstream.test:{port}")]));
    let url = format!("http://upstream.test:{port}/slow");
    let message = failed(&url, get(&outbound, &url).await);
    assert_eq!(message, "fetch to \"upstream.test\" failed: no complete response within 300 ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_errors_are_failures_not_denials() {
    // A port that nothing listens on.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let outbound = outbound(config(&["127.0.0.1/32"]), &entries(&[&format!("upstream.test:{port}"), "nowhere.test"]));
    let url = format!("http://upstream.test:{port}/");
    let message = failed(&url, get(&outbound, &url).await);
    assert!(message.starts_with("fetch to \"upstream.test\" failed: could not connect"), "{message}");

    let message = failed("nowhere.test", get(&outbound, "http://nowhere.test/").await);
    assert!(message.starts_with("fetch to \"nowhere.test\" failed: could not resolve \"nowhere.test\""), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_can_be_awaited_from_a_thread_without_a_runtime() {
    let upstream = upstream::start().await;
    let port = upstream.port;
    let outbound = outbound(config(&["127.0.0.1/32"]), &entries(&[&format!("upstream.test:{port}")]));
    let url = format!("http://upstream.test:{port}/hello");
    // Like the JavaScript engine's threads: no tokio runtime there, just a plain executor.
    let response =
        std::thread::spawn(move || futures::executor::block_on(outbound.fetch(request("GET", &url, &[], ""))))
            .join()
            .unwrap()
            .unwrap();
    assert_eq!(body_text(&response), "hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_allow_list_entries_are_reported_together() {
    let factory = factory(config(&[]));
    let errors = match factory.for_deployment(&deployment(&entries(&["*", "api.example.com", "*.com", "a/b"]))) {
        Ok(_) => panic!("the allow list should be refused"),
        Err(errors) => errors,
    };
    let indexes: Vec<usize> = errors.iter().map(|error| error.index).collect();
    assert_eq!(indexes, [0, 2, 3]);
    assert!(errors[0].to_string().starts_with("spec.allowedEgress[0] \"*\": \"*\" would allow every host"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_never_contain_paths_queries_headers_or_bodies() {
    let upstream = upstream::start().await;
    let port = upstream.port;
    let mut config = config(&["127.0.0.1/32"]);
    config.max_response_bytes = 10;
    let outbound = outbound(config, &entries(&[&format!("upstream.test:{port}")]));
    let headers = [("Authorization", "Bearer hunter2-header")];
    let urls = [
        "http://evil.test/secret-path?key=hunter2-query".to_owned(),
        format!("http://upstream.test:{port}/big/100?key=hunter2-query"),
        format!("http://upstream.test:{}/secret-path?key=hunter2-query", port + 1),
    ];
    for url in urls {
        let error = outbound.fetch(request("POST", &url, &headers, "hunter2-body")).await.unwrap_err();
        let message = match &error {
            OutboundError::Denied { message } | OutboundError::Failed { message } => message,
        };
        assert!(!message.contains("hunter2") && !message.contains("secret-path"), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internal_range_can_be_allowed_for_one_namespace_only() {
    let upstream = upstream::start().await;
    let port = upstream.port;
    let mut config = config(&[]);
    config.allowed_internal_by_namespace.insert("growth".to_owned(), vec!["127.0.0.1/32".parse().unwrap()]);
    let factory = factory(config);
    let listed = entries(&[&format!("upstream.test:{port}")]);
    let mut growth = deployment(&listed);
    let growth_fetch = factory.for_deployment(&growth).unwrap();
    let url = format!("http://upstream.test:{port}/hello");
    let response = get(&growth_fetch, &url).await.unwrap();
    assert_eq!(response.status, 200);

    growth.app = ::deployment::AppKey::new("finance", "where2eat");
    let finance_fetch = factory.for_deployment(&growth).unwrap();
    let request = request("GET", &url, &[], "");
    let message = crate::denied(&url, finance_fetch.fetch(request).await);
    assert!(message.contains("loopback"), "{message}");
    assert_eq!(upstream.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_calls_are_recorded_with_the_address_status_and_sizes() {
    let upstream = upstream::start().await;
    let port = upstream.port;
    let outbound = outbound(config(&["127.0.0.1/32"]), &entries(&[&format!("upstream.test:{port}")]));
    let request = request("POST", &format!("http://upstream.test:{port}/big/1234"), &[], "12345");
    let request_id = request.request_id.clone();
    outbound.fetch(request).await.unwrap();
    let record = crate::record_of(&request_id);
    assert_eq!(record.host, "upstream.test");
    assert_eq!(record.address, Some("127.0.0.1".parse().unwrap()));
    assert_eq!((record.status, record.bytes_out, record.bytes_in), (Some(200), 5, 1234));
    assert_eq!(record.method, "POST");
}

/// Mints a recognisable token per app and audience.
struct FixedTokens;

impl capability_http::AppTokens for FixedTokens {
    fn token(&self, app: &::deployment::AppKey, audience: &str) -> Result<String, String> {
        Ok(format!("token-for-{}-{}-{audience}", app.namespace, app.name))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_apis_get_the_platform_token_and_never_the_apps_own() {
    let upstream = upstream::start().await;
    let port = upstream.port;
    let mut config = config(&["127.0.0.1/32"]);
    config.internal_apis =
        vec![capability_http::InternalApi { host: "upstream.test".into(), audience: "billing".into() }];
    let factory = factory(config).with_app_tokens(std::sync::Arc::new(FixedTokens));
    let listed = entries(&[&format!("upstream.test:{port}"), &format!("other.test:{port}")]);
    let outbound = factory.for_deployment(&deployment(&listed)).unwrap();
    let headers = [("Authorization", "Bearer forged-by-the-app")];
    let response =
        outbound.fetch(request("GET", &format!("http://upstream.test:{port}/echo"), &headers, "")).await.unwrap();
    let echo = body_text(&response);
    assert!(echo.contains("authorization=Bearer token-for-growth-where2eat-billing\n"), "{echo}");
    assert!(!echo.contains("forged"), "{echo}");
    // Another host gets what the app sent, and never the platform's token.
    let response =
        outbound.fetch(request("GET", &format!("http://other.test:{port}/echo"), &headers, "")).await.unwrap();
    let echo = body_text(&response);
    assert!(echo.contains("authorization=Bearer forged-by-the-app\n") && !echo.contains("token-for"), "{echo}");
}
