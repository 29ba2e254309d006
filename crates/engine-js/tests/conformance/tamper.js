// App code that edits built-in prototypes and globals must not break the platform's own Web
// APIs: each case changes something, uses the APIs, and puts it back.
const encoder = new TextEncoder();

// Runs `fn` with `object[key]` replaced by `value`, then restores it.
async function patched(object, key, value, fn) {
  const had = Object.prototype.hasOwnProperty.call(object, key);
  const saved = Object.getOwnPropertyDescriptor(object, key);
  Object.defineProperty(object, key, { value, writable: true, configurable: true, enumerable: false });
  try {
    return await fn();
  } finally {
    if (had) Object.defineProperty(object, key, saved);
    else delete object[key];
  }
}

const streamOf = (text) => new ReadableStream({ start(c) { c.enqueue(encoder.encode(text)); c.close(); } });

export default function (test, assert) {
  test("Object.prototype.then does not reach text() of a stream body", async () => {
    const response = new Response(streamOf("hello"));
    let called = 0;
    const text = await patched(Object.prototype, "then", function (resolve) {
      called++;
      delete Object.prototype.then;
      this.value = encoder.encode("bye");
      resolve(this);
    }, () => response.text());
    assert.equals(text, "hello");
    assert.equals(called, 0, "then calls");
  });
  test("Object.prototype.then does not reach text() of a string body", async () => {
    let called = 0;
    const text = await patched(Object.prototype, "then", function () { called++; }, () => new Response("plain").text());
    assert.equals(text, "plain");
    assert.equals(called, 0);
  });
  test("Object.prototype.then does not reach a Request's text()", async () => {
    let called = 0;
    const request = new Request("https://example.com/", { method: "POST", body: "posted" });
    const text = await patched(Object.prototype, "then", function () { called++; }, () => request.text());
    assert.equals(text, "posted");
    assert.equals(called, 0);
  });
  test("Object.prototype.then does not reach a clone's reads", async () => {
    let called = 0;
    const response = new Response(streamOf("teed"));
    const copy = response.clone();
    // (An async function resolving with an array would call the patched then itself.)
    const texts = await patched(Object.prototype, "then", function () { called++; }, async () => `${await response.text()} ${await copy.text()}`);
    assert.equals(texts, "teed teed");
    assert.equals(called, 0);
  });
  test("Promise.prototype.then replaced: streams still flow", async () => {
    const text = await patched(Promise.prototype, "then", function () { throw new Error("tampered"); }, async () => {
      const stream = new ReadableStream({ pull(c) { c.enqueue(encoder.encode("pulled")); c.close(); } });
      return await new Response(stream).text();
    });
    assert.equals(text, "pulled");
  });
  test("Array.prototype.push replaced: Headers still work", async () => {
    const result = await patched(Array.prototype, "push", function () { throw new Error("tampered"); }, () => {
      const headers = new Headers([["a", "1"]]);
      headers.append("b", "2");
      headers.set("a", "3");
      return `${headers.get("a")} ${headers.get("b")}`;
    });
    assert.equals(result, "3 2");
  });
  test("Array.prototype[Symbol.iterator] replaced: bodies and headers still work", async () => {
    const original = Array.prototype[Symbol.iterator];
    const text = await patched(Array.prototype, Symbol.iterator, function () { throw new Error("tampered"); }, async () => {
      const response = new Response("iterated", { headers: { "x-a": "1" } });
      const copy = response.clone();
      return `${await copy.text()} ${response.headers.get("x-a")}`;
    });
    assert.equals(Array.prototype[Symbol.iterator], original);
    assert.equals(text, "iterated 1");
  });
  test("Array.prototype.map, filter, some and find replaced: Headers still work", async () => {
    const broken = () => { throw new Error("tampered"); };
    const result = await patched(Array.prototype, "map", broken, () => patched(Array.prototype, "filter", broken, () =>
      patched(Array.prototype, "some", broken, () => patched(Array.prototype, "find", broken, () => {
        const headers = new Headers({ a: "1", b: "2" });
        headers.delete("a");
        return `${headers.has("b")} ${[...headers.keys()].length}`;
      }))));
    assert.equals(result, "true 1");
  });
  test("String.prototype.toLowerCase replaced: header names still match", async () => {
    const value = await patched(String.prototype, "toLowerCase", function () { return "tampered"; }, () => new Headers({ "X-Key": "v" }).get("x-key"));
    assert.equals(value, "v");
  });
  test("JSON.parse replaced: json() still parses", async () => {
    const value = await patched(JSON, "parse", () => "tampered", () => new Response('{"a":1}').json());
    assert.equals(value.a, 1);
  });
  test("Uint8Array replaced on the global: arrayBuffer() still works", async () => {
    const buffer = await patched(globalThis, "Uint8Array", function () { throw new Error("tampered"); }, () => new Response("ab").arrayBuffer());
    assert.equals(buffer.byteLength, 2);
  });
  test("Map.prototype.set replaced: timers still fire", async () => {
    const fired = await patched(Map.prototype, "set", function () { throw new Error("tampered"); }, () => new Promise((resolve) => setTimeout(() => resolve(true), 0)));
    assert.true(fired);
  });
  test("Function.prototype.call replaced: forEach callbacks still run", async () => {
    const seen = [];
    await patched(Function.prototype, "call", function () { throw new Error("tampered"); }, () => {
      new Headers({ a: "1" }).forEach((value) => seen.push(value));
      new URLSearchParams("b=2").forEach((value) => seen.push(value));
    });
    assert.array(seen, ["1", "2"]);
  });
  test("Object.prototype setters do not see the platform's records", async () => {
    let seen = 0;
    const text = await patched(Object.prototype, "bytes", undefined, async () => {
      Object.defineProperty(Object.prototype, "json", { set() { seen++; }, configurable: true });
      try {
        return await new Response("safe").text();
      } finally {
        delete Object.prototype.json;
      }
    });
    assert.equals(text, "safe");
    assert.equals(seen, 0);
  });
  test("Promise.prototype.then replaced: a TransformStream still carries a body", async () => {
    const text = await patched(Promise.prototype, "then", function () { throw new Error("tampered"); }, async () => {
      const { readable, writable } = new TransformStream();
      const writer = writable.getWriter();
      writer.write(encoder.encode("trans"));
      writer.write(encoder.encode("formed"));
      writer.close();
      return await new Response(readable).text();
    });
    assert.equals(text, "transformed");
  });
  test("Array.prototype.push and shift replaced: streams and pipes still flow", async () => {
    const broken = () => { throw new Error("tampered"); };
    const text = await patched(Array.prototype, "push", broken, () => patched(Array.prototype, "shift", broken, async () => {
      const source = new ReadableStream({ start(c) { c.enqueue("a"); c.enqueue("b"); c.close(); } });
      return await new Response(source.pipeThrough(new TextEncoderStream())).text();
    }));
    assert.equals(text, "ab");
  });
  test("the streams' prototype methods replaced: pipes, clones and encoder streams still work", async () => {
    const broken = () => { throw new Error("tampered"); };
    const text = await patched(ReadableStreamDefaultController.prototype, "enqueue", broken, () =>
      patched(WritableStreamDefaultWriter.prototype, "write", broken, () =>
        patched(ReadableStreamDefaultReader.prototype, "read", broken, () =>
          patched(TextDecoder.prototype, "decode", broken, async () => {
            const response = new Response(new Blob(["cloned"]).stream());
            const copy = response.clone();
            const decoded = new Response(copy.body).body.pipeThrough(new TextDecoderStream());
            let out = "";
            const sink = new WritableStream({ write(chunk) { out += chunk; } });
            await decoded.pipeTo(sink);
            return `${await response.text()} ${out}`;
          }))));
    assert.equals(text, "cloned cloned");
  });
  test("Reflect.apply replaced: sources and sinks are still called", async () => {
    const seen = [];
    await patched(Reflect, "apply", () => { throw new Error("tampered"); }, async () => {
      const source = new ReadableStream({ pull(c) { c.enqueue("x"); c.close(); } });
      await source.pipeTo(new WritableStream({ write(chunk) { seen.push(chunk); } }));
    });
    assert.array(seen, ["x"]);
  });
  test("RegExp.prototype.exec replaced: header names and values are still checked", async () => {
    const result = await patched(RegExp.prototype, "exec", function () { return null; }, () => {
      const headers = new Headers({ "x-ok": "1" });
      let refused = false;
      try { headers.append("bad name", "v"); } catch (error) { refused = error instanceof TypeError; }
      return `${headers.get("x-ok")} ${refused}`;
    });
    assert.equals(result, "1 true");
  });
  test("String.prototype methods replaced: multipart bodies still parse and serialise", async () => {
    const broken = () => { throw new Error("tampered"); };
    const names = ["split", "trim", "indexOf", "slice", "replace", "startsWith", "toLowerCase", "charCodeAt"];
    const run = async () => {
      const form = new FormData();
      form.append("field", "a\nb");
      form.append("file", new Blob(["bytes"]), "f.txt");
      const request = new Request("https://example.com/", { method: "POST", body: form });
      const parsed = await request.formData();
      return `${JSON.stringify(parsed.get("field"))} ${await parsed.get("file").text()} ${new Blob(["x\r\ny"], { endings: "native" }).size}`;
    };
    let wrapped = run;
    for (const name of names) {
      const inner = wrapped;
      wrapped = () => patched(String.prototype, name, broken, inner);
    }
    assert.equals(await wrapped(), `"a\\r\\nb" bytes 3`);
  });
  test("Array.prototype.map, sort and flat replaced: URLSearchParams still sorts and serialises", async () => {
    const broken = () => { throw new Error("tampered"); };
    const text = await patched(Array.prototype, "map", broken, () => patched(Array.prototype, "sort", broken, () =>
      patched(Array.prototype, "flat", broken, () => {
        const params = new URLSearchParams("b=2&a=1&b=1");
        params.sort();
        return params.toString();
      })));
    assert.equals(text, "a=1&b=2&b=1");
  });
  test("Map.prototype.get replaced: an AbortSignal still tells its listeners", async () => {
    let heard = 0;
    await patched(Map.prototype, "get", () => undefined, () => {
      const controller = new AbortController();
      controller.signal.addEventListener("abort", () => { heard++; });
      controller.abort();
    });
    assert.equals(heard, 1);
  });
  test("Promise[Symbol.species] replaced: bodies, streams and pipes still settle", async () => {
    // A species whose promises never settle: a platform that chained through it would hang.
    const Stuck = function (executor) { executor(() => {}, () => {}); };
    const text = await patched(Promise, Symbol.species, Stuck, async () => {
      const { readable, writable } = new TransformStream();
      const writer = writable.getWriter();
      writer.write(encoder.encode("spec"));
      writer.write(encoder.encode("ies"));
      writer.close();
      const piped = new ReadableStream({ start(c) { c.enqueue("x"); c.close(); } }).pipeTo(new WritableStream());
      const body = await new Response(readable).text();
      await piped;
      return body;
    });
    assert.equals(text, "species");
  });
  test("a replaced global Response does not change what the platform builds", async () => {
    const kept = Response;
    const status = await patched(globalThis, "Response", function () { throw new Error("tampered"); }, () => kept.json({}).status);
    assert.equals(status, 200);
  });
}
