//! The Web APIs handlers use: each one exercised from a real app.

use bytes::Bytes;

use crate::support::{app, engine, header, request};

/// An app whose handler evaluates `body` (a function body returning a value or a Response).
const HARNESS: &str = r#"
    export default {
        async fetch(request, env, ctx) {
            const result = await (async () => { BODY })();
            return result instanceof Response ? result : Response.json(result);
        }
    };
"#;

async fn eval(body: &str) -> serde_json::Value {
    let engine = engine();
    let app = app(&engine, "web-api", &HARNESS.replace("BODY", body));
    app.json("/").await
}

#[tokio::test]
async fn request_properties_and_bodies() {
    let engine = engine();
    let source = r#"
        export default {
            async fetch(request) {
                const url = new URL(request.url);
                const copy = request.clone();
                const result = {
                    method: request.method,
                    path: url.pathname,
                    query: url.searchParams.get("q"),
                    agent: request.headers.get("User-Agent"),
                    type: request.headers.get("content-type"),
                };
                if (url.pathname === "/json") result.json = await request.json();
                if (url.pathname === "/text") { result.text = await request.text(); result.again = await copy.text(); }
                if (url.pathname === "/bytes") result.bytes = [...new Uint8Array(await request.arrayBuffer())];
                if (url.pathname === "/form") { const form = await request.formData(); result.form = { name: form.get("name"), tags: form.getAll("tag") }; }
                if (url.pathname === "/used") { await request.text(); try { await request.text(); } catch (error) { result.error = error.name; } result.used = request.bodyUsed; }
                if (url.pathname === "/stream") {
                    const chunks = [];
                    for await (const chunk of request.body) chunks.push(chunk.length);
                    result.chunks = chunks;
                }
                return Response.json(result);
            }
        };
    "#;
    let app = app(&engine, "requests", source);
    let call = |path: &str, content_type: &str, body: &'static [u8]| {
        let mut request = request("POST", path);
        request.headers.push(("Content-Type".to_owned(), content_type.to_owned()));
        request.body = Bytes::from_static(body);
        app.call(request)
    };
    let json =
        |response: runtime::FunctionResponse| serde_json::from_slice::<serde_json::Value>(&response.body).unwrap();

    let result = json(call("/json?q=hi", "application/json", br#"{"a":[1,2]}"#).await.unwrap());
    assert_eq!(result["method"], "POST");
    assert_eq!(result["path"], "/json");
    assert_eq!(result["query"], "hi");
    assert_eq!(result["agent"], "it");
    assert_eq!(result["type"], "application/json");
    assert_eq!(result["json"], serde_json::json!({ "a": [1, 2] }));

    let result = json(call("/text", "text/plain", "grüezi".as_bytes()).await.unwrap());
    assert_eq!(result["text"], "grüezi");
    assert_eq!(result["again"], "grüezi");

    let result = json(call("/bytes", "application/octet-stream", &[0, 1, 255]).await.unwrap());
    assert_eq!(result["bytes"], serde_json::json!([0, 1, 255]));

    let result =
        json(call("/form", "application/x-www-form-urlencoded", b"name=Ada+L%C3%B6w&tag=a&tag=b").await.unwrap());
    assert_eq!(result["form"], serde_json::json!({ "name": "Ada Löw", "tags": ["a", "b"] }));

    let result = json(call("/used", "text/plain", b"x").await.unwrap());
    assert_eq!(result["error"], "TypeError");
    assert_eq!(result["used"], true);

    let result = json(call("/stream", "text/plain", b"abc").await.unwrap());
    assert_eq!(result["chunks"], serde_json::json!([3]));
}

#[tokio::test]
async fn response_constructors() {
    let engine = engine();
    let source = r#"
        export default {
            async fetch(request) {
                switch (new URL(request.url).pathname) {
                    case "/json": return Response.json({ ok: true }, { status: 201, headers: { "x-a": "1" } });
                    case "/redirect": return Response.redirect("https://example.com/next", 307);
                    case "/bytes": return new Response(new Uint8Array([104, 105]));
                    case "/buffer": return new Response(new TextEncoder().encode("buf").buffer, { statusText: "Fine" });
                    case "/empty": return new Response(null, { status: 204 });
                    case "/stream-start": return new Response(new ReadableStream({ start(c) { c.enqueue("a"); c.enqueue(new Uint8Array([98])); c.close(); } }));
                    case "/stream-pull": {
                        let n = 0;
                        return new Response(new ReadableStream({ async pull(c) { await new Promise((r) => setTimeout(r, 1)); if (n < 3) c.enqueue(String(n++)); else c.close(); } }));
                    }
                    case "/props": {
                        const response = new Response("x", { status: 404, statusText: "Nope" });
                        const clone = response.clone();
                        return Response.json({ ok: response.ok, status: response.status, statusText: response.statusText, text: await clone.text(), bodyUsed: clone.bodyUsed, original: await response.text() });
                    }
                    case "/invalid": {
                        const errors = [];
                        try { new Response("x", { status: 99 }); } catch (e) { errors.push(e.name); }
                        try { new Response("x", { status: 204 }); } catch (e) { errors.push(e.name); }
                        try { Response.redirect("/relative"); } catch (e) { errors.push(e.name); }
                        return Response.json(errors);
                    }
                }
            }
        };
    "#;
    let app = app(&engine, "responses", source);
    let response = app.get("/json").await.unwrap();
    assert_eq!(response.status, 201);
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    assert_eq!(header(&response, "x-a"), Some("1"));
    assert_eq!(&response.body[..], br#"{"ok":true}"#);

    let response = app.get("/redirect").await.unwrap();
    assert_eq!(response.status, 307);
    assert_eq!(header(&response, "location"), Some("https://example.com/next"));

    assert_eq!(app.text("/bytes").await, "hi");
    assert_eq!(app.text("/buffer").await, "buf");
    let response = app.get("/empty").await.unwrap();
    assert_eq!((response.status, response.body.len()), (204, 0));
    assert_eq!(app.text("/stream-start").await, "ab");
    assert_eq!(app.text("/stream-pull").await, "012");
    assert_eq!(
        app.json("/props").await,
        serde_json::json!({ "ok": false, "status": 404, "statusText": "Nope", "text": "x", "bodyUsed": true, "original": "x" })
    );
    assert_eq!(app.json("/invalid").await, serde_json::json!(["RangeError", "TypeError", "TypeError"]));
}

#[tokio::test]
async fn headers() {
    let result = eval(
        r#"
        const headers = new Headers({ "Content-Type": "text/html" });
        headers.append("Accept", "a/b");
        headers.append("accept", "c/d");
        headers.append("Set-Cookie", "a=1");
        headers.append("Set-Cookie", "b=2");
        const seen = [];
        headers.forEach((value, name) => seen.push(name + "=" + value));
        const before = headers.has("CONTENT-TYPE");
        headers.delete("content-type");
        headers.set("X-New", "  padded  ");
        let invalid = null;
        try { headers.set("bad name", "x"); } catch (error) { invalid = error.name; }
        return {
            accept: headers.get("ACCEPT"), before, after: headers.has("content-type"), missing: headers.get("nope"),
            seen, entries: [...headers], keys: [...headers.keys()], cookies: headers.getSetCookie(),
            padded: headers.get("x-new"), invalid, fromPairs: new Headers([["a", "1"]]).get("A"),
            copy: new Headers(headers).get("accept"),
        };
    "#,
    )
    .await;
    assert_eq!(result["accept"], "a/b, c/d");
    assert_eq!(result["before"], true);
    assert_eq!(result["after"], false);
    assert_eq!(result["missing"], serde_json::Value::Null);
    assert_eq!(
        result["seen"],
        serde_json::json!(["accept=a/b, c/d", "content-type=text/html", "set-cookie=a=1", "set-cookie=b=2"])
    );
    assert_eq!(result["keys"], serde_json::json!(["accept", "set-cookie", "set-cookie", "x-new"]));
    assert_eq!(result["cookies"], serde_json::json!(["a=1", "b=2"]));
    assert_eq!(result["padded"], "padded");
    assert_eq!(result["invalid"], "TypeError");
    assert_eq!(result["fromPairs"], "1");
    assert_eq!(result["copy"], "a/b, c/d");
}

#[tokio::test]
async fn url_and_search_params() {
    let result = eval(r#"
        const url = new URL("../b/c?x=1&y=two#frag", "https://user:pw@Example.COM:8443/a/z/index.html");
        const parts = { href: url.href, origin: url.origin, protocol: url.protocol, username: url.username, password: url.password,
            host: url.host, hostname: url.hostname, port: url.port, pathname: url.pathname, search: url.search, hash: url.hash };
        url.searchParams.append("z", "a b&c");
        url.searchParams.delete("x");
        const afterParams = url.href;
        url.pathname = "/new path";
        url.hash = "";
        url.port = "443";
        const params = new URLSearchParams("?b=2&a=1&b=3");
        params.sort();
        let invalid = null;
        try { new URL("not a url"); } catch (error) { invalid = error.name; }
        return {
            parts, afterParams, edited: url.href, sorted: params.toString(), all: params.getAll("b"),
            fromObject: new URLSearchParams({ q: "ä ö", n: 1 }).toString(), size: params.size,
            invalid, canParse: [URL.canParse("https://x"), URL.canParse("nope")], json: JSON.stringify({ u: new URL("http://a/") }),
            idn: new URL("https://bücher.example/").hostname, search: new URL("http://a/?q=%20x").searchParams.get("q"),
        };
    "#).await;
    assert_eq!(
        result["parts"],
        serde_json::json!({
            "href": "https://user:pw@example.com:8443/a/b/c?x=1&y=two#frag", "origin": "https://example.com:8443", "protocol": "https:",
            "username": "user", "password": "pw", "host": "example.com:8443", "hostname": "example.com", "port": "8443",
            "pathname": "/a/b/c", "search": "?x=1&y=two", "hash": "#frag",
        })
    );
    assert_eq!(result["afterParams"], "https://user:pw@example.com:8443/a/b/c?y=two&z=a+b%26c#frag");
    assert_eq!(result["edited"], "https://user:pw@example.com/new%20path?y=two&z=a+b%26c");
    assert_eq!(result["sorted"], "a=1&b=2&b=3");
    assert_eq!(result["all"], serde_json::json!(["2", "3"]));
    assert_eq!(result["fromObject"], "q=%C3%A4+%C3%B6&n=1");
    assert_eq!(result["size"], 3);
    assert_eq!(result["invalid"], "TypeError");
    assert_eq!(result["canParse"], serde_json::json!([true, false]));
    assert_eq!(result["json"], r#"{"u":"http://a/"}"#);
    assert_eq!(result["idn"], "xn--bcher-kva.example");
    assert_eq!(result["search"], " x");
}

#[tokio::test]
async fn encoders_and_base64() {
    let result = eval(r#"
        const bytes = new TextEncoder().encode("héllo €");
        const decoder = new TextDecoder();
        let fatal = null;
        try { new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array([0xff])); } catch (error) { fatal = error.name; }
        let badAtob = null;
        try { atob("***"); } catch (error) { badAtob = error.name; }
        let badBtoa = null;
        try { btoa("€"); } catch (error) { badBtoa = error.name; }
        const into = new Uint8Array(4);
        return {
            length: bytes.length, roundTrip: decoder.decode(bytes), lossy: decoder.decode(new Uint8Array([0x61, 0xff])),
            bom: decoder.decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x61])), fatal, encoding: decoder.encoding,
            btoa: btoa("hello\u00ff"), atob: atob("aGVsbG8="), badAtob, badBtoa, empty: decoder.decode(),
            into: new TextEncoder().encodeInto("aé€", into), intoBytes: [...into],
        };
    "#).await;
    assert_eq!(result["length"], 10);
    assert_eq!(result["roundTrip"], "héllo €");
    assert_eq!(result["lossy"], "a\u{fffd}");
    assert_eq!(result["bom"], "a");
    assert_eq!(result["fatal"], "TypeError");
    assert_eq!(result["encoding"], "utf-8");
    assert_eq!(result["btoa"], "aGVsbG//");
    assert_eq!(result["atob"], "hello");
    assert_eq!(result["badAtob"], "InvalidCharacterError");
    assert_eq!(result["badBtoa"], "InvalidCharacterError");
    assert_eq!(result["empty"], "");
    assert_eq!(result["into"], serde_json::json!({ "read": 2, "written": 3 }));
    assert_eq!(result["intoBytes"], serde_json::json!([0x61, 0xc3, 0xa9, 0]));
}

#[tokio::test]
async fn crypto_and_structured_clone() {
    let result = eval(r#"
        const ids = [crypto.randomUUID(), crypto.randomUUID()];
        const values = crypto.getRandomValues(new Uint8Array(32));
        const words = crypto.getRandomValues(new Uint32Array(4));
        let tooMany = null;
        try { crypto.getRandomValues(new Uint8Array(70000)); } catch (error) { tooMany = error.name; }
        const original = { date: new Date(0), map: new Map([["k", { deep: [1, 2] }]]), set: new Set([1]), bytes: new Uint8Array([1, 2]), nested: { a: 1 } };
        original.self = original;
        const copy = structuredClone(original);
        copy.nested.a = 2;
        let uncloneable = null;
        try { structuredClone({ f() {} }); } catch (error) { uncloneable = error.name; }
        return {
            uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(ids[0]), distinct: ids[0] !== ids[1],
            nonZero: values.some((v) => v !== 0), wordsLength: words.length, tooMany,
            cycle: copy.self === copy, date: copy.date instanceof Date && copy.date.getTime() === 0, deep: copy.map.get("k").deep,
            sameMap: copy.map === original.map, set: copy.set.has(1), bytes: [...copy.bytes], untouched: original.nested.a, uncloneable,
        };
    "#).await;
    assert_eq!(
        result,
        serde_json::json!({
            "uuid": true, "distinct": true, "nonZero": true, "wordsLength": 4, "tooMany": "QuotaExceededError",
            "cycle": true, "date": true, "deep": [1, 2], "sameMap": false, "set": true, "bytes": [1, 2], "untouched": 1,
            "uncloneable": "DataCloneError",
        })
    );
}

#[tokio::test]
async fn streams_readers_and_iteration() {
    let result = eval(r#"
        const stream = new ReadableStream({ start(controller) { controller.enqueue(1); controller.enqueue(2); controller.close(); } });
        const reader = stream.getReader();
        const first = await reader.read();
        let locked = null;
        try { stream.getReader(); } catch (error) { locked = error.name; }
        reader.releaseLock();
        const rest = [];
        for await (const value of stream) rest.push(value);
        const failing = new ReadableStream({ pull(controller) { controller.error(new Error("broken")); } });
        let failed = null;
        try { await failing.getReader().read(); } catch (error) { failed = error.message; }
        const fromIterable = [];
        for await (const value of ReadableStream.from(["x", "y"])) fromIterable.push(value);
        const text = await new Response(new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("stream ")); c.enqueue("text"); c.close(); } })).text();
        return { first, locked, rest, failed, fromIterable, text };
    "#).await;
    assert_eq!(
        result,
        serde_json::json!({
            "first": { "value": 1, "done": false }, "locked": "TypeError", "rest": [2], "failed": "broken",
            "fromIterable": ["x", "y"], "text": "stream text",
        })
    );
}

