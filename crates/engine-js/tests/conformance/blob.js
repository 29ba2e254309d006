// Blob and File (File API §3, §4): parts, types, slicing, reading, line endings.
export default function (test, assert) {
  test("new Blob() is empty", () => {
    const blob = new Blob();
    assert.equals(blob.size, 0);
    assert.equals(blob.type, "");
  });
  test("parts of every kind are concatenated", async () => {
    const blob = new Blob(["ab", new Uint8Array([0x63]), new Uint8Array([0x64]).buffer, new Blob(["e"]), new DataView(new Uint8Array([0x66]).buffer)]);
    assert.equals(blob.size, 6);
    assert.equals(await blob.text(), "abcdef");
  });
  test("a part is converted with String()", async () => assert.equals(await new Blob([12, null, { toString: () => "x" }]).text(), "12nullx"));
  test("a lone surrogate in a part becomes U+FFFD", async () => assert.array(new Uint8Array(await new Blob(["\ud800"]).arrayBuffer()), [0xef, 0xbf, 0xbd]));
  test("a string as parts throws TypeError", () => assert.throws(TypeError, () => new Blob("abc")));
  test("null as parts throws TypeError", () => assert.throws(TypeError, () => new Blob(null)));
  test("a non-iterable object as parts throws TypeError", () => assert.throws(TypeError, () => new Blob({})));
  test("any iterable is parts", async () => assert.equals(await new Blob(new Set(["a", "b"])).text(), "ab"));
  test("the type is lowercased", () => assert.equals(new Blob([], { type: "Text/HTML" }).type, "text/html"));
  test("a type with a non-printable character is empty", () => assert.equals(new Blob([], { type: "text/\u0001" }).type, ""));
  test("a type with a non-ASCII character is empty", () => assert.equals(new Blob([], { type: "text/é" }).type, ""));
  test("the parts are copied", async () => {
    const bytes = new Uint8Array([1]);
    const blob = new Blob([bytes]);
    bytes[0] = 2;
    assert.array(new Uint8Array(await blob.arrayBuffer()), [1]);
  });
  test('endings "native" turns CRLF and CR into LF', async () => assert.equals(await new Blob(["a\r\nb\rc\n"], { endings: "native" }).text(), "a\nb\nc\n"));
  test('endings "transparent" keeps them', async () => assert.equals(await new Blob(["a\r\nb"], { endings: "transparent" }).text(), "a\r\nb"));
  test("an invalid endings throws TypeError", () => assert.throws(TypeError, () => new Blob([], { endings: "dos" })));
  test("options that are not an object throw TypeError", () => assert.throws(TypeError, () => new Blob([], 1)));
  for (const [start, end, expected] of [[undefined, undefined, "abcdef"], [1, undefined, "bcdef"], [1, 3, "bc"], [-2, undefined, "ef"], [-100, 2, "ab"], [2, -1, "cde"], [4, 2, ""], [0, 100, "abcdef"], [10, 20, ""]]) {
    test(`slice(${start}, ${end})`, async () => assert.equals(await new Blob(["abcdef"]).slice(start, end).text(), expected));
  }
  test("slice() keeps no type unless given", () => {
    const blob = new Blob(["x"], { type: "text/plain" });
    assert.equals(blob.slice().type, "");
    assert.equals(blob.slice(0, 1, "Image/PNG").type, "image/png");
  });
  test("slice() of a slice", async () => assert.equals(await new Blob(["abcdef"]).slice(1, 5).slice(1, 3).text(), "cd"));
  test("text() decodes UTF-8", async () => assert.equals(await new Blob([new Uint8Array([0xe2, 0x82, 0xac])]).text(), "€"));
  test("arrayBuffer() is a copy", async () => {
    const blob = new Blob(["ab"]);
    const first = await blob.arrayBuffer();
    new Uint8Array(first)[0] = 0;
    assert.equals(await blob.text(), "ab");
  });
  test("bytes() is a Uint8Array", async () => assert.true((await new Blob(["a"]).bytes()) instanceof Uint8Array));
  test("stream() reads the bytes", async () => {
    const reader = new Blob(["streamed"]).stream().getReader();
    const chunks = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks.push(...value);
    }
    assert.equals(new TextDecoder().decode(new Uint8Array(chunks)), "streamed");
  });
  test("toStringTag is Blob", () => assert.equals(String(new Blob()), "[object Blob]"));

  test("a File has a name, a type and a lastModified", () => {
    const file = new File(["x"], "a.txt", { type: "text/plain", lastModified: 42 });
    assert.equals(file.name, "a.txt");
    assert.equals(file.type, "text/plain");
    assert.equals(file.lastModified, 42);
    assert.equals(file.size, 1);
    assert.true(file instanceof Blob);
  });
  test("a File without lastModified has a time", () => assert.equals(typeof new File([], "a").lastModified, "number"));
  test("a File needs a name", () => assert.throws(TypeError, () => new File(["x"])));
  test("a File's name is a USVString", () => assert.equals(new File([], "\ud800").name, "\ufffd"));
  test("a File's name may contain a slash", () => assert.equals(new File([], "a/b").name, "a/b"));
  test("a File reads like a Blob", async () => assert.equals(await new File(["content"], "f").text(), "content"));
  test("toStringTag is File", () => assert.equals(String(new File([], "f")), "[object File]"));
  test("structuredClone keeps a Blob's bytes and type", async () => {
    const copy = structuredClone(new Blob(["kept"], { type: "text/plain" }));
    assert.true(copy instanceof Blob);
    assert.equals(copy.type, "text/plain");
    assert.equals(await copy.text(), "kept");
  });
  test("structuredClone keeps a File's name", async () => {
    const copy = structuredClone(new File(["x"], "n.txt", { lastModified: 7 }));
    assert.true(copy instanceof File);
    assert.equals(copy.name, "n.txt");
    assert.equals(copy.lastModified, 7);
  });
}
