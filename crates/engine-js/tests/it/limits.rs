//! Each limit is contained: the failing request gets the right error, the reason is in the app's
//! log with the request id, another app on the same engine still answers, and so does the same app.

use std::time::Duration;

use deployment::FunctionLimits;
use runtime::{InvokeError, LogLevel};

use crate::support::{AppBuilder, TestApp, app, engine, limits, request};

/// An app that misbehaves on `/bad` and answers "fine" everywhere else.
fn misbehaving(engine: &engine_js::JsEngine, name: &str, bad: &str, limits: FunctionLimits) -> TestApp {
    let source = format!(
        r#"
        export default {{
            async fetch(request) {{
                if (new URL(request.url).pathname === "/bad") {{ {bad} }}
                return new Response("fine");
            }}
        }};
        "#
    );
    AppBuilder::new(name, &source).limits(limits).load(engine).unwrap_or_else(|error| panic!("{name}: {error}"))
}

/// Runs `/bad`, checks the error with `expect`, then that everything still works.
async fn check_contained(bad: &str, expect: impl Fn(&InvokeError) -> bool) -> InvokeError {
    check_contained_with(limits(), bad, expect).await
}

async fn check_contained_with(limits: FunctionLimits, bad: &str, expect: impl Fn(&InvokeError) -> bool) -> InvokeError {
    let engine = engine();
    let bystander = app(&engine, "bystander", r#"export default { fetch() { return new Response("still here"); } };"#);
    let culprit = misbehaving(&engine, "culprit", bad, limits);
    // Warm the culprit first, so the failure hits a reused instance.
    assert_eq!(culprit.text("/").await, "fine");

    let request = request("GET", "/bad");
    let request_id = request.request_id.clone();
    let error = culprit.call(request).await.expect_err("the bad request should fail");
    assert!(expect(&error), "unexpected error: {error:?}");
    assert!(
        culprit.log.has(&request_id, LogLevel::Error, error.code()),
        "the log should say why with the request id: {:#?}",
        culprit.log.lines()
    );
    assert_eq!(bystander.text("/").await, "still here");
    assert_eq!(culprit.text("/").await, "fine");
    assert_eq!(culprit.text("/").await, "fine");
    error
}

#[tokio::test]
async fn infinite_loop_hits_the_cpu_limit() {
    let error =
        check_contained("while (true) {}", |error| matches!(error, InvokeError::CpuLimit { limit_ms: 100 })).await;
    assert_eq!(error.status(), 503);
}

#[tokio::test]
async fn infinite_loop_in_a_promise_job_hits_the_cpu_limit() {
    check_contained("await null; for (;;) {}", |error| matches!(error, InvokeError::CpuLimit { .. })).await;
}

#[tokio::test]
async fn infinite_loop_in_a_timer_hits_the_cpu_limit() {
    check_contained("await new Promise((resolve) => setTimeout(() => { while (true) {} }, 1));", |error| {
        matches!(error, InvokeError::CpuLimit { .. })
    })
    .await;
}

#[tokio::test]
async fn memory_bomb_hits_the_memory_limit() {
    let mut roomy = limits();
    roomy.cpu_ms_per_request = 5000;
    check_contained_with(
        roomy,
        "const hoard = []; while (true) { hoard.push(new Array(100000).fill(hoard.length)); }",
        |error| matches!(error, InvokeError::MemoryLimit { limit_bytes } if *limit_bytes == limits().memory_bytes),
    )
    .await;
}

#[tokio::test]
async fn string_bomb_hits_the_memory_limit() {
    // Copying megabytes in an unoptimised build takes a while: give the CPU limit room.
    let mut roomy = limits();
    roomy.cpu_ms_per_request = 5000;
    check_contained_with(
        roomy,
        r#"const kept = []; for (let n = 1; ; n *= 2) { kept.push("x".repeat(n)); }"#,
        |error| matches!(error, InvokeError::MemoryLimit { .. }),
    )
    .await;
}

#[tokio::test]
async fn infinite_recursion_overflows_the_stack() {
    let error = check_contained("const down = (n) => down(n + 1) + 1; down(0);", |error| {
        matches!(error, InvokeError::StackOverflow)
    })
    .await;
    assert_eq!(error.status(), 500);
}

#[tokio::test]
async fn huge_streamed_response_is_too_large() {
    // 100 MB in 64 KiB chunks; the limit is 1 MiB and the engine stops reading at it.
    check_contained(
        r#"
        const chunk = new Uint8Array(65536);
        let sent = 0;
        return new Response(new ReadableStream({ pull(controller) { if (sent++ < 1600) controller.enqueue(chunk); else controller.close(); } }));
        "#,
        |error| matches!(error, InvokeError::ResponseTooLarge { limit_bytes: 1048576 }),
    )
    .await;
}

#[tokio::test]
async fn huge_string_response_is_too_large() {
    check_contained(r#"return new Response("x".repeat(2 * 1024 * 1024));"#, |error| {
        matches!(error, InvokeError::ResponseTooLarge { .. })
    })
    .await;
}

