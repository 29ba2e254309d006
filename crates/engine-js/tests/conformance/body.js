// The Body mixin (Fetch standard §5.3): reading each kind of body once, bodyUsed, locked and
// disturbed streams, clone and tee.
const encoder = new TextEncoder();
const streamOf = (...chunks) => new ReadableStream({
  start(controller) {
    for (const chunk of chunks) controller.enqueue(typeof chunk === "string" ? encoder.encode(chunk) : chunk);
    controller.close();
  },
});

export default function (test, assert) {
  test("a null body's body is null", () => assert.equals(new Response(null).body, null));
  test("a null body is not used", () => assert.false(new Response().bodyUsed));
  test("text() of a null body is empty and leaves it unused", async () => {
    const response = new Response(null);
    assert.equals(await response.text(), "");
    assert.false(response.bodyUsed);
    assert.equals(await response.text(), "", "a null body can be read again");
  });
  test("arrayBuffer() of a null body is empty", async () => assert.equals((await new Response().arrayBuffer()).byteLength, 0));
  test("text() marks the body used", async () => {
    const response = new Response("x");
    await response.text();
    assert.true(response.bodyUsed);
  });
  test("a second text() rejects with TypeError", async () => {
    const response = new Response("x");
    await response.text();
    await assert.rejects(TypeError, () => response.text());
  });
  test("reading .body does not use it", () => {
    const response = new Response("x");
    assert.true(response.body instanceof ReadableStream);
    assert.false(response.bodyUsed);
  });
  test("getReader() locks without disturbing", () => {
    const response = new Response("x");
    const reader = response.body.getReader();
    assert.true(response.body.locked);
    assert.false(response.bodyUsed);
    reader.releaseLock();
  });
  test("text() of a locked body rejects with TypeError", async () => {
    const response = new Response("x");
    response.body.getReader();
    await assert.rejects(TypeError, () => response.text());
  });
  test("one read() disturbs the body", async () => {
    const response = new Response("x");
    await response.body.getReader().read();
    assert.true(response.bodyUsed);
  });
  test("the stream of a consumed body is locked", async () => {
    const response = new Response("x");
    await response.text();
    assert.throws(TypeError, () => response.body.getReader());
  });
  test("the stream of a consumed stream body is locked", async () => {
    const response = new Response(streamOf("a"));
    await response.text();
    assert.throws(TypeError, () => response.body.getReader());
  });
  test("a locked stream is refused as a body", () => {
    const stream = streamOf("a");
    stream.getReader();
    assert.throws(TypeError, () => new Response(stream));
  });
  test("a disturbed stream is refused as a body", async () => {
    const stream = streamOf("a", "b");
    const reader = stream.getReader();
    await reader.read();
    reader.releaseLock();
    assert.throws(TypeError, () => new Response(stream));
  });
  test("chunks of a stream body are concatenated", async () => assert.equals(await new Response(streamOf("ab", "cd", "é")).text(), "abcdé"));
  test("a multi-byte character split across chunks decodes", async () => {
    const euro = encoder.encode("€");
    assert.equals(await new Response(streamOf(euro.slice(0, 1), euro.slice(1))).text(), "€");
  });
  test("a chunk that is not bytes rejects with TypeError", async () => {
    const stream = new ReadableStream({ start(c) { c.enqueue(42); c.close(); } });
    await assert.rejects(TypeError, () => new Response(stream).text());
  });
  test("an erroring stream rejects text()", async () => {
    const stream = new ReadableStream({ start(c) { c.error(new RangeError("boom")); } });
    await assert.rejects(RangeError, () => new Response(stream).text());
  });
  test("clone() of a used body throws TypeError", async () => {
    const response = new Response("x");
    await response.text();
    assert.throws(TypeError, () => response.clone());
  });
  test("clone() of a locked body throws TypeError", () => {
    const response = new Response("x");
    response.body.getReader();
    assert.throws(TypeError, () => response.clone());
  });
  test("a clone reads the same text", async () => {
    const response = new Response("same");
    const copy = response.clone();
    assert.equals(await response.text(), "same");
    assert.equals(await copy.text(), "same");
  });
  test("a clone of a stream body reads every chunk, in either order", async () => {
    const response = new Response(streamOf("a", "b", "c"));
    const copy = response.clone();
    assert.equals(await copy.text(), "abc");
    assert.equals(await response.text(), "abc");
  });
  test("tee() gives two branches of the same chunks", async () => {
    const [one, two] = streamOf("x", "y").tee();
    assert.equals(await new Response(one).text(), "xy");
    assert.equals(await new Response(two).text(), "xy");
  });
  test("cancelling both tee() branches cancels the source, with both reasons", async () => {
    let reason = null;
    const stream = new ReadableStream({ pull(c) { c.enqueue(new Uint8Array([1])); }, cancel(why) { reason = why; } });
    const [one, two] = stream.tee();
    const first = one.cancel("first");
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equals(reason, null, "one branch is not enough");
    await two.cancel("second");
    await first;
    assert.array(reason, ["first", "second"]);
  });
  test("tee() locks the original", () => {
    const stream = streamOf("x");
    stream.tee();
    assert.true(stream.locked);
  });
  test("arrayBuffer() gives an ArrayBuffer of the bytes", async () => {
    const buffer = await new Response(new Uint8Array([1, 2, 3])).arrayBuffer();
    assert.true(buffer instanceof ArrayBuffer);
    assert.array(new Uint8Array(buffer), [1, 2, 3]);
  });
  test("bytes() gives a Uint8Array", async () => {
    const result = await new Response("hi").bytes();
    assert.true(result instanceof Uint8Array);
    assert.array(result, [104, 105]);
  });
  test("json() parses", async () => assert.equals((await new Response('{"a":[1]}').json()).a[0], 1));
  test("json() of bad JSON rejects with SyntaxError", async () => { await assert.rejects(SyntaxError, () => new Response("{").json()); });
  test("text() decodes UTF-8 and drops the BOM", async () => assert.equals(await new Response(new Uint8Array([0xef, 0xbb, 0xbf, 0x61])).text(), "a"));
  test("text() replaces bad UTF-8 with U+FFFD", async () => assert.equals(await new Response(new Uint8Array([0x61, 0xff])).text(), "a\ufffd"));
  test("blob() has the bytes and the content type", async () => {
    const blob = await new Response("hey", { headers: { "content-type": "Text/Plain" } }).blob();
    assert.true(blob instanceof Blob);
    assert.equals(blob.type, "text/plain");
    assert.equals(await blob.text(), "hey");
  });
  test("blob() without a content type has an empty type", async () => assert.equals((await new Response(new Uint8Array([1])).blob()).type, ""));
  test("a body given as an ArrayBuffer is copied", async () => {
    const buffer = new Uint8Array([1, 2]).buffer;
    const response = new Response(buffer);
    new Uint8Array(buffer)[0] = 9;
    assert.array(new Uint8Array(await response.arrayBuffer()), [1, 2]);
  });
  test("a body given as a DataView", async () => {
    const view = new DataView(new Uint8Array([5, 6, 7]).buffer, 1, 2);
    assert.array(new Uint8Array(await new Response(view).arrayBuffer()), [6, 7]);
  });
  test("a Blob body reads its bytes", async () => assert.equals(await new Response(new Blob(["a", "b"])).text(), "ab"));
  test("formData() of a urlencoded body", async () => {
    const form = await new Response("a=1&b=x+y", { headers: { "content-type": "application/x-www-form-urlencoded" } }).formData();
    assert.equals(form.get("a"), "1");
    assert.equals(form.get("b"), "x y");
  });
  test("formData() of another content type rejects with TypeError", async () => {
    await assert.rejects(TypeError, () => new Response("a=1", { headers: { "content-type": "text/plain" } }).formData());
  });
  test("formData() of a multipart body from FormData", async () => {
    const form = new FormData();
    form.append("name", "Ada");
    form.append("file", new Blob(["content"], { type: "text/markdown" }), "notes.md");
    const parsed = await new Response(form).formData();
    assert.equals(parsed.get("name"), "Ada");
    const file = parsed.get("file");
    assert.true(file instanceof File);
    assert.equals(file.name, "notes.md");
    assert.equals(file.type, "text/markdown");
    assert.equals(await file.text(), "content");
  });
  test("formData() of multipart without a boundary rejects with TypeError", async () => {
    await assert.rejects(TypeError, () => new Response("x", { headers: { "content-type": "multipart/form-data" } }).formData());
  });
  test("formData() of malformed multipart rejects with TypeError", async () => {
    await assert.rejects(TypeError, () => new Response("--b\r\nnope", { headers: { "content-type": "multipart/form-data; boundary=b" } }).formData());
  });
  test("formData() of multipart with a quoted boundary", async () => {
    const body = '--x y\r\nContent-Disposition: form-data; name="k"\r\n\r\nv\r\n--x y--\r\n';
    const form = await new Response(body, { headers: { "content-type": 'multipart/form-data; boundary="x y"' } }).formData();
    assert.equals(form.get("k"), "v");
  });
  test("bodyUsed of a Request after text()", async () => {
    const request = new Request("https://example.com/", { method: "POST", body: "x" });
    await request.text();
    assert.true(request.bodyUsed);
  });
  test("a chunk read from a clone's body does not change the original", async () => {
    const response = new Response(new Uint8Array([1, 2]));
    const copy = response.clone();
    const { value } = await copy.body.getReader().read();
    value[0] = 9;
    assert.array(new Uint8Array(await response.arrayBuffer()), [1, 2]);
  });
  test("body streams enqueue Uint8Arrays", async () => {
    const { value } = await new Response("abc").body.getReader().read();
    assert.true(value instanceof Uint8Array);
  });
}
