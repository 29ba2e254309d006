// Streams (WHATWG Streams Standard) and the Encoding Standard's streams: ReadableStream,
// WritableStream, TransformStream, piping, queuing strategies, TextEncoderStream and
// TextDecoderStream. Cases follow what WPT's streams/ and encoding/streams/ assert.

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));
const readAll = async (stream) => {
  const reader = stream.getReader();
  const chunks = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return chunks;
    chunks.push(value);
  }
};
// A sink that records what happens to it.
const recordingSink = (extra = {}) => {
  const events = [];
  const sink = {
    events,
    start: extra.start,
    write(chunk) { events.push(["write", chunk]); return extra.write?.(chunk); },
    close() { events.push(["close"]); return extra.close?.(); },
    abort(reason) { events.push(["abort", reason]); },
  };
  return sink;
};

export default function (test, assert) {
  // -- ReadableStream ---------------------------------------------------------------------------
  test("ReadableStream: a null source throws TypeError", () => assert.throws(TypeError, () => new ReadableStream(null)));
  test("ReadableStream: a non-function pull throws TypeError", () => assert.throws(TypeError, () => new ReadableStream({ pull: "x" })));
  test("ReadableStream: an unknown type throws TypeError", () => assert.throws(TypeError, () => new ReadableStream({ type: "other" })));
  test("ReadableStream: a negative highWaterMark throws RangeError", () => assert.throws(RangeError, () => new ReadableStream({}, { highWaterMark: -1 })));
  test("ReadableStream: a NaN highWaterMark throws RangeError", () => assert.throws(RangeError, () => new ReadableStream({}, { highWaterMark: NaN })));
  test("ReadableStream: a non-function size throws TypeError", () => assert.throws(TypeError, () => new ReadableStream({}, { size: 1 })));
  test("ReadableStream: start() gets a controller with desiredSize", () => {
    let desired;
    new ReadableStream({ start(c) { desired = c.desiredSize; } }, { highWaterMark: 3 });
    assert.equals(desired, 3);
  });
  test("ReadableStream: the controller is a ReadableStreamDefaultController", () => {
    let controller;
    new ReadableStream({ start(c) { controller = c; } });
    assert.true(controller instanceof ReadableStreamDefaultController);
    assert.throws(TypeError, () => new ReadableStreamDefaultController());
  });
  test("ReadableStream: a throw in start() propagates from the constructor", () => {
    const error = new Error("boom");
    try { new ReadableStream({ start() { throw error; } }); } catch (e) { assert.equals(e, error); return; }
    throw new Error("nothing thrown");
  });
  test("ReadableStream: enqueued chunks are read in order, then done", async () => {
    const stream = new ReadableStream({ start(c) { c.enqueue("a"); c.enqueue("b"); c.close(); } });
    assert.array(await readAll(stream), ["a", "b"]);
  });
  test("ReadableStream: desiredSize counts by the size function", () => {
    let controller;
    new ReadableStream({ start(c) { controller = c; } }, { highWaterMark: 10, size: (chunk) => chunk.length });
    controller.enqueue("abcd");
    assert.equals(controller.desiredSize, 6);
  });
  test("ReadableStream: a size function returning NaN errors the stream and throws RangeError", async () => {
    let controller;
    const stream = new ReadableStream({ start(c) { controller = c; } }, { size: () => NaN });
    assert.throws(RangeError, () => controller.enqueue("x"));
    await assert.rejects(RangeError, stream.getReader().read());
  });
  test("ReadableStream: pull() is not called beyond the high-water mark", async () => {
    let pulls = 0;
    new ReadableStream({ pull(c) { pulls++; c.enqueue(pulls); } }, { highWaterMark: 2 });
    await flush();
    assert.equals(pulls, 2);
  });
  test("ReadableStream: with highWaterMark 0, pull() waits for a read", async () => {
    let pulls = 0;
    const stream = new ReadableStream({ pull(c) { pulls++; c.enqueue("x"); } }, { highWaterMark: 0 });
    await flush();
    assert.equals(pulls, 0);
    const { value } = await stream.getReader().read();
    assert.equals(value, "x");
    assert.equals(pulls, 1);
  });
  test("ReadableStream: pull() is not called again while its promise is pending", async () => {
    let pulls = 0;
    let release;
    const stream = new ReadableStream({ pull() { pulls++; return new Promise((r) => { release = r; }); } }, { highWaterMark: 0 });
    const reader = stream.getReader();
    await flush();
    reader.read();
    reader.read();
    await flush();
    assert.equals(pulls, 1);
    release();
    await flush();
    assert.equals(pulls, 2);
  });
  test("ReadableStream: enqueue after close throws TypeError", () => {
    new ReadableStream({ start(c) { c.close(); assert.throws(TypeError, () => c.enqueue("x")); } });
  });
  test("ReadableStream: close twice throws TypeError", () => {
    new ReadableStream({ start(c) { c.close(); assert.throws(TypeError, () => c.close()); } });
  });
  test("ReadableStream: controller.error() rejects reads with the reason", async () => {
    const reason = new Error("r");
    const stream = new ReadableStream({ start(c) { c.error(reason); } });
    const reader = stream.getReader();
    try { await reader.read(); } catch (e) { assert.equals(e, reason); return; }
    throw new Error("read resolved");
  });
  test("ReadableStream: a rejected pull() errors the stream", async () => {
    const stream = new ReadableStream({ pull() { return Promise.reject(new TypeError("p")); } });
    await assert.rejects(TypeError, stream.getReader().read());
  });
  test("ReadableStream: cancel() calls the source's cancel with the reason and resolves undefined", async () => {
    let seen;
    const stream = new ReadableStream({ cancel(reason) { seen = reason; return "ignored"; } });
    assert.equals(await stream.cancel("why"), undefined);
    assert.equals(seen, "why");
  });
  test("ReadableStream: cancel() of a locked stream rejects with TypeError", async () => {
    const stream = new ReadableStream();
    stream.getReader();
    await assert.rejects(TypeError, stream.cancel());
  });
  test("ReadableStream: a cancelled stream reads as done", async () => {
    const stream = new ReadableStream({ start(c) { c.enqueue("a"); } });
    const reader = stream.getReader();
    await reader.cancel();
    assert.true((await reader.read()).done);
  });
  test("ReadableStream: getReader() locks; a second getReader() throws TypeError", () => {
    const stream = new ReadableStream();
    stream.getReader();
    assert.true(stream.locked);
    assert.throws(TypeError, () => stream.getReader());
  });
  test("ReadableStream: getReader({ mode: 'byob' }) throws TypeError on a default stream", () => assert.throws(TypeError, () => new ReadableStream().getReader({ mode: "byob" })));
  test("ReadableStream: getReader() with an unknown mode throws TypeError", () => assert.throws(TypeError, () => new ReadableStream().getReader({ mode: "other" })));
  test("ReadableStreamDefaultReader: closed resolves when the stream closes", async () => {
    let controller;
    const reader = new ReadableStream({ start(c) { controller = c; } }).getReader();
    controller.close();
    assert.equals(await reader.closed, undefined);
  });
  test("ReadableStreamDefaultReader: closed rejects when the stream errors", async () => {
    let controller;
    const reader = new ReadableStream({ start(c) { controller = c; } }).getReader();
    controller.error(new RangeError("e"));
    await assert.rejects(RangeError, reader.closed);
  });
  test("ReadableStreamDefaultReader: releaseLock() rejects closed and pending reads with TypeError", async () => {
    const reader = new ReadableStream().getReader();
    const read = reader.read();
    reader.releaseLock();
    await assert.rejects(TypeError, read);
    await assert.rejects(TypeError, reader.closed);
  });
  test("ReadableStreamDefaultReader: released, the stream can be locked again", () => {
    const stream = new ReadableStream();
    stream.getReader().releaseLock();
    assert.false(stream.locked);
    stream.getReader();
  });
  test("ReadableStreamDefaultReader: read() after releaseLock() rejects with TypeError", async () => {
    const reader = new ReadableStream().getReader();
    reader.releaseLock();
    await assert.rejects(TypeError, reader.read());
  });
  test("ReadableStreamDefaultReader: the constructor refuses a locked stream", () => {
    const stream = new ReadableStream();
    new ReadableStreamDefaultReader(stream);
    assert.throws(TypeError, () => new ReadableStreamDefaultReader(stream));
  });
  test("ReadableStream: tee() gives both branches every chunk", async () => {
    const stream = new ReadableStream({ start(c) { c.enqueue("a"); c.enqueue("b"); c.close(); } });
    const [one, two] = stream.tee();
    assert.array(await readAll(one), ["a", "b"]);
    assert.array(await readAll(two), ["a", "b"]);
  });
  test("ReadableStream: tee() cancels the source once both branches are cancelled", async () => {
    let reason;
    const [one, two] = new ReadableStream({ cancel(r) { reason = r; } }).tee();
    let firstSettled = false;
    const first = one.cancel("1").then(() => { firstSettled = true; });
    await flush();
    assert.equals(reason, undefined);
    assert.false(firstSettled, "the first branch's cancel settles only with the source's");
    await two.cancel("2");
    await first;
    assert.array(reason, ["1", "2"]);
  });
  test("ReadableStream: async iteration reads every chunk", async () => {
    const stream = new ReadableStream({ start(c) { c.enqueue(1); c.enqueue(2); c.close(); } });
    const seen = [];
    for await (const chunk of stream) seen.push(chunk);
    assert.array(seen, [1, 2]);
    assert.false(stream.locked);
  });
  test("ReadableStream: breaking out of async iteration cancels the stream", async () => {
    let cancelled = false;
    const stream = new ReadableStream({ start(c) { c.enqueue(1); c.enqueue(2); }, cancel() { cancelled = true; } });
    for await (const chunk of stream) { assert.equals(chunk, 1); break; }
    assert.true(cancelled);
  });
  test("ReadableStream: values({ preventCancel: true }) leaves the stream uncancelled", async () => {
    let cancelled = false;
    const stream = new ReadableStream({ start(c) { c.enqueue(1); }, cancel() { cancelled = true; } });
    for await (const chunk of stream.values({ preventCancel: true })) { assert.equals(chunk, 1); break; }
    assert.false(cancelled);
    assert.false(stream.locked);
  });
  test("ReadableStream.from() reads an iterable", async () => assert.array(await readAll(ReadableStream.from(["x", "y"])), ["x", "y"]));
  test("ReadableStream.from() reads an async generator", async () => {
    async function* numbers() { yield 1; yield 2; }
    assert.array(await readAll(ReadableStream.from(numbers())), [1, 2]);
  });
  test("ReadableStream: Symbol.toStringTag", () => assert.equals(Object.prototype.toString.call(new ReadableStream()), "[object ReadableStream]"));

  // -- Queuing strategies -----------------------------------------------------------------------
  test("CountQueuingStrategy: size is 1 and highWaterMark as given", () => {
    const strategy = new CountQueuingStrategy({ highWaterMark: 4 });
    assert.equals(strategy.highWaterMark, 4);
    assert.equals(strategy.size("anything"), 1);
  });
  test("ByteLengthQueuingStrategy: size is the chunk's byteLength", () => {
    const strategy = new ByteLengthQueuingStrategy({ highWaterMark: 16 });
    assert.equals(strategy.size(new Uint8Array(5)), 5);
  });
  test("CountQueuingStrategy: highWaterMark is required", () => assert.throws(TypeError, () => new CountQueuingStrategy({})));
  test("ByteLengthQueuingStrategy: used by a ReadableStream", () => {
    let controller;
    new ReadableStream({ start(c) { controller = c; } }, new ByteLengthQueuingStrategy({ highWaterMark: 10 }));
    controller.enqueue(new Uint8Array(4));
    assert.equals(controller.desiredSize, 6);
  });

  // -- WritableStream ---------------------------------------------------------------------------
  test("WritableStream: a null sink throws TypeError", () => assert.throws(TypeError, () => new WritableStream(null)));
  test("WritableStream: a non-function write throws TypeError", () => assert.throws(TypeError, () => new WritableStream({ write: 1 })));
  test("WritableStream: a sink type throws RangeError", () => assert.throws(RangeError, () => new WritableStream({ type: "bytes" })));
  test("WritableStream: writes reach the sink in order, then close", async () => {
    const sink = recordingSink();
    const writer = new WritableStream(sink).getWriter();
    writer.write("a");
    writer.write("b");
    await writer.close();
    assert.equals(JSON.stringify(sink.events), JSON.stringify([["write", "a"], ["write", "b"], ["close"]]));
  });
  test("WritableStream: the sink gets one write at a time", async () => {
    let active = 0;
    let most = 0;
    const writer = new WritableStream({
      async write() { active++; most = Math.max(most, active); await flush(); active--; },
    }).getWriter();
    await Promise.all([writer.write(1), writer.write(2), writer.write(3)]);
    assert.equals(most, 1);
  });
  test("WritableStream: writes wait for start() to settle", async () => {
    const events = [];
    let finishStart;
    const writer = new WritableStream({
      start() { return new Promise((r) => { finishStart = r; }); },
      write(chunk) { events.push(chunk); },
    }).getWriter();
    const written = writer.write("x");
    await flush();
    assert.equals(events.length, 0);
    finishStart();
    await written;
    assert.array(events, ["x"]);
  });
  test("WritableStream: desiredSize falls as writes queue and rises as they finish", async () => {
    const writer = new WritableStream({ write: () => flush() }, { highWaterMark: 2 }).getWriter();
    assert.equals(writer.desiredSize, 2);
    const first = writer.write("a");
    writer.write("b");
    assert.equals(writer.desiredSize, 0);
    await first;
    assert.equals(writer.desiredSize, 1);
  });
  test("WritableStream: ready is pending under backpressure and resolves after", async () => {
    let release;
    const writer = new WritableStream({ write() { return new Promise((r) => { release = r; }); } }).getWriter();
    await writer.ready;
    writer.write("a");
    let ready = false;
    writer.ready.then(() => { ready = true; });
    await flush();
    assert.false(ready);
    release();
    await flush();
    assert.true(ready);
  });
  test("WritableStream: with highWaterMark 0, ready is pending from the start", async () => {
    const writer = new WritableStream({}, { highWaterMark: 0 }).getWriter();
    let ready = false;
    writer.ready.then(() => { ready = true; });
    await flush();
    assert.false(ready);
    assert.equals(writer.desiredSize, 0);
  });
  test("WritableStream: a rejected write errors the stream", async () => {
    const error = new RangeError("w");
    const writer = new WritableStream({ write() { throw error; } }).getWriter();
    await assert.rejects(RangeError, writer.write("a"));
    await assert.rejects(RangeError, writer.closed);
    await assert.rejects(RangeError, writer.write("b"));
  });
  test("WritableStream: controller.error() errors the stream", async () => {
    let controller;
    const writer = new WritableStream({ start(c) { controller = c; } }).getWriter();
    await flush();
    controller.error(new RangeError("c"));
    await assert.rejects(RangeError, writer.closed);
    assert.equals(writer.desiredSize, null);
  });
  test("WritableStream: abort() rejects queued writes with the reason once the write in flight ends", async () => {
    const sink = recordingSink({ write: () => flush() });
    const writer = new WritableStream(sink).getWriter();
    await writer.ready;
    writer.write("a");
    const second = writer.write("b");
    const aborted = writer.abort("stop");
    let rejection = null;
    await second.catch((e) => { rejection = e; });
    assert.equals(rejection, "stop");
    await aborted;
    assert.equals(JSON.stringify(sink.events), JSON.stringify([["write", "a"], ["abort", "stop"]]));
  });
  test("WritableStream: abort() of an idle stream calls the sink's abort with the reason", async () => {
    const sink = recordingSink();
    const writer = new WritableStream(sink).getWriter();
    await writer.ready;
    await writer.abort("reason");
    assert.equals(JSON.stringify(sink.events), JSON.stringify([["abort", "reason"]]));
    try { await writer.closed; } catch (e) { assert.equals(e, "reason"); return; }
    throw new Error("closed resolved");
  });
  test("WritableStream: abort() of a closed stream resolves", async () => {
    const writer = new WritableStream().getWriter();
    await writer.close();
    assert.equals(await writer.abort(), undefined);
  });
  test("WritableStream: the controller's signal aborts with the stream", async () => {
    let signal;
    const writer = new WritableStream({ start(c) { signal = c.signal; } }).getWriter();
    assert.false(signal.aborted);
    await writer.abort("why");
    assert.true(signal.aborted);
    assert.equals(signal.reason, "why");
  });
  test("WritableStream: write after close rejects with TypeError", async () => {
    const writer = new WritableStream().getWriter();
    writer.close();
    await assert.rejects(TypeError, writer.write("x"));
  });
  test("WritableStream: close twice rejects with TypeError", async () => {
    const writer = new WritableStream().getWriter();
    writer.close();
    await assert.rejects(TypeError, writer.close());
  });
  test("WritableStream: a rejected close errors the stream", async () => {
    const writer = new WritableStream({ close() { throw new RangeError("c"); } }).getWriter();
    await assert.rejects(RangeError, writer.close());
    await assert.rejects(RangeError, writer.closed);
  });
  test("WritableStream: closed resolves after the sink's close", async () => {
    const writer = new WritableStream().getWriter();
    writer.close();
    assert.equals(await writer.closed, undefined);
  });
  test("WritableStream: getWriter() locks; a second throws TypeError", () => {
    const stream = new WritableStream();
    stream.getWriter();
    assert.true(stream.locked);
    assert.throws(TypeError, () => stream.getWriter());
  });
  test("WritableStream: abort() and close() of a locked stream reject with TypeError", async () => {
    const stream = new WritableStream();
    stream.getWriter();
    await assert.rejects(TypeError, stream.abort());
    await assert.rejects(TypeError, stream.close());
  });
  test("WritableStreamDefaultWriter: releaseLock() rejects ready and closed with TypeError and unlocks", async () => {
    const stream = new WritableStream();
    const writer = stream.getWriter();
    writer.releaseLock();
    assert.false(stream.locked);
    await assert.rejects(TypeError, writer.closed);
    await assert.rejects(TypeError, writer.ready);
    await assert.rejects(TypeError, writer.write("x"));
    assert.throws(TypeError, () => writer.desiredSize);
  });
  test("WritableStream: a size function that throws errors the stream", async () => {
    const writer = new WritableStream({}, { size() { throw new RangeError("s"); } }).getWriter();
    await assert.rejects(RangeError, writer.write("x"));
    await assert.rejects(RangeError, writer.closed);
  });
  test("WritableStream: close() of an unlocked stream", async () => {
    const sink = recordingSink();
    await new WritableStream(sink).close();
    assert.equals(JSON.stringify(sink.events), JSON.stringify([["close"]]));
  });
  test("WritableStreamDefaultController cannot be constructed", () => assert.throws(TypeError, () => new WritableStreamDefaultController()));

  // -- TransformStream --------------------------------------------------------------------------
  test("TransformStream: the identity transform passes chunks through", async () => {
    const { readable, writable } = new TransformStream();
    const writer = writable.getWriter();
    writer.write("a");
    writer.write("b");
    writer.close();
    assert.array(await readAll(readable), ["a", "b"]);
  });
  test("TransformStream: transform() may enqueue any number of chunks", async () => {
    const stream = new TransformStream({ transform(chunk, c) { c.enqueue(chunk); c.enqueue(chunk.toUpperCase()); } });
    const writer = stream.writable.getWriter();
    writer.write("a");
    writer.close();
    assert.array(await readAll(stream.readable), ["a", "A"]);
  });
  test("TransformStream: flush() runs at close and may enqueue", async () => {
    const stream = new TransformStream({ transform() {}, flush(c) { c.enqueue("end"); } });
    const writer = stream.writable.getWriter();
    writer.write("a");
    writer.close();
    assert.array(await readAll(stream.readable), ["end"]);
  });
  test("TransformStream: a throwing transform() errors both sides", async () => {
    const stream = new TransformStream({ transform() { throw new RangeError("t"); } });
    const writer = stream.writable.getWriter();
    const read = stream.readable.getReader().read();
    await assert.rejects(RangeError, writer.write("a"));
    await assert.rejects(RangeError, read);
  });
  test("TransformStream: controller.error() errors both sides", async () => {
    const stream = new TransformStream({ start(c) { c.error(new RangeError("e")); } });
    await assert.rejects(RangeError, stream.readable.getReader().read());
    await assert.rejects(RangeError, stream.writable.getWriter().closed);
  });
  test("TransformStream: controller.terminate() closes the readable and errors the writable", async () => {
    const stream = new TransformStream({ start(c) { c.enqueue("last"); c.terminate(); } });
    assert.array(await readAll(stream.readable), ["last"]);
    await assert.rejects(TypeError, stream.writable.getWriter().write("x"));
  });
  test("TransformStream: the writable waits while the readable has no room", async () => {
    const stream = new TransformStream();
    const writer = stream.writable.getWriter();
    let written = false;
    writer.write("a").then(() => { written = true; });
    await flush();
    assert.false(written);
    const reader = stream.readable.getReader();
    assert.equals((await reader.read()).value, "a");
    await flush();
    assert.true(written);
  });
  test("TransformStream: desiredSize of the controller is the readable's", () => {
    let desired;
    new TransformStream({ start(c) { desired = c.desiredSize; } }, undefined, { highWaterMark: 5 });
    assert.equals(desired, 5);
  });
  test("TransformStream: cancelling the readable errors the writable", async () => {
    const stream = new TransformStream();
    const writer = stream.writable.getWriter();
    await stream.readable.cancel(new RangeError("c"));
    await assert.rejects(RangeError, writer.closed);
  });
  test("TransformStream: aborting the writable errors the readable", async () => {
    const stream = new TransformStream();
    await stream.writable.abort(new RangeError("a"));
    await assert.rejects(RangeError, stream.readable.getReader().read());
  });
  test("TransformStream: transformer.cancel is called when the readable is cancelled", async () => {
    let reason;
    const stream = new TransformStream({ cancel(r) { reason = r; } });
    await stream.readable.cancel("why");
    assert.equals(reason, "why");
  });
  test("TransformStream: readableType or writableType throws RangeError", () => {
    assert.throws(RangeError, () => new TransformStream({ readableType: "bytes" }));
    assert.throws(RangeError, () => new TransformStream({ writableType: "bytes" }));
  });
  test("TransformStream: a null transformer throws TypeError", () => assert.throws(TypeError, () => new TransformStream(null)));
  test("TransformStream: start() is awaited before the first transform", async () => {
    const events = [];
    let finishStart;
    const stream = new TransformStream({
      start() { return new Promise((r) => { finishStart = r; }); },
      transform(chunk, c) { events.push(chunk); c.enqueue(chunk); },
    });
    stream.writable.getWriter().write("x");
    const read = stream.readable.getReader().read();
    await flush();
    assert.equals(events.length, 0);
    finishStart();
    assert.equals((await read).value, "x");
  });
  test("TransformStream: a streamed Response body from its readable", async () => {
    const { readable, writable } = new TransformStream();
    const writer = writable.getWriter();
    const encoder = new TextEncoder();
    (async () => { await writer.write(encoder.encode("hello ")); await writer.write(encoder.encode("world")); await writer.close(); })();
    assert.equals(await new Response(readable).text(), "hello world");
  });

  // -- Piping -----------------------------------------------------------------------------------
  test("pipeTo: every chunk arrives, then the destination closes", async () => {
    const sink = recordingSink();
    const source = new ReadableStream({ start(c) { c.enqueue("a"); c.enqueue("b"); c.close(); } });
    await source.pipeTo(new WritableStream(sink));
    assert.equals(JSON.stringify(sink.events), JSON.stringify([["write", "a"], ["write", "b"], ["close"]]));
  });
  test("pipeTo: both streams are unlocked afterwards", async () => {
    const source = new ReadableStream({ start(c) { c.close(); } });
    const dest = new WritableStream();
    await source.pipeTo(dest);
    assert.false(source.locked);
    assert.false(dest.locked);
  });
  test("pipeTo: preventClose leaves the destination open", async () => {
    const sink = recordingSink();
    const dest = new WritableStream(sink);
    await new ReadableStream({ start(c) { c.enqueue("a"); c.close(); } }).pipeTo(dest, { preventClose: true });
    assert.equals(JSON.stringify(sink.events), JSON.stringify([["write", "a"]]));
    const writer = dest.getWriter();
    await writer.write("b");
  });
  test("pipeTo: a source error aborts the destination and rejects", async () => {
    const sink = recordingSink();
    const error = new RangeError("source");
    const source = new ReadableStream({ start(c) { c.error(error); } });
    await assert.rejects(RangeError, source.pipeTo(new WritableStream(sink)));
    assert.equals(sink.events[0][0], "abort");
    assert.equals(sink.events[0][1], error);
  });
  test("pipeTo: preventAbort leaves the destination unaborted", async () => {
    const sink = recordingSink();
    const source = new ReadableStream({ start(c) { c.error(new RangeError("s")); } });
    await assert.rejects(RangeError, source.pipeTo(new WritableStream(sink), { preventAbort: true }));
    assert.equals(sink.events.length, 0);
  });
  test("pipeTo: a destination error cancels the source and rejects", async () => {
    let cancelled;
    const source = new ReadableStream({ start(c) { c.enqueue("a"); }, cancel(r) { cancelled = r; } });
    const error = new RangeError("dest");
    await assert.rejects(RangeError, source.pipeTo(new WritableStream({ write() { throw error; } })));
    assert.equals(cancelled, error);
  });
  test("pipeTo: preventCancel leaves the source uncancelled", async () => {
    let cancelled = false;
    const source = new ReadableStream({ start(c) { c.enqueue("a"); }, cancel() { cancelled = true; } });
    await assert.rejects(RangeError, source.pipeTo(new WritableStream({ write() { throw new RangeError("d"); } }), { preventCancel: true }));
    assert.false(cancelled);
    assert.false(source.locked);
  });
  test("pipeTo: a closed destination cancels the source with TypeError", async () => {
    const dest = new WritableStream();
    await dest.close();
    let reason;
    await assert.rejects(TypeError, new ReadableStream({ cancel(r) { reason = r; } }).pipeTo(dest));
    assert.true(reason instanceof TypeError);
  });
  test("pipeTo: an aborted signal rejects with its reason, aborts and cancels", async () => {
    const controller = new AbortController();
    controller.abort(new RangeError("abort"));
    const sink = recordingSink();
    let cancelled = false;
    const source = new ReadableStream({ cancel() { cancelled = true; } });
    await assert.rejects(RangeError, source.pipeTo(new WritableStream(sink), { signal: controller.signal }));
    assert.true(cancelled);
    assert.equals(sink.events[0][0], "abort");
  });
  test("pipeTo: a signal aborted mid-pipe stops it", async () => {
    const controller = new AbortController();
    const source = new ReadableStream({ pull(c) { c.enqueue("x"); } });
    const piping = source.pipeTo(new WritableStream({ write: () => flush() }), { signal: controller.signal });
    await flush();
    controller.abort(new RangeError("stop"));
    await assert.rejects(RangeError, piping);
  });
  test("pipeTo: a destination that is not a WritableStream rejects with TypeError", async () => assert.rejects(TypeError, new ReadableStream().pipeTo({})));
  test("pipeTo: a locked source rejects with TypeError", async () => {
    const source = new ReadableStream();
    source.getReader();
    await assert.rejects(TypeError, source.pipeTo(new WritableStream()));
  });
  test("pipeTo: a locked destination rejects with TypeError", async () => {
    const dest = new WritableStream();
    dest.getWriter();
    await assert.rejects(TypeError, new ReadableStream().pipeTo(dest));
  });
  test("pipeTo: a signal that is not an AbortSignal rejects with TypeError", async () => assert.rejects(TypeError, new ReadableStream().pipeTo(new WritableStream(), { signal: {} })));
  test("pipeTo: respects the destination's backpressure", async () => {
    let pulls = 0;
    const source = new ReadableStream({ pull(c) { pulls++; c.enqueue(pulls); if (pulls === 100) c.close(); } }, { highWaterMark: 0 });
    source.pipeTo(new WritableStream({ write: () => new Promise(() => {}) }));
    for (let i = 0; i < 5; i++) await flush();
    assert.true(pulls < 5, `pulled ${pulls} chunks into a stuck sink`);
  });
  test("pipeThrough: returns the transform's readable and pipes into its writable", async () => {
    const upper = new TransformStream({ transform(chunk, c) { c.enqueue(chunk.toUpperCase()); } });
    const source = new ReadableStream({ start(c) { c.enqueue("a"); c.enqueue("b"); c.close(); } });
    const out = source.pipeThrough(upper);
    assert.equals(out, upper.readable);
    assert.array(await readAll(out), ["A", "B"]);
  });
  test("pipeThrough: a pair without a WritableStream throws TypeError", () => assert.throws(TypeError, () => new ReadableStream().pipeThrough({ readable: new ReadableStream(), writable: {} })));
  test("pipeThrough: a locked source throws TypeError", () => {
    const source = new ReadableStream();
    source.getReader();
    assert.throws(TypeError, () => source.pipeThrough(new TransformStream()));
  });

  // -- TextEncoderStream and TextDecoderStream --------------------------------------------------
  const through = async (transform, chunks) => {
    const writer = transform.writable.getWriter();
    const reading = readAll(transform.readable);
    for (const chunk of chunks) writer.write(chunk).catch(() => {});
    writer.close().catch(() => {});
    return reading;
  };
  const joinBytes = (chunks) => Array.from(chunks.reduce((all, c) => [...all, ...c], []));
  test("TextEncoderStream: encodes strings to UTF-8 chunks", async () => {
    const chunks = await through(new TextEncoderStream(), ["a", "€"]);
    assert.true(chunks.every((c) => c instanceof Uint8Array));
    assert.array(joinBytes(chunks), [0x61, 0xe2, 0x82, 0xac]);
  });
  test("TextEncoderStream: a surrogate pair split across chunks is one character", async () => {
    assert.array(joinBytes(await through(new TextEncoderStream(), ["\ud83d", "\ude00"])), [0xf0, 0x9f, 0x98, 0x80]);
  });
  test("TextEncoderStream: a lone high surrogate at the end becomes U+FFFD", async () => {
    assert.array(joinBytes(await through(new TextEncoderStream(), ["a\ud83d"])), [0x61, 0xef, 0xbf, 0xbd]);
  });
  test("TextEncoderStream: a lone low surrogate becomes U+FFFD", async () => {
    assert.array(joinBytes(await through(new TextEncoderStream(), ["\ude00"])), [0xef, 0xbf, 0xbd]);
  });
  test("TextEncoderStream: an empty chunk enqueues nothing", async () => assert.equals((await through(new TextEncoderStream(), [""])).length, 0));
  test("TextEncoderStream: chunks are converted to strings", async () => assert.array(joinBytes(await through(new TextEncoderStream(), [12, null])), [0x31, 0x32, 0x6e, 0x75, 0x6c, 0x6c]));
  test("TextEncoderStream: encoding is utf-8, readable and writable are streams", () => {
    const stream = new TextEncoderStream();
    assert.equals(stream.encoding, "utf-8");
    assert.true(stream.readable instanceof ReadableStream);
    assert.true(stream.writable instanceof WritableStream);
  });
  test("TextDecoderStream: decodes UTF-8 chunks", async () => {
    assert.equals((await through(new TextDecoderStream(), [new Uint8Array([0x68, 0x69])])).join(""), "hi");
  });
  test("TextDecoderStream: a character split across chunks", async () => {
    assert.equals((await through(new TextDecoderStream(), [new Uint8Array([0xe2]), new Uint8Array([0x82]), new Uint8Array([0xac])])).join(""), "€");
  });
  test("TextDecoderStream: an incomplete character at the end becomes U+FFFD", async () => {
    assert.equals((await through(new TextDecoderStream(), [new Uint8Array([0x61, 0xe2, 0x82])])).join(""), "a\ufffd");
  });
  test("TextDecoderStream: fatal errors the stream with TypeError", async () => {
    const stream = new TextDecoderStream("utf-8", { fatal: true });
    const writer = stream.writable.getWriter();
    writer.write(new Uint8Array([0xff])).catch(() => {});
    await assert.rejects(TypeError, stream.readable.getReader().read());
  });
  test("TextDecoderStream: the BOM is removed unless ignoreBOM", async () => {
    const bom = [0xef, 0xbb, 0xbf, 0x61];
    assert.equals((await through(new TextDecoderStream(), [new Uint8Array(bom)])).join(""), "a");
    assert.equals((await through(new TextDecoderStream("utf-8", { ignoreBOM: true }), [new Uint8Array(bom)])).join(""), "\ufeffa");
  });
  test("TextDecoderStream: a BOM split across chunks is still removed", async () => {
    assert.equals((await through(new TextDecoderStream(), [new Uint8Array([0xef, 0xbb]), new Uint8Array([0xbf, 0x62])])).join(""), "b");
  });
  test("TextDecoderStream: UTF-16LE and a legacy label", async () => {
    assert.equals((await through(new TextDecoderStream("utf-16le"), [new Uint8Array([0x61, 0x00, 0x62])])).join(""), "a\ufffd");
    const latin = new TextDecoderStream("latin1");
    assert.equals(latin.encoding, "windows-1252");
    assert.equals((await through(latin, [new Uint8Array([0xe9, 0x80])])).join(""), "é€");
  });
  test("TextDecoderStream: a chunk that is not a BufferSource errors the stream with TypeError", async () => {
    const stream = new TextDecoderStream();
    const writer = stream.writable.getWriter();
    const read = stream.readable.getReader().read();
    await assert.rejects(TypeError, writer.write("text"));
    await assert.rejects(TypeError, read);
  });
  test("TextDecoderStream: an unknown label throws RangeError", () => assert.throws(RangeError, () => new TextDecoderStream("no-such-encoding")));
  test("TextDecoderStream: encoding, fatal and ignoreBOM", () => {
    const stream = new TextDecoderStream("UTF8", { fatal: true });
    assert.equals(stream.encoding, "utf-8");
    assert.true(stream.fatal);
    assert.false(stream.ignoreBOM);
  });
  test("TextDecoderStream: a DataView and an ArrayBuffer are accepted", async () => {
    const bytes = new Uint8Array([0x78, 0x79]);
    assert.equals((await through(new TextDecoderStream(), [new DataView(bytes.buffer), bytes.buffer])).join(""), "xyxy");
  });
  test("TextEncoderStream piped into TextDecoderStream round-trips", async () => {
    const source = ReadableStream.from(["h\u00e9llo ", "w\ud83d", "\ude00rld"]);
    const text = (await readAll(source.pipeThrough(new TextEncoderStream()).pipeThrough(new TextDecoderStream()))).join("");
    assert.equals(text, "h\u00e9llo w\ud83d\ude00rld");
  });
}
