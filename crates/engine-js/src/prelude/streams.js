// ReadableStream with start/pull/cancel sources, default readers and async iteration.
//
// A part of the prelude: compiled to bytecode once per process and evaluated in an instance only
// when app code first touches one of its globals, which keeps instances small and quick to create.

export default function install(host, internal) {

  let streamIsDisturbed, streamRead, streamCancel, streamLock, streamUnlock;

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
      const started = typeof source.start === "function" ? source.start.call(source, this.#controller) : undefined;
      Promise.resolve(started).then(
        () => { this.#started = true; this.#pullIfNeeded(); },
        (reason) => this.#fail(reason),
      );
    }

    static {
      streamIsDisturbed = (stream) => stream.#disturbed || stream.#reader !== null;
      streamRead = (stream) => stream.#read();
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
      if (this.#reads.length > 0) this.#reads.shift().resolve({ value: chunk, done: false });
      else this.#queue.push(chunk);
    }
    #close() {
      if (this.#state !== "readable") throw new TypeError("ReadableStream: the stream is already closed");
      this.#state = "closing";
      if (this.#queue.length === 0) this.#finish();
    }
    #finish() {
      this.#state = "closed";
      for (const read of this.#reads.splice(0)) read.resolve({ value: undefined, done: true });
    }
    #fail(reason) {
      if (this.#state === "closed" || this.#state === "errored") return;
      this.#state = "errored";
      this.#error = reason;
      this.#queue = [];
      for (const read of this.#reads.splice(0)) read.reject(reason);
    }
    // Calls the source's pull() when a reader waits and the queue is empty, one pull at a time.
    #pullIfNeeded() {
      if (!this.#started || this.#state !== "readable" || typeof this.#source.pull !== "function") return;
      if (this.#reads.length === 0 && this.#queue.length > 0) return;
      if (this.#pulling) { this.#pullAgain = true; return; }
      this.#pulling = true;
      Promise.resolve()
        .then(() => this.#source.pull.call(this.#source, this.#controller))
        .then(
          () => {
            this.#pulling = false;
            if (this.#pullAgain || this.#reads.length > 0) { this.#pullAgain = false; this.#pullIfNeeded(); }
          },
          (reason) => this.#fail(reason),
        );
    }
    #read() {
      this.#disturbed = true;
      if (this.#queue.length > 0) {
        const value = this.#queue.shift();
        if (this.#state === "closing" && this.#queue.length === 0) this.#finish();
        else this.#pullIfNeeded();
        return Promise.resolve({ value, done: false });
      }
      if (this.#state === "closed" || this.#state === "closing") return Promise.resolve({ value: undefined, done: true });
      if (this.#state === "errored") return Promise.reject(this.#error);
      const { promise, resolve, reject } = Promise.withResolvers();
      this.#reads.push({ resolve, reject });
      this.#pullIfNeeded();
      return promise;
    }
    #cancelSource(reason) {
      this.#disturbed = true;
      if (this.#state === "closed" || this.#state === "errored") return Promise.resolve();
      this.#queue = [];
      this.#finish();
      const cancel = typeof this.#source.cancel === "function" ? this.#source.cancel.call(this.#source, reason) : undefined;
      return Promise.resolve(cancel).then(() => undefined);
    }
    get locked() { return this.#reader !== null; }
    cancel(reason) {
      if (this.#reader !== null) return Promise.reject(new TypeError("ReadableStream: the stream is locked to a reader"));
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
    tee() {
      const reader = this.getReader();
      const branches = [[], []];
      let done = false;
      const makeBranch = (index) => new ReadableStream({
        async pull(controller) {
          if (branches[index].length === 0 && !done) {
            const result = await reader.read();
            if (result.done) done = true;
            else { branches[0].push(result.value); branches[1].push(result.value); }
          }
          if (branches[index].length > 0) controller.enqueue(branches[index].shift());
          else if (done) controller.close();
        },
      });
      return [makeBranch(0), makeBranch(1)];
    }
    get [Symbol.toStringTag]() { return "ReadableStream"; }
  }

  class ReadableStreamDefaultReader {
    #stream;
    constructor(stream) {
      if (!(stream instanceof ReadableStream)) throw new TypeError("ReadableStreamDefaultReader: expected a ReadableStream");
      streamLock(stream, this);
      this.#stream = stream;
    }
    read() {
      if (this.#stream === null) return Promise.reject(new TypeError("ReadableStreamDefaultReader: the reader was released"));
      return streamRead(this.#stream);
    }
    cancel(reason) {
      if (this.#stream === null) return Promise.resolve();
      return streamCancel(this.#stream, reason);
    }
    releaseLock() {
      if (this.#stream === null) return;
      streamUnlock(this.#stream);
      this.#stream = null;
    }
    get closed() { return Promise.resolve(); }
  }

  // Every chunk of a stream as bytes, checking that chunks are strings or BufferSources.
  async function readAllChunks(stream, onChunk) {
    const reader = stream.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        if (typeof value === "string") {
          if (onChunk(value) === false) { await reader.cancel(); return; }
        } else if (internal.isBufferSource(value)) {
          if (onChunk(internal.viewBytes(value)) === false) { await reader.cancel(); return; }
        } else {
          throw new TypeError("ReadableStream: a body chunk must be a Uint8Array, an ArrayBuffer or a string");
        }
      }
    } finally {
      reader.releaseLock();
    }
  }

  internal.define("ReadableStream", ReadableStream);
  internal.define("ReadableStreamDefaultReader", ReadableStreamDefaultReader);
  internal.ReadableStream = ReadableStream;
  internal.isStream = (value) => value instanceof ReadableStream;
  internal.streamIsDisturbed = streamIsDisturbed;
  internal.readAllChunks = readAllChunks;
}
