// Response (Fetch standard §5.5): status and statusText checks, null-body statuses, the static
// constructors.
export default function (test, assert) {
  test("defaults", () => {
    const response = new Response();
    assert.equals(response.status, 200);
    assert.equals(response.ok, true);
    assert.equals(response.statusText, "");
    assert.equals(response.type, "default");
    assert.equals(response.url, "");
    assert.equals(response.redirected, false);
  });
  for (const status of [200, 201, 299, 300, 404, 599]) {
    test(`status ${status} is kept`, () => assert.equals(new Response(null, { status }).status, status));
  }
  for (const status of [0, 100, 199, 600, 1000]) {
    test(`status ${status} throws RangeError`, () => assert.throws(RangeError, () => new Response(null, { status })));
  }
  test("ok is false outside 2xx", () => assert.false(new Response(null, { status: 404 }).ok));
  test("statusText is kept", () => assert.equals(new Response(null, { statusText: "Fine" }).statusText, "Fine"));
  for (const text of ["a\nb", "a\rb", "€"]) {
    test(`statusText ${JSON.stringify(text)} throws TypeError`, () => assert.throws(TypeError, () => new Response(null, { statusText: text })));
  }
  for (const status of [204, 205, 304]) {
    test(`status ${status} with a body throws TypeError`, () => assert.throws(TypeError, () => new Response("x", { status })));
    test(`status ${status} with a null body is fine`, () => assert.equals(new Response(null, { status }).status, status));
  }
  test("a string body sets text/plain;charset=UTF-8", () => assert.equals(new Response("x").headers.get("content-type"), "text/plain;charset=UTF-8"));
  test("an ArrayBuffer body sets no content type", () => assert.equals(new Response(new ArrayBuffer(1)).headers.get("content-type"), null));
  test("a Blob without a type sets no content type", () => assert.equals(new Response(new Blob(["x"])).headers.get("content-type"), null));
  test("init that is not an object throws TypeError", () => assert.throws(TypeError, () => new Response("x", 1)));
  test("init null is empty", () => assert.equals(new Response("x", null).status, 200));
  test("Response.json() serialises with application/json", async () => {
    const response = Response.json({ a: 1 });
    assert.equals(response.headers.get("content-type"), "application/json");
    assert.equals(await response.text(), '{"a":1}');
  });
  test("Response.json() keeps a given content type", () => assert.equals(Response.json(1, { headers: { "content-type": "application/ld+json" } }).headers.get("content-type"), "application/ld+json"));
  test("Response.json() keeps the status", () => assert.equals(Response.json(1, { status: 201 }).status, 201));
  test("Response.json() of undefined throws TypeError", () => assert.throws(TypeError, () => Response.json(undefined)));
  test("Response.json() of a cycle throws TypeError", () => { const a = {}; a.a = a; assert.throws(TypeError, () => Response.json(a)); });
  test("Response.json() with a null-body status throws TypeError", () => assert.throws(TypeError, () => Response.json({}, { status: 204 })));
  test("Response.redirect() sets an absolute Location", () => {
    const response = Response.redirect("https://example.com/a/../b", 301);
    assert.equals(response.status, 301);
    assert.equals(response.headers.get("location"), "https://example.com/b");
  });
  test("Response.redirect() defaults to 302", () => assert.equals(Response.redirect("https://example.com/").status, 302));
  for (const status of [200, 300, 304, 309]) {
    test(`Response.redirect() with ${status} throws RangeError`, () => assert.throws(RangeError, () => Response.redirect("https://example.com/", status)));
  }
  test("Response.redirect() of a bad URL throws TypeError", () => assert.throws(TypeError, () => Response.redirect("nope")));
  test("Response.error()", () => {
    const response = Response.error();
    assert.equals(response.type, "error");
    assert.equals(response.status, 0);
    assert.equals(response.statusText, "");
    assert.equals(response.body, null);
  });
  test("clone() keeps status, statusText and headers", () => {
    const response = new Response("x", { status: 201, statusText: "Made", headers: { a: "1" } });
    const copy = response.clone();
    assert.equals(copy.status, 201);
    assert.equals(copy.statusText, "Made");
    assert.equals(copy.headers.get("a"), "1");
  });
  test("clone() of Response.error() keeps its headers immutable", () => assert.throws(TypeError, () => Response.error().clone().headers.set("a", "b")));
  test("toStringTag is Response", () => assert.equals(String(new Response()), "[object Response]"));
  test("a ReadableStream body", async () => {
    const stream = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("s")); c.close(); } });
    const response = new Response(stream);
    assert.equals(response.body, stream);
    assert.equals(await response.text(), "s");
  });
}
