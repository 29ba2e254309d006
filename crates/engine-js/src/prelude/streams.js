// ReadableStream with start/pull/cancel sources, default readers and async iteration.
//
// A part of the prelude: compiled to bytecode once per process and evaluated in an instance only
// when app code first touches one of its globals, which keeps instances small and quick to create.
// The platform's own reads (a body's text(), the response the host sends) go through
// `consumeStream`, whose promises resolve with records no prototype reaches, so nothing app code
// adds to Object.prototype or Promise.prototype runs inside them.

export default function install(host, internal) {
  const { call, PromiseResolve, PromiseReject, PromiseWithResolvers, PromiseThen, ArrayPush, ArrayShift, ReflectApply } = internal.primordials;
  const record = internal.record;

  let streamIsDisturbed, streamIsLocked, streamRead, streamCancel, streamLock, streamUnlock, streamDisturb;

  class ReadableStream {
    #queue = [];
    #state = "readable";
    #error = undefined;
    #reads = [];
    #source;
    #controller;
    #started = false;
    #pulling = false;
    #pullAgain = false;
    #reader = null;
    #disturbed = false;

    constructor(source = {}, strategy = {}) {
      if (source === null) source = {};
      if (source.type !== undefined) throw new RangeError("ReadableStream: only default streams are supported (no 'bytes' type)");
      this.#source = source;
      const highWaterMark = strategy.highWaterMark ?? 1;
      const stream = this;
      this.#controller = {
        get desiredSize() { return stream.#state === "readable" ? highWaterMark - stream.#queue.length : 0; },
        enqueue(chunk) { stream.#enqueue(chunk); },
        close() { stream.#close(); },
        error(reason) { stream.#fail(reason); },
      };
      const started = typeof source.start === "function" ? ReflectApply(source.start, source, [this.#controller]) : undefined;
      call(PromiseThen, 
        PromiseResolve(started),
        () => { this.#started = true; this.#pullIfNeeded(); },
        (reason) => this.#fail(reason),
      );
    }

    static {
      streamIsDisturbed = (stream) => stream.#disturbed;
      streamIsLocked = (stream) => stream.#reader !== null;
      streamDisturb = (stream) => { stream.#disturbed = true; };
      streamRead = (stream, internalRead) => stream.#read(internalRead);
      streamCancel = (stream, reason) => stream.#cancelSource(reason);
      streamLock = (stream, reader) => {
        if (stream.#reader !== null) throw new TypeError("ReadableStream: the stream is already locked to a reader");
        stream.#reader = reader;
      };
      streamUnlock = (stream) => { stream.#reader = null; };
    }

    static from(iterable) {
      if (iterable instanceof ReadableStream) return iterable;
      const iterator = iterable[Symbol.asyncIterator] ? iterable[Symbol.asyncIterator]() : iterable[Symbol.iterator]();
      return new ReadableStream({
        async pull(controller) {
          const { value, done } = await iterator.next();
          if (done) controller.close(); else controller.enqueue(value);
        },
        async cancel(reason) { await iterator.return?.(reason); },
      });
    }

    #enqueue(chunk) {
      if (this.#state !== "readable") throw new TypeError("ReadableStream: cannot enqueue into a closed stream");
      if (this.#reads.length > 0) {
        const read = call(ArrayShift, this.#reads);
        read.resolve(read.result(chunk, false));
      } else {
        call(ArrayPush, this.#queue, chunk);
      }
    }
    #close() {
      if (this.#state !== "readable") throw new TypeError("ReadableStream: the stream is already closed");
      this.#state = "closing";
      if (this.#queue.length === 0) this.#finish();
    }
    #finish() {
      this.#state = "closed";
      const reads = this.#reads;
      this.#reads = [];
      for (let i = 0; i < reads.length; i++) reads[i].resolve(reads[i].result(undefined, true));
    }
    #fail(reason) {
      if (this.#state === "closed" || this.#state === "errored") return;
      this.#state = "errored";
      this.#error = reason;
      this.#queue = [];
      const reads = this.#reads;
      this.#reads = [];
      for (let i = 0; i < reads.length; i++) reads[i].reject(reason);
    }
    // Calls the source's pull() when a reader waits and the queue is empty, one pull at a time.
    #pullIfNeeded() {
      if (!this.#started || this.#state !== "readable" || typeof this.#source.pull !== "function") return;
      if (this.#reads.length === 0 && this.#queue.length > 0) return;
      if (this.#pulling) { this.#pullAgain = true; return; }
      this.#pulling = true;
      const pulled = call(PromiseThen, PromiseResolve(), () => ReflectApply(this.#source.pull, this.#source, [this.#controller]));
      call(PromiseThen, 
        pulled,
        () => {
          this.#pulling = false;
          if (this.#pullAgain || this.#reads.length > 0) { this.#pullAgain = false; this.#pullIfNeeded(); }
        },
        (reason) => this.#fail(reason),
      );
    }
    // A read: app code gets `{ value, done }` objects; the platform's reads get records.
    #read(internalRead) {
      this.#disturbed = true;
      const result = internalRead ? internalResult : publicResult;
      if (this.#queue.length > 0) {
        const value = call(ArrayShift, this.#queue);
        if (this.#state === "closing" && this.#queue.length === 0) this.#finish();
        else this.#pullIfNeeded();
        return PromiseResolve(result(value, false));
      }
      if (this.#state === "closed" || this.#state === "closing") return PromiseResolve(result(undefined, true));
      if (this.#state === "errored") return PromiseReject(this.#error);
      const { promise, resolve, reject } = PromiseWithResolvers();
      call(ArrayPush, this.#reads, { __proto__: null, resolve, reject, result });
      this.#pullIfNeeded();
      return promise;
    }
    #cancelSource(reason) {
      this.#disturbed = true;
      if (this.#state === "closed") return PromiseResolve();
      if (this.#state === "errored") return PromiseReject(this.#error);
      this.#queue = [];
      this.#finish();
      const cancel = typeof this.#source.cancel === "function" ? ReflectApply(this.#source.cancel, this.#source, [reason]) : undefined;
      return call(PromiseThen, PromiseResolve(cancel), () => undefined);
    }
    get locked() { return this.#reader !== null; }
    cancel(reason) {
      if (this.#reader !== null) return PromiseReject(new TypeError("ReadableStream: the stream is locked to a reader"));
      return this.#cancelSource(reason);
    }
    getReader(options = {}) {
      if (options.mode !== undefined) throw new RangeError("ReadableStream: only default readers are supported");
      return new ReadableStreamDefaultReader(this);
    }
    async *values(options = {}) {
      const reader = this.getReader();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          yield value;
        }
      } finally {
        if (!options.preventCancel) await reader.cancel();
        reader.releaseLock();
      }
    }
    [Symbol.asyncIterator](options) { return this.values(options); }
    tee() { return tee(this); }
    get [Symbol.toStringTag]() { return "ReadableStream"; }
  }

  const publicResult = (value, done) => ({ value, done });
  const internalResult = (value, done) => record({ value, done });

  class ReadableStreamDefaultReader {
    #stream;
    #closed;
    constructor(stream) {
      if (!(stream instanceof ReadableStream)) throw new TypeError("ReadableStreamDefaultReader: expected a ReadableStream");
      streamLock(stream, this);
      this.#stream = stream;
    }
    read() {
      if (this.#stream === null) return PromiseReject(new TypeError("ReadableStreamDefaultReader: the reader was released"));
      return streamRead(this.#stream, false);
    }
    cancel(reason) {
      if (this.#stream === null) return PromiseReject(new TypeError("ReadableStreamDefaultReader: the reader was released"));
      return streamCancel(this.#stream, reason);
    }
    releaseLock() {
      if (this.#stream === null) return;
      streamUnlock(this.#stream);
      this.#stream = null;
    }
    get closed() {
      if (this.#closed === undefined) this.#closed = PromiseResolve();
      return this.#closed;
    }
    get [Symbol.toStringTag]() { return "ReadableStreamDefaultReader"; }
  }

  // The platform reading a whole stream: it stays locked (a consumed body's stream is), and its
  // reads resolve with records. Chunks must be strings or BufferSources.
  async function consumeStream(stream, onChunk) {
    const reader = new ReadableStreamDefaultReader(stream);
    for (;;) {
      const { value, done } = await streamRead(stream, true);
      if (done) return;
      if (typeof value === "string") {
        if (onChunk(value) === false) { await streamCancel(stream); return; }
      } else if (internal.isBufferSource(value)) {
        if (onChunk(internal.viewBytes(value)) === false) { await streamCancel(stream); return; }
      } else {
        reader.releaseLock();
        throw new TypeError("ReadableStream: a body chunk must be a Uint8Array, an ArrayBuffer or a string");
      }
    }
  }

  // Two branches that each see every chunk of `stream`, read through the platform's own reads.
  function tee(stream) {
    new ReadableStreamDefaultReader(stream);
    const branches = [[], []];
    let done = false;
    let failure = null;
    // The source is cancelled once both branches are, with both reasons, as the standard says;
    // a cancelled branch stops buffering.
    const cancelled = [false, false];
    const reasons = [undefined, undefined];
    const makeBranch = (index) => new ReadableStream({
      __proto__: null,
      cancel(reason) {
        cancelled[index] = true;
        reasons[index] = reason;
        branches[index] = [];
        if (cancelled[0] && cancelled[1]) return streamCancel(stream, [reasons[0], reasons[1]]);
        return undefined;
      },
      async pull(controller) {
        if (branches[index].length === 0 && !done) {
          try {
            const result = await streamRead(stream, true);
            if (result.done) done = true;
            else {
              if (!cancelled[0]) call(ArrayPush, branches[0], result.value);
              if (!cancelled[1]) call(ArrayPush, branches[1], result.value);
            }
          } catch (error) {
            failure = { __proto__: null, error };
            done = true;
          }
        }
        if (branches[index].length > 0) controller.enqueue(call(ArrayShift, branches[index]));
        else if (failure !== null) controller.error(failure.error);
        else if (done) controller.close();
      },
    });
    return [makeBranch(0), makeBranch(1)];
  }

  internal.define("ReadableStream", ReadableStream);
  internal.define("ReadableStreamDefaultReader", ReadableStreamDefaultReader);
  internal.ReadableStream = ReadableStream;
  internal.isStream = (value) => value instanceof ReadableStream;
  internal.streamIsDisturbed = streamIsDisturbed;
  internal.streamIsLocked = streamIsLocked;
  internal.streamMarkDisturbed = streamDisturb;
  internal.streamTee = tee;
  // Locks and reads a stream made for a body that was consumed before it existed.
  internal.streamConsume = (stream) => { new ReadableStreamDefaultReader(stream); streamDisturb(stream); };
  internal.consumeStream = consumeStream;
  // A stream that reads `stream` (locked and disturbed from now on): the body a new Request
  // takes from the one it was made from.
  internal.streamProxy = (stream) => {
    new ReadableStreamDefaultReader(stream);
    streamDisturb(stream);
    return new ReadableStream({
      __proto__: null,
      pull(controller) {
        return call(PromiseThen, streamRead(stream, true), (result) => {
          if (result.done) controller.close();
          else controller.enqueue(result.value);
        });
      },
      cancel(reason) { return streamCancel(stream, reason); },
    });
  };
}
