// ReadableStream per the WHATWG Streams Standard: underlying sources with start/pull/cancel,
// queuing strategies (highWaterMark and size), default readers, tee, async iteration, and
// pipeTo/pipeThrough (which the writable part carries out).
//
// A part of the prelude: compiled to bytecode once per process and evaluated in an instance only
// when app code first touches one of its globals, which keeps instances small and quick to create.
// The platform's own reads (a body's text(), the response the host sends) go through
// `consumeStream`, whose promises resolve with records no prototype reaches, so nothing app code
// adds to Object.prototype or Promise.prototype runs inside them.

export default function install(host, internal) {
  const {
    call, PromiseResolve, PromiseReject, PromiseWithResolvers, ArrayPush, ArrayShift, ReflectApply,
    SymbolToStringTag, SymbolIterator, freeze,
  } = internal.primordials;
  const SymbolAsyncIterator = internal.primordials.SymbolAsyncIterator;
  const { record, react, then } = internal.load("shared");
  // Passed by the platform to constructors app code must not call.
  const INTERNAL = freeze({ __proto__: null });

  // ---------------------------------------------------------------------------------------------
  // Shared by the readable and the writable part.

  // A method of an app-given source, sink or transformer: undefined, or a function.
  function method(object, name, what) {
    const value = object[name];
    if (value !== undefined && typeof value !== "function") throw new TypeError(`${what}: ${name} must be a function`);
    return value;
  }

  // Calls an optional method and answers a promise: a throw becomes a rejection.
  function promiseCall(fn, thisArg, args) {
    if (fn === undefined) return PromiseResolve();
    try {
      return PromiseResolve(ReflectApply(fn, thisArg, args));
    } catch (error) {
      return PromiseReject(error);
    }
  }

  // A queuing strategy's high-water mark and size function, validated.
  function strategyOf(strategy, defaultHighWaterMark, what) {
    strategy = internal.dictionary(strategy, what);
    let highWaterMark = strategy.highWaterMark;
    const size = strategy.size;
    if (highWaterMark === undefined) highWaterMark = defaultHighWaterMark;
    else {
      highWaterMark = +highWaterMark;
      if (highWaterMark !== highWaterMark || highWaterMark < 0) throw new RangeError(`${what}: highWaterMark must be a non-negative number`);
    }
    if (size !== undefined && typeof size !== "function") throw new TypeError(`${what}: the strategy's size must be a function`);
    return record({ highWaterMark, size });
  }

  // A chunk's size by a strategy: a finite, non-negative number.
  function sizeOf(size, chunk) {
    if (size === undefined) return 1;
    const value = +ReflectApply(size, undefined, [chunk]);
    if (!(value >= 0) || value === Infinity) throw new RangeError("the queuing strategy's size must be a finite, non-negative number");
    return value;
  }

  // A queue of chunks with their sizes, as the standard's "queue-with-sizes".
  class SizedQueue {
    chunks = [];
    sizes = [];
    total = 0;
    push(chunk, size) {
      call(ArrayPush, this.chunks, chunk);
      call(ArrayPush, this.sizes, size);
      this.total += size;
    }
    shift() {
      const size = call(ArrayShift, this.sizes);
      this.total -= size;
      if (this.total < 0) this.total = 0;
      return call(ArrayShift, this.chunks);
    }
    reset() {
      this.chunks = [];
      this.sizes = [];
      this.total = 0;
    }
  }

  internal.streamSupport = freeze({ __proto__: null, INTERNAL, method, promiseCall, strategyOf, sizeOf, SizedQueue });

  // ---------------------------------------------------------------------------------------------
  // ReadableStream.

  const streamOps = { __proto__: null };

  class ReadableStreamDefaultController {
    #stream;
    constructor(token, stream) {
      if (token !== INTERNAL) throw new TypeError("ReadableStreamDefaultController cannot be constructed by app code");
      this.#stream = stream;
    }
    get desiredSize() { return streamOps.desiredSize(this.#stream); }
    enqueue(chunk = undefined) {
      if (!streamOps.canCloseOrEnqueue(this.#stream)) throw new TypeError("ReadableStream: cannot enqueue into a stream that is closed, closing or errored");
      streamOps.enqueue(this.#stream, chunk);
    }
    close() {
      if (!streamOps.canCloseOrEnqueue(this.#stream)) throw new TypeError("ReadableStream: the stream is already closed, closing or errored");
      streamOps.close(this.#stream);
    }
    error(reason = undefined) { streamOps.error(this.#stream, reason); }
    get [SymbolToStringTag]() { return "ReadableStreamDefaultController"; }
  }

  class ReadableStream {
    #state = "readable";
    #storedError = undefined;
    #queue = new SizedQueue();
    #highWaterMark;
    #size;
    #source;
    #pull;
    #cancel;
    #controller;
    #started = false;
    #pulling = false;
    #pullAgain = false;
    #closeRequested = false;
    #disturbed = false;
    // The reader, its pending reads and the resolvers of its `closed` promise.
    #reader = null;
    #reads = [];
    #closed = null;

    constructor(source = undefined, strategy = undefined) {
      if (source === undefined) source = { __proto__: null };
      else if (source === null || (typeof source !== "object" && typeof source !== "function")) {
        throw new TypeError("ReadableStream: the underlying source must be an object");
      }
      const cancel = method(source, "cancel", "ReadableStream");
      const pull = method(source, "pull", "ReadableStream");
      const start = method(source, "start", "ReadableStream");
      const type = source.type;
      if (type !== undefined) {
        if (`${type}` === "bytes") throw new RangeError("ReadableStream: byte streams (type: 'bytes') are not supported; use a default stream");
        throw new TypeError(`ReadableStream: "${type}" is not a stream type`);
      }
      const { highWaterMark, size } = strategyOf(strategy, 1, "ReadableStream");
      this.#source = source;
      this.#pull = pull;
      this.#cancel = cancel;
      this.#highWaterMark = highWaterMark;
      this.#size = size;
      this.#controller = new ReadableStreamDefaultController(INTERNAL, this);
      const started = start === undefined ? undefined : ReflectApply(start, source, [this.#controller]);
      react(started, () => {
        this.#started = true;
        this.#pullIfNeeded();
      }, (reason) => this.#error(reason));
    }

    static {
      streamOps.desiredSize = (stream) => stream.#desiredSize();
      streamOps.canCloseOrEnqueue = (stream) => !stream.#closeRequested && stream.#state === "readable";
      streamOps.enqueue = (stream, chunk) => stream.#enqueue(chunk);
      streamOps.close = (stream) => stream.#close();
      streamOps.error = (stream, reason) => stream.#error(reason);
      streamOps.state = (stream) => stream.#state;
      streamOps.storedError = (stream) => stream.#storedError;
      streamOps.controller = (stream) => stream.#controller;
      streamOps.hasBackpressure = (stream) => !stream.#shouldPull();
      streamOps.isDisturbed = (stream) => stream.#disturbed;
      streamOps.isLocked = (stream) => stream.#reader !== null;
      streamOps.disturb = (stream) => { stream.#disturbed = true; };
      streamOps.read = (stream, internalRead) => stream.#read(internalRead);
      streamOps.readWith = (stream, request) => stream.#readWith(request);
      streamOps.cancel = (stream, reason) => stream.#cancelStream(reason);
      streamOps.lock = (stream, reader) => stream.#lock(reader);
      streamOps.unlock = (stream) => stream.#unlock();
      streamOps.is = (value) => value !== null && typeof value === "object" && #state in value;
    }

    static from(iterable) {
      if (streamOps.is(iterable)) return iterable;
      if (iterable === null || iterable === undefined) throw new TypeError("ReadableStream.from: expected an iterable or async iterable");
      const asyncMethod = iterable[SymbolAsyncIterator];
      const isAsync = asyncMethod !== undefined && asyncMethod !== null;
      const method = isAsync ? asyncMethod : iterable[SymbolIterator];
      if (typeof method !== "function") throw new TypeError("ReadableStream.from: expected an iterable or async iterable");
      const iterator = ReflectApply(method, iterable, []);
      if (iterator === null || typeof iterator !== "object") throw new TypeError("ReadableStream.from: the iterator is not an object");
      const next = iterator.next;
      const stream = new ReadableStream({
        __proto__: null,
        async pull() {
          const result = await ReflectApply(next, iterator, []);
          if (result === null || typeof result !== "object") throw new TypeError("ReadableStream.from: the iterator's next() gave a non-object");
          if (result.done) close(stream);
          // A sync iterator's values are awaited, as the async-from-sync iterator does.
          else enqueue(stream, isAsync ? result.value : await result.value);
        },
        async cancel(reason) {
          const finish = iterator.return;
          if (finish === undefined || finish === null) return;
          const result = await ReflectApply(finish, iterator, [reason]);
          if (result === null || typeof result !== "object") throw new TypeError("ReadableStream.from: the iterator's return() gave a non-object");
        },
      }, { __proto__: null, highWaterMark: 0 });
      return stream;
    }

    #desiredSize() {
      if (this.#state === "errored") return null;
      if (this.#state === "closed") return 0;
      return this.#highWaterMark - this.#queue.total;
    }
    #enqueue(chunk) {
      if (this.#reader !== null && this.#reads.length > 0) {
        call(ArrayShift, this.#reads).chunk(chunk);
      } else {
        let size;
        try {
          size = sizeOf(this.#size, chunk);
        } catch (error) {
          this.#error(error);
          throw error;
        }
        this.#queue.push(chunk, size);
      }
      this.#pullIfNeeded();
    }
    #close() {
      this.#closeRequested = true;
      if (this.#queue.chunks.length === 0) this.#finish();
    }
    // The stream is closed: pending reads end, the reader's `closed` resolves.
    #finish() {
      this.#state = "closed";
      this.#pull = undefined;
      this.#cancel = undefined;
      const reads = this.#reads;
      this.#reads = [];
      for (let i = 0; i < reads.length; i++) reads[i].close();
      if (this.#closed !== null) this.#closed.resolve();
    }
    #error(reason) {
      if (this.#state !== "readable") return;
      this.#state = "errored";
      this.#storedError = reason;
      this.#queue.reset();
      this.#pull = undefined;
      this.#cancel = undefined;
      const reads = this.#reads;
      this.#reads = [];
      for (let i = 0; i < reads.length; i++) reads[i].error(reason);
      if (this.#closed !== null) this.#closed.reject(reason);
    }
    #shouldPull() {
      if (!this.#started || this.#closeRequested || this.#state !== "readable") return false;
      if (this.#reader !== null && this.#reads.length > 0) return true;
      return this.#desiredSize() > 0;
    }
    // Calls the source's pull() when the queue wants chunks, one pull at a time.
    #pullIfNeeded() {
      if (!this.#shouldPull()) return;
      if (this.#pulling) {
        this.#pullAgain = true;
        return;
      }
      this.#pulling = true;
      react(promiseCall(this.#pull, this.#source, [this.#controller]), () => {
        this.#pulling = false;
        if (this.#pullAgain) {
          this.#pullAgain = false;
          this.#pullIfNeeded();
        }
      }, (reason) => this.#error(reason));
    }
    // A read request, as the standard has them: `chunk(value)`, `close()` or `error(reason)` is
    // called as soon as the answer is known, synchronously when a chunk is queued.
    #readWith(request) {
      this.#disturbed = true;
      if (this.#state === "closed") request.close();
      else if (this.#state === "errored") request.error(this.#storedError);
      else if (this.#queue.chunks.length > 0) {
        const chunk = this.#queue.shift();
        if (this.#closeRequested && this.#queue.chunks.length === 0) this.#finish();
        else this.#pullIfNeeded();
        request.chunk(chunk);
      } else {
        call(ArrayPush, this.#reads, request);
        this.#pullIfNeeded();
      }
    }
    // A read as a promise: app code gets `{ value, done }` objects; the platform's reads get records.
    #read(internalRead) {
      const result = internalRead ? internalResult : publicResult;
      const { promise, resolve, reject } = PromiseWithResolvers();
      this.#readWith(record({
        chunk: (value) => resolve(result(value, false)),
        close: () => resolve(result(undefined, true)),
        error: reject,
      }));
      return promise;
    }
    #cancelStream(reason) {
      this.#disturbed = true;
      if (this.#state === "closed") return PromiseResolve();
      if (this.#state === "errored") return PromiseReject(this.#storedError);
      const cancel = this.#cancel;
      this.#queue.reset();
      this.#finish();
      return then(promiseCall(cancel, this.#source, [reason]), () => undefined);
    }
    // A reader takes the stream: answers the reader's `closed` promise.
    #lock(reader) {
      if (this.#reader !== null) throw new TypeError("ReadableStream: the stream is already locked to a reader");
      this.#reader = reader;
      if (this.#state === "closed") return PromiseResolve();
      if (this.#state === "errored") return PromiseReject(this.#storedError);
      const closed = PromiseWithResolvers();
      this.#closed = record({ resolve: closed.resolve, reject: closed.reject });
      return closed.promise;
    }
    // The reader lets go: its pending reads and its `closed` reject.
    #unlock() {
      const released = new TypeError("ReadableStreamDefaultReader: the reader's lock was released");
      if (this.#closed !== null) this.#closed.reject(released);
      this.#closed = null;
      this.#reader = null;
      const reads = this.#reads;
      this.#reads = [];
      for (let i = 0; i < reads.length; i++) reads[i].error(released);
      return released;
    }

    get locked() { return this.#reader !== null; }
    cancel(reason = undefined) {
      if (!streamOps.is(this)) return PromiseReject(new TypeError("cancel() called on an object that is not a ReadableStream"));
      if (this.#reader !== null) return PromiseReject(new TypeError("ReadableStream: the stream is locked to a reader"));
      return this.#cancelStream(reason);
    }
    getReader(options = undefined) {
      const mode = internal.dictionary(options, "ReadableStream.getReader").mode;
      if (mode !== undefined) {
        if (`${mode}` === "byob") throw new TypeError("ReadableStream.getReader: BYOB readers need a byte stream, which is not supported");
        throw new TypeError(`ReadableStream.getReader: "${mode}" is not a reader mode`);
      }
      return new ReadableStreamDefaultReader(this);
    }
    pipeTo(destination, options = undefined) {
      try {
        if (!streamOps.is(this)) throw new TypeError("pipeTo() called on an object that is not a ReadableStream");
        if (!internal.isWritable(destination)) throw new TypeError("ReadableStream.pipeTo: the destination must be a WritableStream");
        const pipeOptions = pipeOptionsOf(options);
        if (this.#reader !== null) throw new TypeError("ReadableStream.pipeTo: the stream is locked to a reader");
        if (internal.writableIsLocked(destination)) throw new TypeError("ReadableStream.pipeTo: the destination is locked to a writer");
        return internal.pipe(this, destination, pipeOptions);
      } catch (error) {
        return PromiseReject(error);
      }
    }
    pipeThrough(transform, options = undefined) {
      if (!streamOps.is(this)) throw new TypeError("pipeThrough() called on an object that is not a ReadableStream");
      transform = internal.dictionary(transform, "ReadableStream.pipeThrough");
      const readable = transform.readable;
      if (!streamOps.is(readable)) throw new TypeError("ReadableStream.pipeThrough: the transform's readable must be a ReadableStream");
      const writable = transform.writable;
      if (!internal.isWritable(writable)) throw new TypeError("ReadableStream.pipeThrough: the transform's writable must be a WritableStream");
      const pipeOptions = pipeOptionsOf(options);
      if (this.#reader !== null) throw new TypeError("ReadableStream.pipeThrough: the stream is locked to a reader");
      if (internal.writableIsLocked(writable)) throw new TypeError("ReadableStream.pipeThrough: the transform's writable is locked to a writer");
      // Its failures show on the streams; the promise itself is not the caller's.
      react(internal.pipe(this, writable, pipeOptions), undefined, () => undefined);
      return readable;
    }
    async *values(options = undefined) {
      const preventCancel = Boolean(internal.dictionary(options, "ReadableStream.values").preventCancel);
      const reader = new ReadableStreamDefaultReader(this);
      let finished = false;
      try {
        for (;;) {
          const { value, done } = await streamOps.read(this, true);
          if (done) { finished = true; return; }
          yield value;
        }
      } finally {
        // An early exit cancels (unless asked not to); an error only lets go of the stream.
        try {
          if (!finished && !preventCancel && streamOps.state(this) === "readable") await streamOps.cancel(this, undefined);
        } finally {
          readerRelease(reader);
        }
      }
    }
    [SymbolAsyncIterator](options = undefined) { return this.values(options); }
    tee() { return tee(this); }
    get [SymbolToStringTag]() { return "ReadableStream"; }
  }

  // pipeTo's options, read in the order WebIDL reads a dictionary's members.
  function pipeOptionsOf(options) {
    options = internal.dictionary(options, "ReadableStream.pipeTo");
    const preventAbort = Boolean(options.preventAbort);
    const preventCancel = Boolean(options.preventCancel);
    const preventClose = Boolean(options.preventClose);
    const signal = options.signal;
    if (signal !== undefined && !internal.isAbortSignal(signal)) {
      throw new TypeError("ReadableStream.pipeTo: the signal must be an AbortSignal");
    }
    return record({ preventAbort, preventCancel, preventClose, signal });
  }

  const publicResult = (value, done) => ({ value, done });
  const internalResult = (value, done) => record({ value, done });

  let readerRelease, readerClosed;

  class ReadableStreamDefaultReader {
    #stream = null;
    #closed;
    constructor(stream) {
      if (!streamOps.is(stream)) throw new TypeError("ReadableStreamDefaultReader: expected a ReadableStream");
      this.#closed = streamOps.lock(stream, this);
      this.#stream = stream;
    }
    static {
      readerRelease = (reader) => {
        if (reader.#stream === null) return;
        const released = streamOps.unlock(reader.#stream);
        // A reader released after its stream closed or errored gets a rejected `closed` anew.
        if (streamOps.state(reader.#stream) !== "readable") reader.#closed = PromiseReject(released);
        reader.#stream = null;
      };
      readerClosed = (reader) => reader.#closed;
    }
    read() {
      if (this.#stream === null) return PromiseReject(new TypeError("ReadableStreamDefaultReader: the reader was released"));
      return streamOps.read(this.#stream, false);
    }
    cancel(reason = undefined) {
      if (this.#stream === null) return PromiseReject(new TypeError("ReadableStreamDefaultReader: the reader was released"));
      return streamOps.cancel(this.#stream, reason);
    }
    releaseLock() { readerRelease(this); }
    get closed() { return this.#closed; }
    get [SymbolToStringTag]() { return "ReadableStreamDefaultReader"; }
  }

  // The platform reading a whole stream: it stays locked (a consumed body's stream is), and its
  // reads resolve with records. Chunks must be strings or BufferSources.
  async function consumeStream(stream, onChunk) {
    const reader = new ReadableStreamDefaultReader(stream);
    for (;;) {
      const { value, done } = await streamOps.read(stream, true);
      if (done) return;
      if (typeof value === "string") {
        if (onChunk(value) === false) { await streamOps.cancel(stream); return; }
      } else if (internal.isBufferSource(value)) {
        if (onChunk(internal.viewBytes(value)) === false) { await streamOps.cancel(stream); return; }
      } else {
        readerRelease(reader);
        throw new TypeError("ReadableStream: a body chunk must be a Uint8Array, an ArrayBuffer or a string");
      }
    }
  }

  // Two branches that each see every chunk of `stream`, as the standard's ReadableStreamDefaultTee:
  // one read at a time from the source, each chunk into both branches; the source is cancelled
  // once both branches are (with both reasons), and each branch's cancel() settles then, or when
  // the source closes or errors.
  function tee(stream) {
    const reader = new ReadableStreamDefaultReader(stream);
    let reading = false;
    let readAgain = false;
    const cancelled = [false, false];
    const reasons = [undefined, undefined];
    const sourceCancelled = PromiseWithResolvers();
    const branches = [null, null];
    const pull = () => {
      if (reading) {
        readAgain = true;
        return PromiseResolve();
      }
      reading = true;
      streamOps.readWith(stream, record({
        // In a microtask, as the standard has it: a cancel in the same turn still counts.
        chunk: (chunk) => react(PromiseResolve(), () => {
          readAgain = false;
          if (!cancelled[0]) enqueue(branches[0], chunk);
          if (!cancelled[1]) enqueue(branches[1], chunk);
          reading = false;
          if (readAgain) pull();
        }),
        close: () => {
          reading = false;
          if (!cancelled[0]) close(branches[0]);
          if (!cancelled[1]) close(branches[1]);
          if (!cancelled[0] || !cancelled[1]) sourceCancelled.resolve();
        },
        error: () => { reading = false; },
      }));
      return PromiseResolve();
    };
    const cancel = (index) => (reason) => {
      cancelled[index] = true;
      reasons[index] = reason;
      if (cancelled[1 - index]) {
        react(streamOps.cancel(stream, [reasons[0], reasons[1]]), sourceCancelled.resolve, sourceCancelled.reject);
      }
      return sourceCancelled.promise;
    };
    branches[0] = new ReadableStream({ __proto__: null, pull, cancel: cancel(0) });
    branches[1] = new ReadableStream({ __proto__: null, pull, cancel: cancel(1) });
    react(readerClosed(reader), undefined, (reason) => {
      streamOps.error(branches[0], reason);
      streamOps.error(branches[1], reason);
      if (!cancelled[0] || !cancelled[1]) sourceCancelled.resolve();
    });
    return [branches[0], branches[1]];
  }

  // The platform's own sources put chunks in through these, never through the controller's
  // (redefinable) methods.
  const enqueue = (stream, chunk) => { if (streamOps.canCloseOrEnqueue(stream)) streamOps.enqueue(stream, chunk); };
  const close = (stream) => { if (streamOps.canCloseOrEnqueue(stream)) streamOps.close(stream); };

  // The standard's queuing strategies.
  const strategyInit = (init, what) => {
    init = internal.dictionary(init, what);
    if (init.highWaterMark === undefined) throw new TypeError(`${what}: highWaterMark is required`);
    return +init.highWaterMark;
  };
  const byteLength = function size(chunk) { return chunk.byteLength; };
  const one = function size() { return 1; };
  class ByteLengthQueuingStrategy {
    #highWaterMark;
    constructor(init) { this.#highWaterMark = strategyInit(init, "ByteLengthQueuingStrategy"); }
    get highWaterMark() { return this.#highWaterMark; }
    get size() { return byteLength; }
    get [SymbolToStringTag]() { return "ByteLengthQueuingStrategy"; }
  }
  class CountQueuingStrategy {
    #highWaterMark;
    constructor(init) { this.#highWaterMark = strategyInit(init, "CountQueuingStrategy"); }
    get highWaterMark() { return this.#highWaterMark; }
    get size() { return one; }
    get [SymbolToStringTag]() { return "CountQueuingStrategy"; }
  }

  internal.provide("ReadableStream", ReadableStream);
  internal.provide("ReadableStreamDefaultReader", ReadableStreamDefaultReader);
  internal.provide("ReadableStreamDefaultController", ReadableStreamDefaultController);
  internal.provide("ByteLengthQueuingStrategy", ByteLengthQueuingStrategy);
  internal.provide("CountQueuingStrategy", CountQueuingStrategy);
  internal.ReadableStream = ReadableStream;
  internal.ReadableStreamDefaultReader = ReadableStreamDefaultReader;
  internal.readableOps = streamOps;
  internal.readerRelease = readerRelease;
  internal.readerClosed = readerClosed;
  internal.isStream = streamOps.is;
  internal.streamIsDisturbed = streamOps.isDisturbed;
  internal.streamIsLocked = streamOps.isLocked;
  internal.streamMarkDisturbed = streamOps.disturb;
  internal.streamTee = tee;
  // Locks and reads a stream made for a body that was consumed before it existed.
  internal.streamConsume = (stream) => { new ReadableStreamDefaultReader(stream); streamOps.disturb(stream); };
  internal.consumeStream = consumeStream;
  // A stream that reads `stream` (locked and disturbed from now on): the body a new Request
  // takes from the one it was made from.
  internal.streamProxy = (stream) => {
    new ReadableStreamDefaultReader(stream);
    streamOps.disturb(stream);
    const proxy = new ReadableStream({
      __proto__: null,
      pull() {
        return then(streamOps.read(stream, true), (result) => {
          if (result.done) close(proxy);
          else enqueue(proxy, result.value);
        });
      },
      cancel(reason) { return streamOps.cancel(stream, reason); },
    }, { __proto__: null, highWaterMark: 0 });
    return proxy;
  };
  // A closed stream of one chunk (a body's bytes or string).
  internal.chunkStream = (chunk) => {
    const stream = new ReadableStream();
    streamOps.enqueue(stream, chunk);
    streamOps.close(stream);
    return stream;
  };
  // Until the writable part loads, nothing is a WritableStream.
  if (internal.isWritable === undefined) internal.isWritable = () => false;
}
