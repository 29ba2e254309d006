// FormData (XMLHttpRequest standard §5) and its multipart/form-data form.
export default function (test, assert) {
  test("append() and get()", () => {
    const form = new FormData();
    form.append("a", "1");
    form.append("a", "2");
    assert.equals(form.get("a"), "1");
    assert.array(form.getAll("a"), ["1", "2"]);
  });
  test("get() of a missing name is null", () => assert.equals(new FormData().get("x"), null));
  test("getAll() of a missing name is []", () => assert.array(new FormData().getAll("x"), []));
  test("has() and delete()", () => {
    const form = new FormData();
    form.append("a", "1");
    assert.true(form.has("a"));
    form.delete("a");
    assert.false(form.has("a"));
  });
  test("set() replaces the first and removes the rest", () => {
    const form = new FormData();
    form.append("a", "1");
    form.append("b", "2");
    form.append("a", "3");
    form.set("a", "9");
    assert.array([...form.keys()], ["a", "b"]);
    assert.array(form.getAll("a"), ["9"]);
  });
  test("values are converted to strings", () => {
    const form = new FormData();
    form.append("n", 12);
    assert.equals(form.get("n"), "12");
  });
  test("a lone surrogate in a name becomes U+FFFD", () => {
    const form = new FormData();
    form.append("\ud800", "v");
    assert.equals([...form.keys()][0], "\ufffd");
  });
  test("a Blob becomes a File named blob", () => {
    const form = new FormData();
    form.append("f", new Blob(["x"], { type: "text/plain" }));
    const file = form.get("f");
    assert.true(file instanceof File);
    assert.equals(file.name, "blob");
    assert.equals(file.type, "text/plain");
  });
  test("a File keeps its name", () => {
    const form = new FormData();
    const file = new File(["x"], "a.txt");
    form.append("f", file);
    assert.equals(form.get("f").name, "a.txt");
  });
  test("a filename renames a File", () => {
    const form = new FormData();
    form.append("f", new File(["x"], "a.txt"), "b.txt");
    assert.equals(form.get("f").name, "b.txt");
  });
  test("set() with a filename", () => {
    const form = new FormData();
    form.set("f", new Blob(["x"]), "c.bin");
    assert.equals(form.get("f").name, "c.bin");
  });
  test("a filename with a string value throws TypeError", () => assert.throws(TypeError, () => new FormData().append("a", "b", "c")));
  test("new FormData(something) throws TypeError", () => assert.throws(TypeError, () => new FormData({})));
  test("iteration is in insertion order", () => {
    const form = new FormData();
    form.append("b", "1");
    form.append("a", "2");
    assert.equals(JSON.stringify([...form]), '[["b","1"],["a","2"]]');
  });
  test("the iterator's toStringTag is FormData Iterator", () => assert.equals(Object.prototype.toString.call(new FormData().entries()), "[object FormData Iterator]"));
  test("forEach passes value, name, form", () => {
    const form = new FormData();
    form.append("k", "v");
    const seen = [];
    form.forEach((value, name, target) => seen.push(value, name, target === form));
    assert.array(seen, ["v", "k", true]);
  });
  test("toStringTag is FormData", () => assert.equals(String(new FormData()), "[object FormData]"));
  test("a multipart round trip keeps names, values, files and their bytes", async () => {
    const form = new FormData();
    form.append("text", "line one\nline two");
    form.append("unicode", "grüße €");
    form.append("binary", new File([new Uint8Array([0, 13, 10, 45, 45, 255])], "data.bin", { type: "application/octet-stream" }));
    form.append("empty", new File([], "empty.txt"));
    const request = new Request("https://example.com/", { method: "POST", body: form });
    const parsed = await request.formData();
    assert.equals(parsed.get("text"), "line one\r\nline two", "newlines become CRLF, as the HTML standard encodes them");
    assert.equals(parsed.get("unicode"), "grüße €");
    const binary = parsed.get("binary");
    assert.equals(binary.name, "data.bin");
    assert.array(new Uint8Array(await binary.arrayBuffer()), [0, 13, 10, 45, 45, 255]);
    assert.equals(parsed.get("empty").size, 0);
    assert.equals(parsed.get("empty").type, "application/octet-stream");
  });
  test("quotes and newlines in names are percent-encoded", async () => {
    const form = new FormData();
    form.append('a"b\nc', "v");
    const text = await new Response(form).text();
    assert.true(text.includes('name="a%22b%0Ac"'), text);
  });
  test("the boundary is in the content type and the body", async () => {
    const response = new Response(new FormData());
    const boundary = response.headers.get("content-type").split("boundary=")[1];
    assert.equals(await response.text(), `--${boundary}--\r\n`);
  });
  test("a multipart body written by hand", async () => {
    const body = [
      "--XyZ",
      'Content-Disposition: form-data; name="title"',
      "",
      "Hello",
      "--XyZ",
      'Content-Disposition: form-data; name="upload"; filename="notes.txt"',
      "Content-Type: text/plain",
      "",
      "file body",
      "--XyZ--",
      "",
    ].join("\r\n");
    const form = await new Response(body, { headers: { "content-type": "multipart/form-data; boundary=XyZ" } }).formData();
    assert.equals(form.get("title"), "Hello");
    assert.equals(form.get("upload").name, "notes.txt");
    assert.equals(await form.get("upload").text(), "file body");
  });
  test("a ';' or 'filename=' inside a quoted name is part of the name", async () => {
    const body = '--b\r\nContent-Disposition: form-data; name="a;filename=b"\r\n\r\nv\r\n--b--\r\n';
    const form = await new Response(body, { headers: { "content-type": "multipart/form-data; boundary=b" } }).formData();
    assert.equals(form.get("a;filename=b"), "v");
  });
  test("a quoted filename cannot carry the field's name", async () => {
    const body = '--b\r\nContent-Disposition: form-data; filename="x;name=evil"; name="real"\r\n\r\nv\r\n--b--\r\n';
    const form = await new Response(body, { headers: { "content-type": "multipart/form-data; boundary=b" } }).formData();
    assert.equals(form.get("real").name, "x;name=evil");
    assert.false(form.has("evil"));
  });
  test("a urlencoded body", async () => {
    const form = await new Request("https://example.com/", { method: "POST", body: new URLSearchParams("a=1&a=2&b=%C3%A9") }).formData();
    assert.array(form.getAll("a"), ["1", "2"]);
    assert.equals(form.get("b"), "é");
  });
}
