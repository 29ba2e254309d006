//! Hello world, env, console, ctx.waitUntil, timers, fetch, concurrency and isolation.

use std::time::{Duration, Instant};

use runtime::{InvokeError, LogLevel};

use crate::support::{AppBuilder, app, engine, header, request};

#[tokio::test]
async fn hello_world() {
    let engine = engine();
    let hello =
        app(&engine, "hello", r#"export default { async fetch(request) { return new Response("Hello, world!"); } };"#);
    let response = hello.get("/").await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(&response.body[..], b"Hello, world!");
    assert_eq!(header(&response, "content-type"), Some("text/plain;charset=UTF-8"));
    // The warm instance answers again.
    assert_eq!(hello.text("/").await, "Hello, world!");
}

#[tokio::test]
async fn env_holds_the_deployment_vars() {
    let engine = engine();
    let source = r#"export default { fetch(request, env) { return Response.json({ greeting: env.GREETING, missing: env.MISSING ?? null, frozen: Object.isFrozen(env) }); } };"#;
    let app = AppBuilder::new("vars", source).var("GREETING", "hoi").load(&engine).unwrap();
    assert_eq!(app.json("/").await, serde_json::json!({ "greeting": "hoi", "missing": null, "frozen": true }));
}

#[tokio::test]
async fn console_goes_to_the_log_with_the_request_id() {
    let engine = engine();
    let source = r#"
        export default {
            fetch() {
                console.log("plain", 42, { a: [1, 2] }, null, undefined);
                console.info("info %s has %d items", "list", 3);
                console.warn("careful");
                console.error(new TypeError("bad thing"));
                console.debug("details");
                const cycle = { name: "loop" }; cycle.self = cycle;
                console.log(cycle);
                return new Response("ok");
            }
        };
    "#;
    let app = app(&engine, "console", source);
    let request = request("GET", "/");
    let request_id = request.request_id.clone();
    app.call(request).await.unwrap();
    let log = &app.log;
    assert!(log.has(&request_id, LogLevel::Info, r#"plain 42 {"a":[1,2]} null undefined"#), "{:#?}", log.lines());
    assert!(log.has(&request_id, LogLevel::Info, "info list has 3 items"));
    assert!(log.has(&request_id, LogLevel::Warn, "careful"));
    assert!(log.has(&request_id, LogLevel::Error, "TypeError: bad thing"));
    assert!(log.has(&request_id, LogLevel::Debug, "details"));
    assert!(log.has(&request_id, LogLevel::Info, r#"{"name":"loop","self":"[Circular]"}"#));
    assert!(log.lines().iter().all(|line| line.app.name == "console"));
}

#[tokio::test]
async fn timers_run_and_waiting_is_not_cpu_time() {
    let engine = engine();
    let source = r#"
        const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
        export default {
            async fetch() {
                const order = [];
                const cancelled = setTimeout(() => order.push("cancelled"), 10);
                clearTimeout(cancelled);
                setTimeout((word) => order.push(word), 20, "second");
                setTimeout(() => order.push("first"), 5);
                let ticks = 0;
                await new Promise((resolve) => { const id = setInterval(() => { if (++ticks === 3) { clearInterval(id); resolve(); } }, 5); });
                // 300 ms of waiting with a CPU limit of 100 ms.
                await sleep(300);
                return Response.json({ order, ticks });
            }
        };
    "#;
    let app = app(&engine, "timers", source);
    let started = Instant::now();
    assert_eq!(app.json("/").await, serde_json::json!({ "order": ["first", "second"], "ticks": 3 }));
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn wait_until_runs_after_the_response() {
    let engine = engine();
    let source = r#"
        export default {
            fetch(request, env, ctx) {
                ctx.passThroughOnException();
                ctx.waitUntil(new Promise((resolve) => setTimeout(resolve, 1000)).then(() => console.log("background done")));
                ctx.waitUntil(Promise.reject(new Error("background failed")));
                return new Response("sent");
            }
        };
    "#;
    let app = app(&engine, "wait-until", source);
    let request = request("GET", "/");
    let request_id = request.request_id.clone();
    let response = app.call(request).await.unwrap();
    assert_eq!(&response.body[..], b"sent");
    assert!(!app.log.has(&request_id, LogLevel::Info, "background done"), "the response waited for waitUntil");
    // The background work finishes after the response (a second later), however busy the machine.
    let mut waited = Duration::ZERO;
    while !app.log.has(&request_id, LogLevel::Info, "background done") {
        assert!(waited < Duration::from_secs(60), "the background work never finished: {:#?}", app.log.lines());
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    assert!(app.log.has(&request_id, LogLevel::Error, "background failed"));
}

#[tokio::test]
async fn fetch_goes_through_the_outbound_capability() {
    let engine = engine();
    let source = r#"
        export default {
            async fetch(request) {
                const path = new URL(request.url).pathname;
                if (path === "/echo") {
                    const response = await fetch("https://api.example.test/items?x=1", {
                        method: "POST", headers: { "X-Token": "t" }, body: JSON.stringify({ a: 1 }),
                    });
                    const data = await response.json();
                    return Response.json({ status: response.status, ok: response.ok, upstream: response.headers.get("x-upstream"), url: response.url, data });
                }
                if (path === "/request-object") {
                    const response = await fetch(new Request("https://api.example.test/r", { method: "PUT", body: "raw" }));
                    return new Response(response.body, { headers: { "content-type": "application/json" } });
                }
                if (path === "/denied") {
                    try { await fetch("https://denied.test/"); return new Response("no error"); }
                    catch (error) { return Response.json({ name: error.name, message: error.message }); }
                }
                if (path === "/failing") {
                    try { await fetch("https://failing.test/"); return new Response("no error"); }
                    catch (error) { return Response.json({ name: error.name, message: error.message }); }
                }
                if (path === "/too-many") {
                    const results = [];
                    for (let i = 0; i < 4; i++) {
                        try { await fetch("https://api.example.test/" + i); results.push("ok"); }
                        catch (error) { results.push(error.message); }
                    }
                    return Response.json(results);
                }
                if (path === "/bad-scheme") {
                    try { await fetch("file:///etc/passwd"); return new Response("no error"); }
                    catch (error) { return new Response(error.message); }
                }
                return new Response("unknown", { status: 404 });
            }
        };
    "#;
    let app = app(&engine, "fetcher", source);
    let echoed = app.json("/echo").await;
    assert_eq!(echoed["status"], 200);
    assert_eq!(echoed["ok"], true);
    assert_eq!(echoed["upstream"], "api.example.test");
    assert_eq!(echoed["url"], "https://api.example.test/items?x=1");
    assert_eq!(echoed["data"]["method"], "POST");
    assert_eq!(echoed["data"]["body"], r#"{"a":1}"#);
    let sent_headers = echoed["data"]["headers"].as_array().unwrap();
    assert!(sent_headers.contains(&serde_json::json!(["x-token", "t"])), "{sent_headers:?}");
    assert!(sent_headers.contains(&serde_json::json!(["content-type", "text/plain;charset=UTF-8"])));
    assert!(echoed["data"]["request_id"].as_str().unwrap().starts_with("req-"));

    let forwarded = app.json("/request-object").await;
    assert_eq!(forwarded["method"], "PUT");
    assert_eq!(forwarded["body"], "raw");

    let denied = app.json("/denied").await;
    assert_eq!(denied["name"], "TypeError");
    assert_eq!(denied["message"], "egress to denied.test is not allowed: add it to spec.allowedEgress");
    assert_eq!(app.json("/failing").await["message"], "connection refused");

    let before = app.outbound.requests.lock().unwrap().len();
    let limited = app.json("/too-many").await;
    assert_eq!(
        app.outbound.requests.lock().unwrap().len() - before,
        3,
        "the fourth fetch never reaches the capability"
    );
    assert_eq!(limited[0], "ok");
    assert_eq!(limited[2], "ok");
    assert!(limited[3].as_str().unwrap().contains("outbound requests"), "{limited}");
    assert!(app.text("/bad-scheme").await.contains("not supported"));
}

#[tokio::test]
async fn awaiting_a_slow_fetch_is_not_cpu_time_and_requests_overlap() {
    let engine = engine();
    let source = r#"
        let counter = 0;
        export default {
            async fetch() {
                const response = await fetch("https://slow.test/");
                return Response.json({ status: response.status, counter: ++counter });
            }
        };
    "#;
    let app = app(&engine, "slow", source);
    let started = Instant::now();
    let calls = (0..4).map(|_| app.get("/"));
    let results = futures::future::join_all(calls).await;
    for result in results {
        assert_eq!(result.unwrap().status, 200);
    }
    // Four requests of 300 ms each on four instances: together well under 4 × 300 ms.
    assert!(started.elapsed() < Duration::from_millis(900), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn globals_of_one_app_are_invisible_to_another() {
    let engine = engine();
    let writer = app(
        &engine,
        "writer",
        r#"
        globalThis.secret = "from A";
        Object.prototype.polluted = "yes";
        export default { fetch() { globalThis.count = (globalThis.count ?? 0) + 1; return new Response(String(globalThis.count)); } };
    "#,
    );
    let reader = app(
        &engine,
        "reader",
        r#"
        export default { fetch() { return Response.json({ secret: globalThis.secret ?? null, polluted: ({}).polluted ?? null, count: globalThis.count ?? null }); } };
    "#,
    );
    assert_eq!(writer.text("/").await, "1");
    assert_eq!(writer.text("/").await, "2");
    assert_eq!(reader.json("/").await, serde_json::json!({ "secret": null, "polluted": null, "count": null }));
}

#[tokio::test]
async fn unknown_entries_and_dropped_apps() {
    let engine = engine();
    let hello = app(&engine, "entries", r#"export default { fetch() { return new Response("hi"); } };"#);
    let error = hello.app.invoke("functions/other.js", request("GET", "/")).await.unwrap_err();
    assert!(matches!(error, InvokeError::Load(_)), "{error:?}");
    // A request in flight keeps working when the app is dropped meanwhile.
    let pending = hello.app.invoke(crate::support::ENTRY, request("GET", "/"));
    drop(hello);
    assert_eq!(&pending.await.unwrap().body[..], b"hi");
}

#[tokio::test]
async fn idle_instances_are_dropped_after_the_timeout() {
    let engine = engine_js::JsEngine::new(engine_js::JsEngineConfig {
        worker_threads: 1,
        worker_stack_bytes: 4 * 1024 * 1024,
        queue_capacity_per_worker: 16,
        max_instances_per_app: 1,
        idle_instances_per_app: 1,
        idle_instance_timeout: Some(Duration::from_millis(200)),
    });
    let counter = app(
        &engine,
        "counter",
        r#"let count = 0; export default { fetch() { return new Response(String(++count)); } };"#,
    );
    assert_eq!(counter.text("/").await, "1");
    assert_eq!(counter.text("/").await, "2", "the warm instance is reused");
    // Idle for longer each time (a call makes the instance busy again) until the sweep ends it.
    let mut idle = Duration::from_millis(600);
    loop {
        tokio::time::sleep(idle).await;
        if counter.text("/").await == "1" {
            break;
        }
        assert!(idle < Duration::from_secs(30), "the idle instance was never released");
        idle *= 2;
    }
}

#[tokio::test]
async fn log_lines_and_timers_per_request_are_bounded() {
    let engine = engine();
    let source = r#"
        export default {
            fetch(request) {
                if (request.url.endsWith("/timers")) { for (let i = 0; i < 20000; i++) setTimeout(() => {}, 1000); }
                for (let i = 0; i < 2000; i++) console.log("line", i);
                console.log("x".repeat(100000));
                return new Response("ok");
            }
        };
    "#;
    // Twenty thousand timers take a while in an unoptimised build: give the CPU limit room.
    let mut roomy = crate::support::limits();
    roomy.cpu_ms_per_request = 5000;
    let app = AppBuilder::new("chatty", source).limits(roomy).load(&engine).unwrap();
    let request = request("GET", "/");
    let request_id = request.request_id.clone();
    app.call(request).await.unwrap();
    let lines: Vec<_> = app.log.lines().into_iter().filter(|line| line.request_id == request_id).collect();
    assert_eq!(lines.len(), 1000);
    assert!(lines[999].message.contains("further log lines of this request are dropped"), "{}", lines[999].message);

    let error = app.get("/timers").await.unwrap_err();
    assert!(error.to_string().contains("timers, the limit"), "{error}");
}

#[tokio::test]
async fn long_log_lines_are_truncated() {
    let engine = engine();
    let app = app(
        &engine,
        "verbose",
        r#"export default { fetch() { console.log("é".repeat(20000)); return new Response("ok"); } };"#,
    );
    let request = request("GET", "/");
    let request_id = request.request_id.clone();
    app.call(request).await.unwrap();
    let line = app.log.lines().into_iter().find(|line| line.request_id == request_id).unwrap();
    assert!(line.message.len() < 17 * 1024 && line.message.ends_with("(truncated)"), "{}", line.message.len());
}

#[tokio::test]
async fn changing_object_prototype_does_not_break_the_prelude() {
    let engine = engine();
    let source = r#"
        let seen = 0;
        Object.defineProperty(Object.prototype, "isStream", { get() { seen++; return () => true; }, configurable: true });
        Object.defineProperty(Object.prototype, "value", { get() { seen++; return "hijacked"; }, set(v) {}, configurable: true });
        Object.assign = () => { throw new Error("replaced"); };
        export default { async fetch() {
            const url = new URL("https://example.com/?a=1");
            const response = new Response(new ReadableStream({ start(c) { c.enqueue("streamed " + url.searchParams.get("a")); c.close(); } }));
            return new Response(await response.text() + " " + seen);
        } };
    "#;
    let app = app(&engine, "polluter", source);
    assert_eq!(app.text("/").await, "streamed 1 0");
}

#[tokio::test]
async fn env_user_is_the_signed_in_user_or_null() {
    let engine = engine();
    let app = AppBuilder::new(
        "user",
        r#"export default { async fetch(request, env) {
            let frozen = true;
            try { env.USER.sub = "someone else"; frozen = env.USER.sub !== "someone else"; } catch (e) {}
            return Response.json({ user: env.USER, city: env.CITY, frozen });
        } };"#,
    )
    .var("CITY", "Lisbon")
    .var("USER", "a var cannot pose as the user")
    .load(&engine)
    .unwrap();
    let anonymous = app.call(request("GET", "/")).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&anonymous.body).unwrap();
    assert_eq!(body["user"], serde_json::Value::Null);
    assert_eq!(body["city"], "Lisbon");

    let mut signed_in = request("GET", "/");
    signed_in.user = Some(runtime::FunctionUser {
        subject: "ana".into(),
        email: Some("ana@example.com".into()),
        name: None,
        groups: vec!["growth".into()],
    });
    let answer = app.call(signed_in).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(
        body["user"],
        serde_json::json!({"sub": "ana", "email": "ana@example.com", "name": null, "groups": ["growth"]})
    );
    assert_eq!(body["frozen"], true);
}

#[tokio::test]
async fn env_holds_the_apps_secrets_beside_its_vars() {
    let engine = engine();
    let source = r#"export default { fetch(request, env) { return Response.json({ token: env.API_TOKEN, city: env.CITY, names: Object.keys(env).sort() }); } };"#;
    let app =
        AppBuilder::new("secrets", source).var("CITY", "Lisbon").secret("API_TOKEN", "tok-123").load(&engine).unwrap();
    assert_eq!(
        app.json("/").await,
        serde_json::json!({ "token": "tok-123", "city": "Lisbon", "names": ["API_TOKEN", "CITY", "USER"] })
    );
}