#[tokio::test]
async fn thrown_exception_is_reported_with_message_and_stack() {
    let error =
        check_contained(r#"throw new Error("boom");"#, |error| matches!(error, InvokeError::Exception { .. })).await;
    let InvokeError::Exception { message } = error else { unreachable!() };
    assert!(message.starts_with("Error: boom"), "{message}");
    assert!(message.contains("functions/index.js:"), "the stack names the file: {message}");
}

#[tokio::test]
async fn thrown_non_error_is_reported() {
    let error = check_contained(r#"throw "plain text";"#, |error| matches!(error, InvokeError::Exception { .. })).await;
    assert_eq!(error.to_string(), "uncaught exception: Uncaught plain text");
}

#[tokio::test]
async fn returning_a_number_is_a_bad_return() {
    let error = check_contained("return 42;", |error| matches!(error, InvokeError::BadReturn { .. })).await;
    assert!(error.to_string().contains("number 42"), "{error}");
}

#[tokio::test]
async fn returning_nothing_is_a_bad_return() {
    let error = check_contained("return;", |error| matches!(error, InvokeError::BadReturn { .. })).await;
    assert!(error.to_string().contains("forget to return"), "{error}");
}

#[tokio::test]
async fn a_promise_that_never_settles_fails_fast() {
    check_contained(
        "await new Promise(() => {});",
        |error| matches!(error, InvokeError::Exception { message } if message.contains("never settled")),
    )
    .await;
}

#[tokio::test]
async fn slow_work_hits_the_wall_timeout() {
    let engine = engine();
    let mut short = limits();
    short.wall_timeout_ms = 200;
    let source = r#"export default { async fetch() { await new Promise((resolve) => setTimeout(resolve, 10000)); return new Response("late"); } };"#;
    let app = AppBuilder::new("sleepy", source).limits(short).load(&engine).unwrap();
    let error = app.get("/").await.unwrap_err();
    assert!(matches!(error, InvokeError::WallTimeout { limit_ms: 200 }), "{error:?}");
}

#[tokio::test]
async fn a_looping_app_does_not_stall_apps_on_other_workers() {
    let engine = engine();
    let mut generous = limits();
    generous.cpu_ms_per_request = 1500;
    // CPU time, not wall time, stops it: on a busy machine 1.5 s of CPU takes longer than that.
    generous.wall_timeout_ms = 120_000;
    let source = r#"export default { fetch() { while (true) {} } };"#;
    // With two workers, some of these apps share a worker with the looper and some do not.
    let looper = AppBuilder::new("looper", source).limits(generous).load(&engine).unwrap();
    let others: Vec<TestApp> = (0..6)
        .map(|index| {
            app(&engine, &format!("other-{index}"), r#"export default { fetch() { return new Response("ok"); } };"#)
        })
        .collect();
    for other in &others {
        other.text("/").await;
    }
    let looping = tokio::spawn(async move { looper.get("/").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // All at once: those on the other worker answer while the looper still loops (it runs for
    // 1.5 s of CPU time, so at least that long); those on its worker wait for it.
    let mut answers: futures::stream::FuturesUnordered<_> = others.iter().map(|other| other.text("/")).collect();
    let mut answered_meanwhile = 0;
    while let Some(answer) = futures::StreamExt::next(&mut answers).await {
        assert_eq!(answer, "ok");
        if !looping.is_finished() {
            answered_meanwhile += 1;
        }
    }
    assert!(answered_meanwhile >= 1, "apps on the other worker must answer while one loops");
    assert!(matches!(looping.await.unwrap(), Err(InvokeError::CpuLimit { limit_ms: 1500 })));
}

#[tokio::test]
async fn the_wall_timeout_also_stops_running_javascript() {
    let engine = engine();
    let mut lopsided = limits();
    lopsided.cpu_ms_per_request = 10_000;
    lopsided.wall_timeout_ms = 200;
    let app = AppBuilder::new("spinner", r#"export default { fetch() { while (true) {} } };"#)
        .limits(lopsided)
        .load(&engine)
        .unwrap();
    let error = app.get("/").await.unwrap_err();
    assert!(matches!(error, InvokeError::WallTimeout { limit_ms: 200 }), "{error:?}");
}

#[tokio::test]
async fn outbound_bytes_per_request_are_capped() {
    let engine = engine();
    let mut limits = limits();
    limits.max_outbound_bytes = 300;
    limits.max_outbound_requests = 10;
    // Each echo answer is a little over 200 bytes; a later one pushes the request past 300.
    let source = r#"export default { async fetch() {
        const results = [];
        for (let i = 0; i < 4; i++) {
            try { await (await fetch("https://api.test/" + i)).text(); results.push("ok"); }
            catch (error) { results.push(String(error.message)); }
        }
        return Response.json(results);
    } };"#;
    let app = AppBuilder::new("bytes", source).limits(limits).load(&engine).unwrap();
    let results = app.json("/").await;
    let results = results.as_array().unwrap();
    assert_eq!(results[0], "ok");
    let first_failure = results.iter().position(|result| result != "ok").expect("the budget ran out");
    let message = results[first_failure].as_str().unwrap();
    assert!(
        message.contains("more than 300 bytes through fetch, the limit") && message.contains("api.test"),
        "{message}"
    );
}
