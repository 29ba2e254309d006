// WritableStream, TransformStream, the pipe behind ReadableStream's pipeTo/pipeThrough, and
// TextEncoderStream/TextDecoderStream, per the WHATWG Streams and Encoding Standards.
//
// A part of the prelude: compiled to bytecode once per process and evaluated in an instance only
// when app code first touches one of its globals (it loads the readable part it builds on).

export default function install(host, internal) {
  const {
    call, PromiseResolve, PromiseReject, PromiseWithResolvers, ArrayPush, ArrayShift, ReflectApply,
    SymbolToStringTag, StringCharCodeAt, StringSlice,
  } = internal.primordials;
  const record = internal.record;
  internal.load("streams");
  const { INTERNAL, method, promiseCall, strategyOf, sizeOf, SizedQueue } = internal.streamSupport;
  const readable = internal.readableOps;
  const { then } = internal.load("shared");
  // `promise`'s outcome, passed on to `made` (a deferred). The platform never resolves a promise
  // with a promise, or returns one from a reaction: either would call its (replaceable) `then`.
  const forward = (promise, made) => { then(promise, made.resolve, made.reject); };
  const ignore = () => undefined;
  // A promise with its resolvers, and whether it settled.
  const deferred = () => {
    const { promise, resolve, reject } = PromiseWithResolvers();
    const made = {
      __proto__: null,
      promise,
      settled: false,
      resolve(value) { made.settled = true; resolve(value); },
      reject(reason) { made.settled = true; reject(reason); },
    };
    return made;
  };
  // The marker of a close in a writable stream's queue.
  const CLOSE = record({});

  // ---------------------------------------------------------------------------------------------
  // WritableStream.

  const ops = { __proto__: null };

  class WritableStreamDefaultController {
    #stream;
    #abortController = null;
    constructor(token, stream) {
      if (token !== INTERNAL) throw new TypeError("WritableStreamDefaultController cannot be constructed by app code");
      this.#stream = stream;
    }
    // Aborted when the stream is: a sink's long write can stop early.
    get signal() {
      if (this.#abortController === null) this.#abortController = new (internal.load("extras").AbortController)();
      return this.#abortController.signal;
    }
    static {
      ops.signalAbort = (controller, reason) => {
        if (controller.#abortController !== null) controller.#abortController.abort(reason);
        else {
          // Made aborted, so a sink that reads `signal` later still sees the abort.
          controller.#abortController = new (internal.load("extras").AbortController)();
          controller.#abortController.abort(reason);
        }
      };
    }
    error(reason = undefined) {
      if (ops.state(this.#stream) === "writable") ops.startErroring(this.#stream, reason);
    }
    get [SymbolToStringTag]() { return "WritableStreamDefaultController"; }
  }

  class WritableStream {
    #state = "writable";
    #storedError = undefined;
    #sink;
    #write;
    #close;
    #abort;
    #controller;
    #writer = null;
    #highWaterMark;
    #size;
    #queue = new SizedQueue();
    #started = false;
    #backpressure = false;
    // Promises of writes not yet done, oldest first; the one the sink has now.
    #writeRequests = [];
    #inFlightWrite = null;
    #closeRequest = null;
    #inFlightClose = null;
    #pendingAbort = null;

    constructor(sink = undefined, strategy = undefined) {
      if (sink === undefined) sink = { __proto__: null };
      else if (sink === null || (typeof sink !== "object" && typeof sink !== "function")) {
        throw new TypeError("WritableStream: the underlying sink must be an object");
      }
      const abort = method(sink, "abort", "WritableStream");
      const close = method(sink, "close", "WritableStream");
      const start = method(sink, "start", "WritableStream");
      if (sink.type !== undefined) throw new RangeError("WritableStream: the sink's type must be undefined");
      const write = method(sink, "write", "WritableStream");
      const { highWaterMark, size } = strategyOf(strategy, 1, "WritableStream");
      this.#sink = sink;
      this.#write = write;
      this.#close = close;
      this.#abort = abort;
      this.#highWaterMark = highWaterMark;
      this.#size = size;
      this.#controller = new WritableStreamDefaultController(INTERNAL, this);
      this.#updateBackpressure();
      const started = start === undefined ? undefined : ReflectApply(start, sink, [this.#controller]);
      then(PromiseResolve(started), () => {
        this.#started = true;
        this.#advanceQueue();
      }, (reason) => {
        this.#started = true;
        this.#dealWithRejection(reason);
      });
    }

    static {
      ops.is = (value) => value !== null && typeof value === "object" && #state in value;
      ops.state = (stream) => stream.#state;
      ops.storedError = (stream) => stream.#storedError;
      ops.startErroring = (stream, reason) => stream.#startErroring(reason);
      ops.abort = (stream, reason) => stream.#abortStream(reason);
      ops.close = (stream) => stream.#closeStream();
      ops.write = (stream, chunk) => stream.#writeChunk(chunk);
      ops.closeQueuedOrInFlight = (stream) => stream.#closeRequest !== null || stream.#inFlightClose !== null;
      ops.desiredSize = (stream) => stream.#desiredSize();
      ops.backpressure = (stream) => stream.#backpressure;
      ops.writer = (stream) => stream.#writer;
      ops.setWriter = (stream, writer) => { stream.#writer = writer; };
      ops.controller = (stream) => stream.#controller;
      ops.errorIfNeeded = (stream, reason) => {
        if (stream.#state === "writable") stream.#startErroring(reason);
      };
    }

    #desiredSize() {
      if (this.#state === "errored" || this.#state === "erroring") return null;
      if (this.#state === "closed") return 0;
      return this.#highWaterMark - this.#queue.total;
    }
    #updateBackpressure() {
      const backpressure = this.#highWaterMark - this.#queue.total <= 0;
      if (backpressure === this.#backpressure) return;
      this.#backpressure = backpressure;
      if (this.#writer !== null && this.#state === "writable") writerBackpressure(this.#writer, backpressure);
    }
    #writeChunk(chunk) {
      let size;
      try {
        size = sizeOf(this.#size, chunk);
      } catch (error) {
        ops.errorIfNeeded(this, error);
        size = 1;
      }
      if (this.#state === "errored") return PromiseReject(this.#storedError);
      if (ops.closeQueuedOrInFlight(this) || this.#state === "closed") {
        return PromiseReject(new TypeError("WritableStream: cannot write to a stream that is closed or closing"));
      }
      if (this.#state === "erroring") return PromiseReject(this.#storedError);
      const request = deferred();
      call(ArrayPush, this.#writeRequests, request);
      this.#queue.push(chunk, size);
      this.#updateBackpressure();
      this.#advanceQueue();
      return request.promise;
    }
    #closeStream() {
      if (this.#state === "closed" || this.#state === "errored") {
        return PromiseReject(new TypeError("WritableStream: the stream is already closed or errored"));
      }
      if (ops.closeQueuedOrInFlight(this)) return PromiseReject(new TypeError("WritableStream: the stream is already closing"));
      const request = (this.#closeRequest = deferred());
      if (this.#writer !== null && this.#backpressure && this.#state === "writable") writerBackpressure(this.#writer, false);
      this.#queue.push(CLOSE, 0);
      this.#advanceQueue();
      return request.promise;
    }
    #abortStream(reason) {
      if (this.#state === "closed" || this.#state === "errored") return PromiseResolve();
      ops.signalAbort(this.#controller, reason);
      // The signal's listeners may have closed or errored the stream.
      if (this.#state === "closed" || this.#state === "errored") return PromiseResolve();
      if (this.#pendingAbort !== null) return this.#pendingAbort.promise;
      const wasAlreadyErroring = this.#state === "erroring";
      if (wasAlreadyErroring) reason = undefined;
      const { promise, resolve, reject } = PromiseWithResolvers();
      this.#pendingAbort = record({ promise, resolve, reject, reason, wasAlreadyErroring });
      if (!wasAlreadyErroring) this.#startErroring(reason);
      return promise;
    }
    // The sink gets the next write or the close, one at a time, once it started.
    #advanceQueue() {
      if (!this.#started || this.#inFlightWrite !== null) return;
      if (this.#state === "erroring") {
        this.#finishErroring();
        return;
      }
      if (this.#queue.chunks.length === 0) return;
      const chunk = this.#queue.chunks[0];
      if (chunk === CLOSE) this.#processClose();
      else this.#processWrite(chunk);
    }
    #processWrite(chunk) {
      this.#inFlightWrite = call(ArrayShift, this.#writeRequests);
      then(promiseCall(this.#write, this.#sink, [chunk, this.#controller]), () => {
        this.#inFlightWrite.resolve();
        this.#inFlightWrite = null;
        this.#queue.shift();
        if (!ops.closeQueuedOrInFlight(this) && this.#state === "writable") this.#updateBackpressure();
        this.#advanceQueue();
      }, (reason) => {
        if (this.#state === "writable") this.#clearAlgorithms();
        this.#inFlightWrite.reject(reason);
        this.#inFlightWrite = null;
        this.#dealWithRejection(reason);
      });
    }
    #processClose() {
      this.#inFlightClose = this.#closeRequest;
      this.#closeRequest = null;
      this.#queue.shift();
      const close = this.#close;
      this.#clearAlgorithms();
      then(promiseCall(close, this.#sink, [this.#controller]), () => {
        this.#inFlightClose.resolve();
        this.#inFlightClose = null;
        if (this.#state === "erroring") {
          this.#storedError = undefined;
          if (this.#pendingAbort !== null) {
            this.#pendingAbort.resolve();
            this.#pendingAbort = null;
          }
        }
        this.#state = "closed";
        if (this.#writer !== null) writerClosed(this.#writer).resolve();
      }, (reason) => {
        this.#inFlightClose.reject(reason);
        this.#inFlightClose = null;
        if (this.#pendingAbort !== null) {
          this.#pendingAbort.reject(reason);
          this.#pendingAbort = null;
        }
        this.#dealWithRejection(reason);
      });
    }
    #clearAlgorithms() {
      this.#write = undefined;
      this.#close = undefined;
      this.#abort = undefined;
      this.#size = undefined;
    }
    #dealWithRejection(reason) {
      if (this.#state === "writable") this.#startErroring(reason);
      else this.#finishErroring();
    }
    #startErroring(reason) {
      this.#state = "erroring";
      this.#storedError = reason;
      if (this.#writer !== null) writerEnsureReadyRejected(this.#writer, reason);
      if (this.#inFlightWrite === null && this.#inFlightClose === null && this.#started) this.#finishErroring();
    }
    #finishErroring() {
      this.#state = "errored";
      const abort = this.#abort;
      this.#clearAlgorithms();
      const error = this.#storedError;
      const requests = this.#writeRequests;
      this.#writeRequests = [];
      for (let i = 0; i < requests.length; i++) requests[i].reject(error);
      this.#queue.reset();
      const pending = this.#pendingAbort;
      this.#pendingAbort = null;
      if (pending === null) {
        this.#rejectClosed();
        return;
      }
      if (pending.wasAlreadyErroring) {
        pending.reject(error);
        this.#rejectClosed();
        return;
      }
      then(promiseCall(abort, this.#sink, [pending.reason]), () => {
        pending.resolve();
        this.#rejectClosed();
      }, (reason) => {
        pending.reject(reason);
        this.#rejectClosed();
      });
    }
    #rejectClosed() {
      if (this.#closeRequest !== null) {
        this.#closeRequest.reject(this.#storedError);
        this.#closeRequest = null;
      }
      if (this.#writer !== null) writerRejectClosed(this.#writer, this.#storedError);
    }

    get locked() {
      if (!ops.is(this)) throw new TypeError("locked read on an object that is not a WritableStream");
      return this.#writer !== null;
    }
    abort(reason = undefined) {
      if (!ops.is(this)) return PromiseReject(new TypeError("abort() called on an object that is not a WritableStream"));
      if (this.#writer !== null) return PromiseReject(new TypeError("WritableStream: the stream is locked to a writer"));
      return this.#abortStream(reason);
    }
    close() {
      if (!ops.is(this)) return PromiseReject(new TypeError("close() called on an object that is not a WritableStream"));
      if (this.#writer !== null) return PromiseReject(new TypeError("WritableStream: the stream is locked to a writer"));
      return this.#closeStream();
    }
    getWriter() { return new WritableStreamDefaultWriter(this); }
    get [SymbolToStringTag]() { return "WritableStream"; }
  }

  let writerBackpressure, writerEnsureReadyRejected, writerRejectClosed, writerClosed, writerRelease, writerReady;

  // A settled promise, as the standard makes `ready` and `closed` in each state.
  const resolvedPromise = () => {
    const made = deferred();
    made.resolve();
    return made;
  };
  const rejectedPromise = (reason) => {
    const made = deferred();
    made.reject(reason);
    return made;
  };

  class WritableStreamDefaultWriter {
    #stream = null;
    #ready;
    #closed;
    constructor(stream) {
      if (!ops.is(stream)) throw new TypeError("WritableStreamDefaultWriter: expected a WritableStream");
      if (ops.writer(stream) !== null) throw new TypeError("WritableStreamDefaultWriter: the stream is already locked to a writer");
      this.#stream = stream;
      ops.setWriter(stream, this);
      const state = ops.state(stream);
      if (state === "writable") {
        this.#ready = !ops.closeQueuedOrInFlight(stream) && ops.backpressure(stream) ? deferred() : resolvedPromise();
        this.#closed = deferred();
      } else if (state === "erroring") {
        this.#ready = rejectedPromise(ops.storedError(stream));
        this.#closed = deferred();
      } else if (state === "closed") {
        this.#ready = resolvedPromise();
        this.#closed = resolvedPromise();
      } else {
        this.#ready = rejectedPromise(ops.storedError(stream));
        this.#closed = rejectedPromise(ops.storedError(stream));
      }
    }
    static {
      writerBackpressure = (writer, backpressure) => {
        if (backpressure) writer.#ready = deferred();
        else writer.#ready.resolve();
      };
      // A pending promise rejects; a settled one is replaced by a rejected one.
      writerEnsureReadyRejected = (writer, reason) => {
        if (writer.#ready.settled) writer.#ready = rejectedPromise(reason);
        else writer.#ready.reject(reason);
      };
      writerRejectClosed = (writer, reason) => {
        if (writer.#closed.settled) writer.#closed = rejectedPromise(reason);
        else writer.#closed.reject(reason);
      };
      writerClosed = (writer) => writer.#closed;
      writerReady = (writer) => writer.#ready.promise;
      writerRelease = (writer) => {
        const stream = writer.#stream;
        if (stream === null) return;
        const released = new TypeError("WritableStreamDefaultWriter: the writer's lock was released");
        writerEnsureReadyRejected(writer, released);
        writerRejectClosed(writer, released);
        ops.setWriter(stream, null);
        writer.#stream = null;
      };
    }
    get closed() { return this.#closed.promise; }
    get ready() { return this.#ready.promise; }
    get desiredSize() {
      if (this.#stream === null) throw new TypeError("WritableStreamDefaultWriter: the writer was released");
      return ops.desiredSize(this.#stream);
    }
    abort(reason = undefined) {
      if (this.#stream === null) return PromiseReject(new TypeError("WritableStreamDefaultWriter: the writer was released"));
      return ops.abort(this.#stream, reason);
    }
    close() {
      if (this.#stream === null) return PromiseReject(new TypeError("WritableStreamDefaultWriter: the writer was released"));
      if (ops.closeQueuedOrInFlight(this.#stream)) return PromiseReject(new TypeError("WritableStream: the stream is already closing"));
      return ops.close(this.#stream);
    }
    releaseLock() { writerRelease(this); }
    write(chunk = undefined) {
      if (this.#stream === null) return PromiseReject(new TypeError("WritableStreamDefaultWriter: the writer was released"));
      return ops.write(this.#stream, chunk);
    }
    get [SymbolToStringTag]() { return "WritableStreamDefaultWriter"; }
  }

  // ---------------------------------------------------------------------------------------------
  // pipeTo, as the standard's ReadableStreamPipeTo: reads while the destination is ready, and
  // carries closing, errors and aborts across.

  function pipe(source, dest, options) {
    const { preventAbort, preventCancel, preventClose, signal } = options;
    const reader = new internal.ReadableStreamDefaultReader(source);
    const writer = new WritableStreamDefaultWriter(dest);
    readable.disturb(source);
    const done = deferred();
    let shuttingDown = false;
    let currentWrite = PromiseResolve();
    let onAbort = null;

    // Calls `next` once the last write issued (and any issued meanwhile) settled.
    const afterWrites = (next) => {
      const old = currentWrite;
      then(currentWrite, () => {
        if (old !== currentWrite) afterWrites(next);
        else next();
      });
    };
    const destWritable = () => ops.state(dest) === "writable" && !ops.closeQueuedOrInFlight(dest);
    const finalize = (isError, error) => {
      writerRelease(writer);
      internal.readerRelease(reader);
      if (onAbort !== null) signal.removeEventListener("abort", onAbort);
      if (isError) done.reject(error);
      else done.resolve();
    };
    const shutdownWithAction = (action, isError = false, error = undefined) => {
      if (shuttingDown) return;
      shuttingDown = true;
      const run = () => { then(action(), () => finalize(isError, error), (newError) => finalize(true, newError)); };
      if (destWritable()) afterWrites(run);
      else run();
    };
    const shutdown = (isError = false, error = undefined) => {
      if (shuttingDown) return;
      shuttingDown = true;
      if (destWritable()) afterWrites(() => finalize(isError, error));
      else finalize(isError, error);
    };

    if (signal !== undefined) {
      onAbort = () => {
        const error = signal.reason;
        shutdownWithAction(() => {
          const actions = [];
          if (!preventAbort) call(ArrayPush, actions, ops.state(dest) === "writable" ? ops.abort(dest, error) : PromiseResolve());
          if (!preventCancel) call(ArrayPush, actions, readable.state(source) === "readable" ? readable.cancel(source, error) : PromiseResolve());
          return allSettledOrFirstRejection(actions);
        }, true, error);
      };
      if (signal.aborted) {
        onAbort();
        onAbort = null;
        return done.promise;
      }
      signal.addEventListener("abort", onAbort);
    }

    // Errors and closing, on either side, whenever they happen.
    const sourceErrored = (error) => {
      if (!preventAbort) shutdownWithAction(() => ops.abort(dest, error), true, error);
      else shutdown(true, error);
    };
    const destErrored = (error) => {
      if (!preventCancel) shutdownWithAction(() => readable.cancel(source, error), true, error);
      else shutdown(true, error);
    };
    const sourceClosed = () => {
      if (!preventClose) {
        shutdownWithAction(() => {
          // The standard's WritableStreamDefaultWriterCloseWithErrorPropagation.
          const state = ops.state(dest);
          if (ops.closeQueuedOrInFlight(dest) || state === "closed") return PromiseResolve();
          if (state === "errored") return PromiseReject(ops.storedError(dest));
          return ops.close(dest);
        });
      } else shutdown();
    };
    const watch = () => {
      const sourceState = readable.state(source);
      if (sourceState === "errored") sourceErrored(readable.storedError(source));
      else if (ops.state(dest) === "errored" || ops.state(dest) === "erroring") destErrored(ops.storedError(dest));
      else if (sourceState === "closed") sourceClosed();
      else if (ops.closeQueuedOrInFlight(dest) || ops.state(dest) === "closed") {
        const closed = new TypeError("pipeTo: the destination closed before all data could be piped to it");
        if (!preventCancel) shutdownWithAction(() => readable.cancel(source, closed), true, closed);
        else shutdown(true, closed);
      } else return false;
      return true;
    };
    if (watch()) return done.promise;
    then(internal.readerClosed(reader), () => { if (!shuttingDown) sourceClosed(); }, (error) => {
      if (!shuttingDown && readable.state(source) === "errored") sourceErrored(error);
    });
    then(writerClosed(writer).promise, ignore, (error) => {
      if (!shuttingDown && ops.writer(dest) === writer) destErrored(error);
    });

    const step = () => {
      if (shuttingDown) return;
      then(writerReady(writer), () => {
        if (shuttingDown) return;
        // The chunk is written as it is read, before the source's closing is seen, as the
        // standard's read request does: the close then waits for this write.
        readable.readWith(source, record({
          chunk(value) {
            currentWrite = then(ops.write(dest, value), ignore, ignore);
            step();
          },
          close: ignore,
          error: ignore,
        }));
      }, ignore);
    };
    step();
    return done.promise;
  }

  // Resolves when every promise has, rejects with the first rejection.
  function allSettledOrFirstRejection(promises) {
    if (promises.length === 0) return PromiseResolve();
    const all = deferred();
    let left = promises.length;
    for (let i = 0; i < promises.length; i++) {
      then(promises[i], () => { if (--left === 0) all.resolve(); }, all.reject);
    }
    return all.promise;
  }

  // ---------------------------------------------------------------------------------------------
  // TransformStream.

  const transformOps = { __proto__: null };

  class TransformStreamDefaultController {
    #stream;
    constructor(token, stream) {
      if (token !== INTERNAL) throw new TypeError("TransformStreamDefaultController cannot be constructed by app code");
      this.#stream = stream;
    }
    get desiredSize() { return readable.desiredSize(transformOps.readable(this.#stream)); }
    enqueue(chunk = undefined) { transformOps.enqueue(this.#stream, chunk); }
    error(reason = undefined) { transformOps.error(this.#stream, reason); }
    terminate() { transformOps.terminate(this.#stream); }
    get [SymbolToStringTag]() { return "TransformStreamDefaultController"; }
  }

  class TransformStream {
    #readable;
    #writable;
    #backpressure = undefined;
    #backpressureChange = null;
    #controller;
    #transformer;
    #transform;
    #flush;
    #cancel;
    #finish = null;

    constructor(transformer = undefined, writableStrategy = undefined, readableStrategy = undefined) {
      if (transformer === undefined) transformer = { __proto__: null };
      else if (transformer === null || (typeof transformer !== "object" && typeof transformer !== "function")) {
        throw new TypeError("TransformStream: the transformer must be an object");
      }
      const cancel = method(transformer, "cancel", "TransformStream");
      const flush = method(transformer, "flush", "TransformStream");
      if (transformer.readableType !== undefined) throw new RangeError("TransformStream: readableType must be undefined");
      const start = method(transformer, "start", "TransformStream");
      const transform = method(transformer, "transform", "TransformStream");
      if (transformer.writableType !== undefined) throw new RangeError("TransformStream: writableType must be undefined");
      const readableStrategyRead = strategyOf(readableStrategy, 0, "TransformStream");
      const writableStrategyRead = strategyOf(writableStrategy, 1, "TransformStream");
      const started = deferred();
      this.#writable = new WritableStream({
        __proto__: null,
        start: () => started.promise,
        write: (chunk) => this.#sinkWrite(chunk),
        abort: (reason) => this.#sinkAbort(reason),
        close: () => this.#sinkClose(),
      }, writableStrategyRead);
      this.#readable = new internal.ReadableStream({
        __proto__: null,
        start: () => started.promise,
        pull: () => this.#sourcePull(),
        cancel: (reason) => this.#sourceCancel(reason),
      }, readableStrategyRead);
      this.#setBackpressure(true);
      this.#controller = new TransformStreamDefaultController(INTERNAL, this);
      this.#transformer = transformer;
      this.#transform = transform;
      this.#flush = flush;
      this.#cancel = cancel;
      started.resolve(start === undefined ? undefined : ReflectApply(start, transformer, [this.#controller]));
    }

    static {
      transformOps.is = (value) => value !== null && typeof value === "object" && #readable in value;
      transformOps.readable = (stream) => stream.#readable;
      transformOps.writable = (stream) => stream.#writable;
      transformOps.enqueue = (stream, chunk) => stream.#enqueue(chunk);
      transformOps.error = (stream, reason) => stream.#error(reason);
      transformOps.terminate = (stream) => {
        if (readable.canCloseOrEnqueue(stream.#readable)) readable.close(stream.#readable);
        stream.#errorWritableAndUnblockWrite(new TypeError("TransformStream: the stream was terminated"));
      };
    }

    #setBackpressure(backpressure) {
      if (this.#backpressureChange !== null) this.#backpressureChange.resolve();
      this.#backpressureChange = deferred();
      this.#backpressure = backpressure;
    }
    #enqueue(chunk) {
      const out = this.#readable;
      if (!readable.canCloseOrEnqueue(out)) throw new TypeError("TransformStream: the readable side is closed or errored");
      try {
        readable.enqueue(out, chunk);
      } catch (error) {
        this.#errorWritableAndUnblockWrite(error);
        throw readable.storedError(out);
      }
      const backpressure = readable.hasBackpressure(out);
      if (backpressure !== this.#backpressure && backpressure) this.#setBackpressure(true);
    }
    #error(reason) {
      readable.error(this.#readable, reason);
      this.#errorWritableAndUnblockWrite(reason);
    }
    #clearAlgorithms() {
      this.#transform = undefined;
      this.#flush = undefined;
      this.#cancel = undefined;
    }
    #errorWritableAndUnblockWrite(reason) {
      this.#clearAlgorithms();
      ops.errorIfNeeded(this.#writable, reason);
      if (this.#backpressure) this.#setBackpressure(false);
    }
    #performTransform(chunk) {
      let transformed;
      if (this.#transform === undefined) {
        try {
          this.#enqueue(chunk);
          transformed = PromiseResolve();
        } catch (error) {
          transformed = PromiseReject(error);
        }
      } else {
        transformed = promiseCall(this.#transform, this.#transformer, [chunk, this.#controller]);
      }
      return then(transformed, undefined, (reason) => {
        this.#error(reason);
        throw reason;
      });
    }
    #sinkWrite(chunk) {
      if (!this.#backpressure) return this.#performTransform(chunk);
      const written = deferred();
      then(this.#backpressureChange.promise, () => {
        if (ops.state(this.#writable) === "erroring") written.reject(ops.storedError(this.#writable));
        else forward(this.#performTransform(chunk), written);
      });
      return written.promise;
    }
    #sinkAbort(reason) {
      if (this.#finish !== null) return this.#finish.promise;
      const out = this.#readable;
      const finish = (this.#finish = deferred());
      const cancelled = promiseCall(this.#cancel, this.#transformer, [reason]);
      this.#clearAlgorithms();
      then(cancelled, () => {
        if (readable.state(out) === "errored") finish.reject(readable.storedError(out));
        else {
          readable.error(out, reason);
          finish.resolve();
        }
      }, (error) => {
        readable.error(out, error);
        finish.reject(error);
      });
      return finish.promise;
    }
    #sinkClose() {
      if (this.#finish !== null) return this.#finish.promise;
      const out = this.#readable;
      const finish = (this.#finish = deferred());
      const flushed = promiseCall(this.#flush, this.#transformer, [this.#controller]);
      this.#clearAlgorithms();
      then(flushed, () => {
        if (readable.state(out) === "errored") finish.reject(readable.storedError(out));
        else {
          if (readable.canCloseOrEnqueue(out)) readable.close(out);
          finish.resolve();
        }
      }, (error) => {
        readable.error(out, error);
        finish.reject(error);
      });
      return finish.promise;
    }
    #sourcePull() {
      this.#setBackpressure(false);
      return this.#backpressureChange.promise;
    }
    #sourceCancel(reason) {
      if (this.#finish !== null) return this.#finish.promise;
      const sink = this.#writable;
      const finish = (this.#finish = deferred());
      const cancelled = promiseCall(this.#cancel, this.#transformer, [reason]);
      this.#clearAlgorithms();
      then(cancelled, () => {
        if (ops.state(sink) === "errored") finish.reject(ops.storedError(sink));
        else {
          ops.errorIfNeeded(sink, reason);
          if (this.#backpressure) this.#setBackpressure(false);
          finish.resolve();
        }
      }, (error) => {
        ops.errorIfNeeded(sink, error);
        if (this.#backpressure) this.#setBackpressure(false);
        finish.reject(error);
      });
      return finish.promise;
    }

    get readable() { return this.#readable; }
    get writable() { return this.#writable; }
    get [SymbolToStringTag]() { return "TransformStream"; }
  }

  // ---------------------------------------------------------------------------------------------
  // TextEncoderStream and TextDecoderStream.

  const isHighSurrogate = (unit) => unit >= 0xd800 && unit <= 0xdbff;
  const REPLACEMENT = new internal.primordials.Uint8ArrayCtor([0xef, 0xbf, 0xbd]);

  class TextEncoderStream {
    #transform;
    constructor() {
      // A high surrogate at a chunk's end waits for the low one at the next chunk's start.
      let pending = "";
      this.#transform = new TransformStream({
        __proto__: null,
        transform: (chunk) => {
          let text = `${pending}${chunk}`;
          pending = "";
          if (text.length > 0 && isHighSurrogate(call(StringCharCodeAt, text, text.length - 1))) {
            pending = call(StringSlice, text, text.length - 1);
            text = call(StringSlice, text, 0, text.length - 1);
          }
          if (text.length > 0) transformOps.enqueue(this.#transform, internal.encodeText(text));
        },
        flush: () => {
          if (pending !== "") transformOps.enqueue(this.#transform, new internal.primordials.Uint8ArrayCtor(REPLACEMENT));
        },
      });
    }
    get encoding() { return "utf-8"; }
    get readable() { return transformOps.readable(this.#transform); }
    get writable() { return transformOps.writable(this.#transform); }
    get [SymbolToStringTag]() { return "TextEncoderStream"; }
  }

  class TextDecoderStream {
    #decoder;
    #transform;
    constructor(label = "utf-8", options = undefined) {
      const encoding = internal.load("encoding");
      const decoder = (this.#decoder = new encoding.TextDecoder(label, options));
      this.#transform = new TransformStream({
        __proto__: null,
        transform: (chunk) => {
          if (!internal.isBufferSource(chunk)) throw new TypeError("TextDecoderStream: a chunk must be an ArrayBuffer or a view of one");
          const text = encoding.decodeWith(decoder, chunk, true);
          if (text !== "") transformOps.enqueue(this.#transform, text);
        },
        flush: () => {
          const text = encoding.decodeWith(decoder, undefined, false);
          if (text !== "") transformOps.enqueue(this.#transform, text);
        },
      });
    }
    get encoding() { return internal.decoderInfo(this.#decoder).encoding; }
    get fatal() { return internal.decoderInfo(this.#decoder).fatal; }
    get ignoreBOM() { return internal.decoderInfo(this.#decoder).ignoreBOM; }
    get readable() { return transformOps.readable(this.#transform); }
    get writable() { return transformOps.writable(this.#transform); }
    get [SymbolToStringTag]() { return "TextDecoderStream"; }
  }

  internal.isWritable = ops.is;
  internal.writableIsLocked = (stream) => ops.writer(stream) !== null;
  internal.pipe = pipe;
  internal.provide("WritableStream", WritableStream);
  internal.provide("WritableStreamDefaultWriter", WritableStreamDefaultWriter);
  internal.provide("WritableStreamDefaultController", WritableStreamDefaultController);
  internal.provide("TransformStream", TransformStream);
  internal.provide("TransformStreamDefaultController", TransformStreamDefaultController);
  internal.provide("TextEncoderStream", TextEncoderStream);
  internal.provide("TextDecoderStream", TextDecoderStream);
}
