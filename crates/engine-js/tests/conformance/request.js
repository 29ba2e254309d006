// Request (Fetch standard §5.4): RequestInit's members, their checks and defaults.
export default function (test, assert) {
  const url = "https://example.com/path?q=1";
  test("defaults", () => {
    const request = new Request(url);
    assert.equals(request.method, "GET");
    assert.equals(request.url, url);
    assert.equals(request.redirect, "follow");
    assert.equals(request.mode, "cors");
    assert.equals(request.credentials, "same-origin");
    assert.equals(request.cache, "default");
    assert.equals(request.integrity, "");
    assert.equals(request.keepalive, false);
    assert.equals(request.referrerPolicy, "");
    assert.equals(request.destination, "");
    assert.equals(request.body, null);
    assert.false(request.bodyUsed);
  });
  test("the URL is parsed and serialised", () => assert.equals(new Request("https://EXAMPLE.com/a/../b").url, "https://example.com/b"));
  test("a relative URL throws TypeError", () => assert.throws(TypeError, () => new Request("/relative")));
  test("a URL with credentials throws TypeError", () => assert.throws(TypeError, () => new Request("https://user:pass@example.com/")));
  test("a URL object is accepted", () => assert.equals(new Request(new URL(url)).url, url));
  for (const [member, values] of Object.entries({
    mode: ["same-origin", "no-cors", "cors"],
    credentials: ["omit", "same-origin", "include"],
    cache: ["default", "no-store", "reload", "no-cache", "force-cache"],
    redirect: ["follow", "error", "manual"],
    referrerPolicy: ["", "no-referrer", "origin", "unsafe-url", "strict-origin-when-cross-origin"],
  })) {
    for (const value of values) {
      test(`${member}: ${JSON.stringify(value)} is kept`, () => assert.equals(new Request(url, { [member]: value })[member], value));
    }
    test(`${member}: "invalid" throws TypeError`, () => assert.throws(TypeError, () => new Request(url, { [member]: "invalid" })));
  }
  test('mode "navigate" throws TypeError', () => assert.throws(TypeError, () => new Request(url, { mode: "navigate" })));
  test('cache "only-if-cached" needs mode "same-origin"', () => {
    assert.throws(TypeError, () => new Request(url, { cache: "only-if-cached" }));
    assert.equals(new Request(url, { cache: "only-if-cached", mode: "same-origin" }).cache, "only-if-cached");
  });
  for (const [given, expected] of [["get", "GET"], ["post", "POST"], ["put", "PUT"], ["delete", "DELETE"], ["head", "HEAD"], ["options", "OPTIONS"], ["patch", "patch"], ["PATCH", "PATCH"], ["custom", "custom"]]) {
    test(`method ${given} becomes ${expected}`, () => assert.equals(new Request(url, { method: given }).method, expected));
  }
  for (const method of ["CONNECT", "trace", "TRACK"]) {
    test(`method ${method} is forbidden`, () => assert.throws(TypeError, () => new Request(url, { method })));
  }
  test("a method that is not a token throws TypeError", () => assert.throws(TypeError, () => new Request(url, { method: "a b" })));
  test("GET with a body throws TypeError", () => assert.throws(TypeError, () => new Request(url, { body: "x" })));
  test("HEAD with a body throws TypeError", () => assert.throws(TypeError, () => new Request(url, { method: "HEAD", body: "x" })));
  test("GET with a null body is fine", () => assert.equals(new Request(url, { body: null }).body, null));
  test("a string body sets text/plain", () => assert.equals(new Request(url, { method: "POST", body: "x" }).headers.get("content-type"), "text/plain;charset=UTF-8"));
  test("a URLSearchParams body sets the urlencoded type", () => assert.equals(new Request(url, { method: "POST", body: new URLSearchParams("a=1") }).headers.get("content-type"), "application/x-www-form-urlencoded;charset=UTF-8"));
  test("a given content type wins", () => assert.equals(new Request(url, { method: "POST", body: "x", headers: { "content-type": "text/csv" } }).headers.get("content-type"), "text/csv"));
  test("a Blob body sets its type", () => assert.equals(new Request(url, { method: "POST", body: new Blob(["x"], { type: "image/png" }) }).headers.get("content-type"), "image/png"));
  test("a FormData body sets multipart with a boundary", () => {
    const type = new Request(url, { method: "POST", body: new FormData() }).headers.get("content-type");
    assert.true(/^multipart\/form-data; boundary=.+/.test(type), type);
  });
  test("the body reads back", async () => assert.equals(await new Request(url, { method: "POST", body: "payload" }).text(), "payload"));
  test("headers init", () => assert.equals(new Request(url, { headers: [["x-a", "1"]] }).headers.get("x-a"), "1"));
  test("a Request input is copied", () => {
    const first = new Request(url, { method: "PUT", headers: { a: "1" }, redirect: "manual", cache: "no-store" });
    const second = new Request(first);
    assert.equals(second.method, "PUT");
    assert.equals(second.headers.get("a"), "1");
    assert.equals(second.redirect, "manual");
    assert.equals(second.cache, "no-store");
  });
  test("init overrides a Request input", () => {
    const second = new Request(new Request(url, { method: "PUT" }), { method: "POST", headers: { b: "2" } });
    assert.equals(second.method, "POST");
    assert.equals(second.headers.get("b"), "2");
  });
  test("a Request input with a body is used by the new one", async () => {
    const first = new Request(url, { method: "POST", body: "moved" });
    const second = new Request(first);
    assert.true(first.bodyUsed);
    assert.equals(await second.text(), "moved");
  });
  test("a Request made from one with a stream body reads it", async () => {
    const stream = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("streamed")); c.close(); } });
    const first = new Request(url, { method: "POST", body: stream });
    const second = new Request(first);
    assert.true(first.bodyUsed);
    assert.equals(await second.text(), "streamed");
  });
  test("a Request whose body was touched can be wrapped again", async () => {
    const first = new Request(url, { method: "POST", body: "touched" });
    first.body;
    assert.equals(await new Request(first).text(), "touched");
  });
  test("a used Request cannot make another", async () => {
    const first = new Request(url, { method: "POST", body: "x" });
    await first.text();
    assert.throws(TypeError, () => new Request(first));
  });
  test("a Request input with a body and a GET init throws TypeError", () => {
    assert.throws(TypeError, () => new Request(new Request(url, { method: "POST", body: "x" }), { method: "GET" }));
  });
  test("clone() copies everything and the body", async () => {
    const first = new Request(url, { method: "POST", body: "twice", headers: { a: "1" }, mode: "no-cors" });
    const copy = first.clone();
    assert.equals(copy.method, "POST");
    assert.equals(copy.mode, "no-cors");
    assert.equals(copy.headers.get("a"), "1");
    assert.equals(await copy.text(), "twice");
    assert.equals(await first.text(), "twice");
  });
  test("a clone's headers are its own", () => {
    const first = new Request(url, { headers: { a: "1" } });
    const copy = first.clone();
    copy.headers.set("a", "2");
    assert.equals(first.headers.get("a"), "1");
  });
  test("init that is not an object throws TypeError", () => assert.throws(TypeError, () => new Request(url, 1)));
  test("init null is empty", () => assert.equals(new Request(url, null).method, "GET"));
  test("keepalive and integrity are kept", () => {
    const request = new Request(url, { keepalive: true, integrity: "sha256-x" });
    assert.equals(request.keepalive, true);
    assert.equals(request.integrity, "sha256-x");
  });
  test("toStringTag is Request", () => assert.equals(String(new Request(url)), "[object Request]"));
  test("signal is an AbortSignal", () => assert.true(new Request(url).signal instanceof AbortSignal));
}