#[tokio::test]
async fn stream_globals_work_as_the_first_thing_an_app_touches() {
    // Each in a fresh instance: no other global has loaded the parts before.
    assert_eq!(eval(r#"return await new Response(new Blob(["blob first"]).stream()).text();"#).await, "blob first");
    assert_eq!(eval(r#"return new CountQueuingStrategy({ highWaterMark: 3 }).highWaterMark;"#).await, 3);
    assert_eq!(eval(r#"return new ByteLengthQueuingStrategy({ highWaterMark: 4 }).size(new Uint8Array(2));"#).await, 2);
    assert_eq!(eval(r#"return typeof WritableStreamDefaultWriter + typeof TransformStreamDefaultController + typeof ReadableStreamDefaultController;"#).await, "functionfunctionfunction");
}

#[tokio::test]
async fn a_global_the_app_set_stays_when_its_part_loads_later() {
    let result = eval(
        r#"
        globalThis.crypto = { mine: true };
        // The writable part loads extras (for the controller's signal) on abort.
        const stream = new WritableStream({ start(c) { void c.signal; } });
        await stream.abort("stop");
        return { mine: globalThis.crypto.mine === true, abortController: typeof AbortController };
    "#,
    )
    .await;
    assert_eq!(result, serde_json::json!({ "mine": true, "abortController": "function" }));
}

#[tokio::test]
async fn clones_read_independently_and_settle_their_cancels() {
    let result = eval(r#"
        // A source that answers each pull with one chunk: both branches get every chunk.
        let n = 0;
        const source = new ReadableStream({ pull(c) { n++; if (n > 3) c.close(); else c.enqueue(new TextEncoder().encode(String(n))); } }, { highWaterMark: 0 });
        const response = new Response(source);
        const copy = response.clone();
        const both = await Promise.all([copy.text(), response.text()]);
        // Cancelling a branch after the source closed settles.
        const original = new Response(new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("x")); c.close(); } }));
        const other = original.clone();
        await original.text();
        const settled = await Promise.race([other.body.cancel().then(() => "settled"), new Promise((r) => setTimeout(() => r("hung"), 50))]);
        // An errored stream is let go by for-await, not left locked.
        const failing = new ReadableStream({ pull(c) { c.error(new Error("broken")); } });
        try { for await (const chunk of failing) void chunk; } catch (error) { void error; }
        return { both, settled, locked: failing.locked };
    "#).await;
    assert_eq!(result, serde_json::json!({ "both": ["123", "123"], "settled": "settled", "locked": false }));
}

#[tokio::test]
async fn misc_globals() {
    let result = eval(
        r#"
        const start = performance.now();
        await new Promise((resolve) => queueMicrotask(resolve));
        return { perf: typeof start, self: self === globalThis, domException: new DOMException("m", "AbortError").name,
                 noHost: typeof host, noStd: typeof std, noOs: typeof os, noRequire: typeof require };
    "#,
    )
    .await;
    assert_eq!(
        result,
        serde_json::json!({
            "perf": "number", "self": true, "domException": "AbortError", "noHost": "undefined", "noStd": "undefined",
            "noOs": "undefined", "noRequire": "undefined",
        })
    );
}

#[tokio::test]
async fn digest_and_abort_controller() {
    let result = eval(r#"
        const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode("abc"));
        const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
        let unsupported = null;
        try { await crypto.subtle.digest("MD5", new Uint8Array(1)); } catch (error) { unsupported = error.name; }
        const controller = new AbortController();
        const seen = [];
        controller.signal.addEventListener("abort", (event) => seen.push(event.type));
        const pending = fetch("https://slow.test/", { signal: controller.signal });
        controller.abort();
        let aborted = null;
        try { await pending; } catch (error) { aborted = error.name; }
        let timedOut = null;
        try { await fetch("https://slow.test/", { signal: AbortSignal.timeout(20) }); } catch (error) { timedOut = error.name; }
        let early = null;
        try { await fetch("https://api.example.test/", { signal: AbortSignal.abort() }); } catch (error) { early = error.name; }
        return { hex, unsupported, seen, aborted, timedOut, early, flag: controller.signal.aborted };
    "#).await;
    assert_eq!(
        result,
        serde_json::json!({
            "hex": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "unsupported": "NotSupportedError",
            "seen": ["abort"], "aborted": "AbortError", "timedOut": "TimeoutError", "early": "AbortError", "flag": true,
        })
    );
}

/// An earlier request's handler that resumes while a later one runs (its promise settled by the
/// later request's code) never answers for the later request.
#[tokio::test]
async fn an_earlier_request_never_answers_for_a_later_one() {
    let engine = engine();
    let source = r#"
        let release = null;
        export default {
            async fetch(request) {
                const path = new URL(request.url).pathname;
                if (path === "/a") {
                    await new Promise((resolve) => { release = resolve; });
                    return new Response("from A");
                }
                if (release !== null) release();
                await null;
                await null;
                return new Response("from B");
            }
        };
    "#;
    let app = app(&engine, "generations", source);
    assert!(app.get("/a").await.is_err(), "A never settles");
    assert_eq!(app.text("/b").await, "from B");
}

/// A string body with a lone surrogate is sent as UTF-8 with U+FFFD, not refused.
#[tokio::test]
async fn a_lone_surrogate_in_a_string_body_is_sent_as_the_replacement_character() {
    let engine = engine();
    let app = app(&engine, "surrogate", r#"export default { fetch() { return new Response("a\ud800b"); } };"#);
    let response = app.get("/").await.unwrap();
    assert_eq!(&response.body[..], "a\u{fffd}b".as_bytes());
}

/// What is sent is the Response's own status and headers: getters app code redefines on
/// Response.prototype, or a Symbol.hasInstance it adds, change nothing the platform reads.
#[tokio::test]
async fn the_platform_reads_a_responses_own_fields() {
    let engine = engine();
    let source = r#"
        export default {
            fetch(request) {
                Object.defineProperty(Response.prototype, "status", { get() { return 101; }, configurable: true });
                Object.defineProperty(Response.prototype, "headers", { get() { return new Headers({ "x-forged": "1" }); }, configurable: true });
                if (new URL(request.url).pathname === "/fake") {
                    Object.defineProperty(Response, Symbol.hasInstance, { value: () => true, configurable: true });
                    return { status: 200, body: "not a response" };
                }
                return new Response("real", { status: 201, headers: { "x-real": "1" } });
            }
        };
    "#;
    let app = app(&engine, "own-fields", source);
    let response = app.get("/").await.unwrap();
    assert_eq!(response.status, 201);
    assert_eq!(header(&response, "x-real"), Some("1"));
    assert_eq!(header(&response, "x-forged"), None);
    assert!(app.get("/fake").await.is_err(), "an object that is not a Response is refused");
}
