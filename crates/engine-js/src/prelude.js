// The Web APIs that app code sees, written in JavaScript on top of a few host functions.
//
// This module is compiled to bytecode once per process and evaluated in every instance before
// the app's own modules. `install(host)` defines the globals and returns the internal entry points
// that the engine calls; `host` itself never becomes visible to app code.

export default function install(host) {
  const LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3;

  const define = (name, value) =>
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });

  // ---------------------------------------------------------------------------------------------
  // Errors.

  class DOMException extends Error {
    constructor(message = "", name = "Error") {
      super(message);
      Object.defineProperty(this, "name", { value: name, configurable: true, writable: true });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Bytes and text.

  const isBufferSource = (value) => value instanceof ArrayBuffer || ArrayBuffer.isView(value);

  // A fresh Uint8Array with a copy of the bytes of any BufferSource.
  function copyBytes(value) {
    if (value instanceof ArrayBuffer) return new Uint8Array(value.slice(0));
    return new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
  }

  // A Uint8Array view of any BufferSource, without copying.
  function viewBytes(value) {
    if (value instanceof Uint8Array) return value;
    if (value instanceof ArrayBuffer) return new Uint8Array(value);
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }

  function concatBytes(chunks) {
    let length = 0;
    for (const chunk of chunks) length += chunk.byteLength;
    const out = new Uint8Array(length);
    let offset = 0;
    for (const chunk of chunks) {
      out.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return out;
  }

  class TextEncoder {
    get encoding() { return "utf-8"; }
    encode(input = "") { return host.encodeUtf8(String(input)); }
    encodeInto(input, destination) {
      const bytes = host.encodeUtf8(String(input));
      // Copy whole characters only: stop before a UTF-8 continuation byte that does not fit.
      let written = Math.min(bytes.length, destination.length);
      while (written > 0 && written < bytes.length && (bytes[written] & 0xc0) === 0x80) written--;
      destination.set(bytes.subarray(0, written));
      const read = host.decodeUtf8(bytes.subarray(0, written), false, true).length;
      return { read, written };
    }
  }

  const UTF8_LABELS = ["utf-8", "utf8", "unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "x-unicode20utf8"];

  class TextDecoder {
    #fatal; #ignoreBOM;
    constructor(label = "utf-8", options = {}) {
      if (!UTF8_LABELS.includes(String(label).trim().toLowerCase())) {
        throw new RangeError(`TextDecoder: the encoding "${label}" is not supported (only utf-8 is)`);
      }
      this.#fatal = Boolean(options.fatal);
      this.#ignoreBOM = Boolean(options.ignoreBOM);
    }
    get encoding() { return "utf-8"; }
    get fatal() { return this.#fatal; }
    get ignoreBOM() { return this.#ignoreBOM; }
    decode(input, options) {
      if (input === undefined) return "";
      if (!isBufferSource(input)) throw new TypeError("TextDecoder.decode: input must be an ArrayBuffer or a view of one");
      return host.decodeUtf8(viewBytes(input), this.#fatal, this.#ignoreBOM);
    }
  }

  function btoa(data) {
    const result = host.btoa(String(data));
    if (result == null) throw new DOMException("btoa: the string contains characters outside of Latin1", "InvalidCharacterError");
    return result;
  }

  function atob(data) {
    const result = host.atob(String(data));
    if (result == null) throw new DOMException("atob: the string is not correctly encoded base64", "InvalidCharacterError");
    return result;
  }

  // ---------------------------------------------------------------------------------------------
  // Console.

  function describe(value, depth = 0) {
    switch (typeof value) {
      case "string": return depth === 0 ? value : JSON.stringify(value);
      case "function": return `[Function: ${value.name || "(anonymous)"}]`;
      case "symbol": return value.toString();
      case "bigint": return `${value}n`;
      case "object": break;
      default: return String(value);
    }
    if (value === null) return "null";
    if (value instanceof Error) return value.stack ? `${value.name}: ${value.message}\n${value.stack}`.trimEnd() : `${value.name}: ${value.message}`;
    if (value instanceof Date) return value.toISOString();
    if (value instanceof RegExp) return String(value);
    if (value instanceof Map) return `Map(${value.size}) ${describe(Object.fromEntries(value), depth + 1)}`;
    if (value instanceof Set) return `Set(${value.size}) ${describe([...value], depth + 1)}`;
    if (value instanceof Headers || value instanceof URLSearchParams) return `${value.constructor.name} ${describe(Object.fromEntries(value), depth + 1)}`;
    if (value instanceof URL) return `URL ${value.href}`;
    if (value instanceof Request) return `Request ${value.method} ${value.url}`;
    if (value instanceof Response) return `Response ${value.status}`;
    const seen = new WeakSet();
    try {
      return JSON.stringify(value, (key, inner) => {
        if (typeof inner === "bigint") return `${inner}n`;
        if (typeof inner === "function") return `[Function: ${inner.name || "(anonymous)"}]`;
        if (inner !== null && typeof inner === "object") {
          if (seen.has(inner)) return "[Circular]";
          seen.add(inner);
        }
        return inner;
      }) ?? String(value);
    } catch {
      return String(value);
    }
  }

  function format(args) {
    if (args.length === 0) return "";
    let rest = args;
    let head = "";
    // Printf-style substitutions in the first argument, like a browser console.
    if (typeof args[0] === "string" && args[0].includes("%")) {
      let index = 1;
      head = args[0].replace(/%[sdifoOjc%]/g, (token) => {
        if (token === "%%") return "%";
        if (index >= args.length) return token;
        const arg = args[index++];
        switch (token) {
          case "%s": return typeof arg === "string" ? arg : describe(arg, 1);
          case "%d": case "%i": return String(typeof arg === "bigint" ? arg : parseInt(arg, 10));
          case "%f": return String(parseFloat(arg));
          case "%c": return "";
          default: return describe(arg, 1);
        }
      });
      rest = args.slice(index);
      return [head, ...rest.map((arg) => describe(arg))].join(" ");
    }
    return rest.map((arg) => describe(arg)).join(" ");
  }

  const counters = new Map();
  const timers = new Map();
  const console = {
    log: (...args) => host.log(LOG_INFO, format(args)),
    info: (...args) => host.log(LOG_INFO, format(args)),
    debug: (...args) => host.log(LOG_DEBUG, format(args)),
    trace: (...args) => host.log(LOG_DEBUG, format(args)),
    warn: (...args) => host.log(LOG_WARN, format(args)),
    error: (...args) => host.log(LOG_ERROR, format(args)),
    assert: (condition, ...args) => { if (!condition) host.log(LOG_ERROR, "Assertion failed" + (args.length ? ": " + format(args) : "")); },
    dir: (value) => host.log(LOG_INFO, describe(value, 1)),
    table: (value) => host.log(LOG_INFO, describe(value, 1)),
    count: (label = "default") => {
      const count = (counters.get(label) ?? 0) + 1;
      counters.set(label, count);
      host.log(LOG_INFO, `${label}: ${count}`);
    },
    countReset: (label = "default") => counters.delete(label),
    time: (label = "default") => timers.set(label, Date.now()),
    timeEnd: (label = "default") => {
      const start = timers.get(label);
      timers.delete(label);
      if (start !== undefined) host.log(LOG_INFO, `${label}: ${Date.now() - start}ms`);
    },
    timeLog: (label = "default", ...args) => {
      const start = timers.get(label);
      if (start !== undefined) host.log(LOG_INFO, `${label}: ${Date.now() - start}ms` + (args.length ? " " + format(args) : ""));
    },
    group: () => {},
    groupEnd: () => {},
  };

  // ---------------------------------------------------------------------------------------------
  // Crypto and cloning.

  const crypto = {
    randomUUID: () => host.randomUUID(),
    getRandomValues(array) {
      if (!ArrayBuffer.isView(array) || array instanceof Float32Array || array instanceof Float64Array || array instanceof DataView) {
        throw new TypeError("crypto.getRandomValues: the argument must be an integer typed array");
      }
      if (array.byteLength > 65536) {
        throw new DOMException("crypto.getRandomValues: at most 65536 bytes may be requested", "QuotaExceededError");
      }
      viewBytes(array).set(host.randomBytes(array.byteLength));
      return array;
    },
  };

  function structuredClone(value, options) {
    const seen = new Map();
    const cloneError = (what) => new DOMException(`structuredClone: ${what} could not be cloned`, "DataCloneError");
    function clone(input) {
      if (input === null || (typeof input !== "object" && typeof input !== "function" && typeof input !== "symbol")) return input;
      if (typeof input === "function") throw cloneError(`function ${input.name || "(anonymous)"}`);
      if (typeof input === "symbol") throw cloneError("a symbol");
      if (seen.has(input)) return seen.get(input);
      let output;
      if (Array.isArray(input)) {
        output = new Array(input.length);
        seen.set(input, output);
        for (const key of Object.keys(input)) output[key] = clone(input[key]);
        return output;
      }
      if (input instanceof Date) output = new Date(input.getTime());
      else if (input instanceof RegExp) output = new RegExp(input.source, input.flags);
      else if (input instanceof ArrayBuffer) output = input.slice(0);
      else if (input instanceof DataView) output = new DataView(clone(input.buffer), input.byteOffset, input.byteLength);
      else if (ArrayBuffer.isView(input)) output = new input.constructor(clone(input.buffer), input.byteOffset, input.length);
      else if (input instanceof Boolean || input instanceof Number || input instanceof String) output = Object(input.valueOf());
      else if (input instanceof Map) {
        output = new Map();
        seen.set(input, output);
        for (const [key, inner] of input) output.set(clone(key), clone(inner));
        return output;
      } else if (input instanceof Set) {
        output = new Set();
        seen.set(input, output);
        for (const inner of input) output.add(clone(inner));
        return output;
      } else if (input instanceof Error) {
        const Constructor = globalThis[input.name] ?? Error;
        output = Object.create(Constructor.prototype);
        seen.set(input, output);
        for (const key of ["message", "stack", "cause"]) {
          if (Object.prototype.hasOwnProperty.call(input, key)) {
            Object.defineProperty(output, key, { value: clone(input[key]), writable: true, configurable: true });
          }
        }
        return output;
      } else if (input instanceof Promise || input instanceof WeakMap || input instanceof WeakSet) {
        throw cloneError(`a ${input.constructor.name}`);
      } else {
        output = {};
        seen.set(input, output);
        for (const key of Object.keys(input)) output[key] = clone(input[key]);
        return output;
      }
      seen.set(input, output);
      return output;
    }
    return clone(value);
  }

  // ---------------------------------------------------------------------------------------------
  // URL and URLSearchParams. Parsing is the `url` crate's (WHATWG URL Standard) through the host.

  const URL_FIELDS = ["href", "origin", "protocol", "username", "password", "host", "hostname", "port", "pathname", "search", "hash"];

  class URLSearchParams {
    #list = [];
    #url = null;
    constructor(init = "") {
      if (init instanceof URLSearchParams) {
        this.#list = init.#list.map(([name, value]) => [name, value]);
      } else if (typeof init === "object" && init !== null) {
        if (typeof init[Symbol.iterator] === "function") {
          for (const pair of init) {
            const entry = [...pair];
            if (entry.length !== 2) throw new TypeError("URLSearchParams: each pair must have exactly two items");
            this.#list.push([String(entry[0]), String(entry[1])]);
          }
        } else {
          for (const key of Object.keys(init)) this.#list.push([key, String(init[key])]);
        }
      } else {
        this.#parse(String(init));
      }
    }
    #parse(query) {
      const flat = host.formParse(query.startsWith("?") ? query.slice(1) : query);
      this.#list = [];
      for (let i = 0; i < flat.length; i += 2) this.#list.push([flat[i], flat[i + 1]]);
    }
    #update() {
      if (this.#url !== null) urlSetSearchFromParams(this.#url, this.toString());
    }
    static attach(params, url, query) {
      params.#url = url;
      params.#parse(query);
    }
    get size() { return this.#list.length; }
    append(name, value) { this.#list.push([String(name), String(value)]); this.#update(); }
    delete(name, value) {
      name = String(name);
      this.#list = this.#list.filter(([n, v]) => n !== name || (value !== undefined && v !== String(value)));
      this.#update();
    }
    get(name) {
      name = String(name);
      const entry = this.#list.find(([n]) => n === name);
      return entry ? entry[1] : null;
    }
    getAll(name) {
      name = String(name);
      return this.#list.filter(([n]) => n === name).map(([, v]) => v);
    }
    has(name, value) {
      name = String(name);
      return this.#list.some(([n, v]) => n === name && (value === undefined || v === String(value)));
    }
    set(name, value) {
      name = String(name);
      value = String(value);
      const index = this.#list.findIndex(([n]) => n === name);
      if (index < 0) {
        this.#list.push([name, value]);
      } else {
        this.#list[index][1] = value;
        this.#list = this.#list.filter(([n], i) => n !== name || i === index);
      }
      this.#update();
    }
    sort() {
      // A stable sort by UTF-16 code units, as the standard says.
      this.#list = this.#list.map((entry, index) => [entry, index])
        .sort(([a, i], [b, j]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : i - j))
        .map(([entry]) => entry);
      this.#update();
    }
    forEach(callback, thisArg) {
      for (const [name, value] of this.#list) callback.call(thisArg, value, name, this);
    }
    *entries() { for (const [name, value] of this.#list) yield [name, value]; }
    *keys() { for (const [name] of this.#list) yield name; }
    *values() { for (const [, value] of this.#list) yield value; }
    [Symbol.iterator]() { return this.entries(); }
    toString() { return host.formSerialize(this.#list.flat()); }
    get [Symbol.toStringTag]() { return "URLSearchParams"; }
  }

  let urlSetSearchFromParams;

  const parseUrl = (url, base) => (base === undefined ? host.urlParse(String(url)) : host.urlParse(String(url), String(base)));

  class URL {
    #parts;
    #searchParams = null;
    constructor(url, base) {
      const parts = parseUrl(url, base);
      if (parts == null) throw new TypeError(`Invalid URL: ${String(url)}${base === undefined ? "" : ` (base ${String(base)})`}`);
      this.#parts = parts;
    }
    static canParse(url, base) {
      return parseUrl(url, base) != null;
    }
    static parse(url, base) {
      try { return new URL(url, base); } catch { return null; }
    }
    static {
      urlSetSearchFromParams = (url, query) => {
        url.#parts = host.urlSet(url.#parts[0], "search", query) ?? url.#parts;
      };
      for (let index = 0; index < URL_FIELDS.length; index++) {
        const field = URL_FIELDS[index];
        const descriptor = { get() { return this.#parts[index]; }, configurable: true, enumerable: true };
        if (field !== "origin") {
          descriptor.set = function (value) {
            if (field === "href") {
              const parts = host.urlParse(String(value));
              if (parts == null) throw new TypeError(`Invalid URL: ${value}`);
              this.#parts = parts;
            } else {
              this.#parts = host.urlSet(this.#parts[0], field, String(value)) ?? this.#parts;
            }
            if (this.#searchParams !== null && (field === "href" || field === "search")) {
              URLSearchParams.attach(this.#searchParams, this, this.#parts[9]);
            }
          };
        }
        Object.defineProperty(URL.prototype, field, descriptor);
      }
    }
    get searchParams() {
      if (this.#searchParams === null) {
        this.#searchParams = new URLSearchParams();
        URLSearchParams.attach(this.#searchParams, this, this.#parts[9]);
      }
      return this.#searchParams;
    }
    toString() { return this.#parts[0]; }
    toJSON() { return this.#parts[0]; }
    get [Symbol.toStringTag]() { return "URL"; }
  }

  // ---------------------------------------------------------------------------------------------
  // Headers.

  const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

  function normalizeName(name) {
    name = String(name);
    if (!TOKEN.test(name)) throw new TypeError(`Headers: "${name}" is not a valid header name`);
    return name.toLowerCase();
  }

  function normalizeValue(value) {
    value = String(value).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
    if (/[\0\r\n]/.test(value)) throw new TypeError("Headers: a header value must not contain NUL, CR or LF");
    return value;
  }

  let headersList, headersFromTrustedPairs, headersSetGuard;

  class Headers {
    // A list of [lowercase name, value] pairs in insertion order.
    #list = [];
    #immutable = false;
    constructor(init) {
      if (init === undefined || init === null) return;
      if (init instanceof Headers) {
        this.#list = init.#list.map(([name, value]) => [name, value]);
      } else if (typeof init === "object" && typeof init[Symbol.iterator] === "function") {
        for (const pair of init) {
          const entry = [...pair];
          if (entry.length !== 2) throw new TypeError("Headers: each header must be a [name, value] pair");
          this.append(entry[0], entry[1]);
        }
      } else if (typeof init === "object") {
        for (const key of Object.keys(init)) this.append(key, init[key]);
      } else {
        throw new TypeError("Headers: expected an object, an array of pairs or Headers");
      }
    }
    static {
      headersList = (headers) => headers.#list;
      headersFromTrustedPairs = (flat) => {
        const headers = new Headers();
        for (let i = 0; i < flat.length; i += 2) headers.#list.push([flat[i].toLowerCase(), flat[i + 1]]);
        return headers;
      };
      headersSetGuard = (headers) => { headers.#immutable = true; return headers; };
    }
    #check() {
      if (this.#immutable) throw new TypeError("Headers: these headers are immutable");
    }
    append(name, value) {
      this.#check();
      this.#list.push([normalizeName(name), normalizeValue(value)]);
    }
    delete(name) {
      this.#check();
      name = normalizeName(name);
      this.#list = this.#list.filter(([n]) => n !== name);
    }
    get(name) {
      name = normalizeName(name);
      let result = null;
      for (const [n, v] of this.#list) {
        if (n === name) result = result === null ? v : `${result}, ${v}`;
      }
      return result;
    }
    getSetCookie() {
      return this.#list.filter(([n]) => n === "set-cookie").map(([, v]) => v);
    }
    has(name) {
      name = normalizeName(name);
      return this.#list.some(([n]) => n === name);
    }
    set(name, value) {
      this.#check();
      name = normalizeName(name);
      value = normalizeValue(value);
      const index = this.#list.findIndex(([n]) => n === name);
      if (index < 0) {
        this.#list.push([name, value]);
      } else {
        this.#list[index] = [name, value];
        this.#list = this.#list.filter(([n], i) => n !== name || i === index);
      }
    }
    // Sorted by name with the values of one name combined, except `set-cookie`, as the standard says.
    *entries() {
      const names = [...new Set(this.#list.map(([n]) => n))].sort();
      for (const name of names) {
        if (name === "set-cookie") {
          for (const value of this.getSetCookie()) yield [name, value];
        } else {
          yield [name, this.get(name)];
        }
      }
    }
    *keys() { for (const [name] of this.entries()) yield name; }
    *values() { for (const [, value] of this.entries()) yield value; }
    forEach(callback, thisArg) {
      for (const [name, value] of this.entries()) callback.call(thisArg, value, name, this);
    }
    [Symbol.iterator]() { return this.entries(); }
    get [Symbol.toStringTag]() { return "Headers"; }
  }

  // ---------------------------------------------------------------------------------------------
  // ReadableStream: a small default stream of chunks with start/pull/cancel sources.

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
        } else if (isBufferSource(value)) {
          if (onChunk(viewBytes(value)) === false) { await reader.cancel(); return; }
        } else {
          throw new TypeError("ReadableStream: a body chunk must be a Uint8Array, an ArrayBuffer or a string");
        }
      }
    } finally {
      reader.releaseLock();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Bodies, shared by Request and Response.

  // Turns what a constructor was given into a body source and the content type it implies.
  function extractBody(body) {
    if (body === undefined || body === null) return [null, null];
    if (typeof body === "string") return [body, "text/plain;charset=UTF-8"];
    if (isBufferSource(body)) return [copyBytes(body), null];
    if (body instanceof URLSearchParams) return [body.toString(), "application/x-www-form-urlencoded;charset=UTF-8"];
    if (body instanceof ReadableStream) return [body, null];
    if (body instanceof FormData) {
      throw new TypeError("FormData bodies are not supported yet; send a URLSearchParams or JSON instead");
    }
    return [String(body), "text/plain;charset=UTF-8"];
  }

  class FormData {
    #list = [];
    append(name, value) { this.#list.push([String(name), String(value)]); }
    delete(name) { name = String(name); this.#list = this.#list.filter(([n]) => n !== name); }
    get(name) { name = String(name); const entry = this.#list.find(([n]) => n === name); return entry ? entry[1] : null; }
    getAll(name) { name = String(name); return this.#list.filter(([n]) => n === name).map(([, v]) => v); }
    has(name) { name = String(name); return this.#list.some(([n]) => n === name); }
    set(name, value) {
      name = String(name);
      const index = this.#list.findIndex(([n]) => n === name);
      if (index < 0) { this.#list.push([name, String(value)]); return; }
      this.#list[index] = [name, String(value)];
      this.#list = this.#list.filter(([n], i) => n !== name || i === index);
    }
    forEach(callback, thisArg) { for (const [name, value] of this.#list) callback.call(thisArg, value, name, this); }
    *entries() { for (const [name, value] of this.#list) yield [name, value]; }
    *keys() { for (const [name] of this.#list) yield name; }
    *values() { for (const [, value] of this.#list) yield value; }
    [Symbol.iterator]() { return this.entries(); }
    get [Symbol.toStringTag]() { return "FormData"; }
  }

  let bodySource, bodyInit, bodyCloneSource;

  class Body {
    // null, a string, a Uint8Array or a ReadableStream.
    #source = null;
    #used = false;
    #stream = null;
    static {
      bodySource = (body) => body.#source;
      bodyInit = (body, source) => { body.#source = source; };
      bodyCloneSource = (body) => body.#cloneSource();
    }
    get body() {
      if (this.#source === null) return null;
      if (this.#source instanceof ReadableStream) return this.#source;
      if (this.#stream === null) {
        const source = this.#source;
        this.#stream = new ReadableStream({
          start: (controller) => {
            this.#used = true;
            controller.enqueue(typeof source === "string" ? host.encodeUtf8(source) : source);
            controller.close();
          },
        });
      }
      return this.#stream;
    }
    get bodyUsed() {
      return this.#used || (this.#source instanceof ReadableStream && streamIsDisturbed(this.#source));
    }
    #take() {
      if (this.bodyUsed) return Promise.reject(new TypeError("Body has already been used; use clone() to read it twice"));
      this.#used = true;
      return Promise.resolve(this.#source);
    }
    async #bytes() {
      const source = await this.#take();
      if (source === null) return new Uint8Array(0);
      if (typeof source === "string") return host.encodeUtf8(source);
      if (source instanceof Uint8Array) return source.slice();
      const chunks = [];
      await readAllChunks(source, (chunk) => { chunks.push(typeof chunk === "string" ? host.encodeUtf8(chunk) : chunk.slice()); });
      return concatBytes(chunks);
    }
    async text() {
      if (typeof this.#source === "string" && !this.bodyUsed) {
        this.#used = true;
        return this.#source;
      }
      return host.decodeUtf8(await this.#bytes(), false, false);
    }
    async json() { return JSON.parse(await this.text()); }
    async arrayBuffer() { return (await this.#bytes()).buffer; }
    async bytes() { return this.#bytes(); }
    async formData() {
      const type = (this.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
      if (type !== "application/x-www-form-urlencoded") {
        throw new TypeError(`formData(): only application/x-www-form-urlencoded bodies are supported, not "${type || "(none)"}"`);
      }
      const form = new FormData();
      for (const [name, value] of new URLSearchParams(await this.text())) form.append(name, value);
      return form;
    }
    // A second, independent copy of this body's source, for clone().
    #cloneSource() {
      if (this.bodyUsed) throw new TypeError("clone(): the body has already been used");
      if (this.#source instanceof ReadableStream) {
        const [first, second] = this.#source.tee();
        this.#source = first;
        return second;
      }
      return this.#source;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Request.

  const METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH"];

  // Passed as `input` by the engine to build the incoming request; app code cannot name it.
  const INCOMING = Symbol("incoming request");

  class Request extends Body {
    #method; #url; #headers; #redirect; #signal;
    #rawHeaders = null;
    constructor(input, init = {}) {
      super();
      if (input === INCOMING) {
        // Trusted values from the host; the headers are built on first use.
        const [method, url, flatHeaders, body] = init;
        this.#method = method;
        this.#url = url;
        this.#headers = null;
        this.#rawHeaders = flatHeaders;
        this.#redirect = "manual";
        this.#signal = null;
        bodyInit(this, body);
        return;
      }
      let source = null;
      if (input instanceof Request) {
        this.#method = input.method;
        this.#url = input.url;
        this.#headers = new Headers(input.headers);
        this.#redirect = input.redirect;
        this.#signal = input.signal;
        if (init.body === undefined) source = bodyCloneSource(input);
      } else {
        this.#url = new URL(String(input)).href;
        this.#method = "GET";
        this.#headers = new Headers();
        this.#redirect = "follow";
        this.#signal = null;
      }
      if (init.method !== undefined) {
        const method = String(init.method);
        this.#method = METHODS.includes(method.toUpperCase()) ? method.toUpperCase() : method;
        if (!TOKEN.test(this.#method)) throw new TypeError(`Request: "${method}" is not a valid method`);
      }
      if (init.headers !== undefined) this.#headers = new Headers(init.headers);
      if (init.redirect !== undefined) this.#redirect = String(init.redirect);
      if (init.signal !== undefined) this.#signal = init.signal;
      if (init.body !== undefined && init.body !== null) {
        if (this.#method === "GET" || this.#method === "HEAD") throw new TypeError("Request: a GET or HEAD request cannot have a body");
        const [body, type] = extractBody(init.body);
        source = body;
        if (type !== null && !this.#headers.has("content-type")) this.#headers.set("content-type", type);
      }
      bodyInit(this, source);
    }
    get method() { return this.#method; }
    get url() { return this.#url; }
    get headers() {
      if (this.#headers === null) {
        this.#headers = headersFromTrustedPairs(this.#rawHeaders);
        this.#rawHeaders = null;
      }
      return this.#headers;
    }
    get redirect() { return this.#redirect; }
    get signal() { return this.#signal; }
    clone() { return new Request(this); }
    get [Symbol.toStringTag]() { return "Request"; }
  }

  // ---------------------------------------------------------------------------------------------
  // Response.

  const NULL_BODY_STATUSES = [101, 103, 204, 205, 304];
  const REDIRECT_STATUSES = [301, 302, 303, 307, 308];

  class Response extends Body {
    #status; #statusText; #headers; #url = ""; #type = "default"; #redirected = false;
    constructor(body = null, init = {}) {
      super();
      const status = init.status === undefined ? 200 : Number(init.status);
      if (!Number.isInteger(status) || status < 200 || status > 599) {
        throw new RangeError(`Response: status ${init.status} is not in the range 200 to 599`);
      }
      this.#status = status;
      this.#statusText = init.statusText === undefined ? "" : String(init.statusText);
      this.#headers = new Headers(init.headers);
      const [source, type] = extractBody(body);
      if (source !== null && NULL_BODY_STATUSES.includes(status)) {
        throw new TypeError(`Response: a response with status ${status} cannot have a body`);
      }
      if (type !== null && !this.#headers.has("content-type")) this.#headers.set("content-type", type);
      bodyInit(this, source);
    }
    static json(data, init = {}) {
      const text = JSON.stringify(data);
      if (text === undefined) throw new TypeError("Response.json: the value cannot be serialised as JSON");
      const headers = new Headers(init.headers);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
      return new Response(text, { ...init, headers });
    }
    static redirect(url, status = 302) {
      if (!REDIRECT_STATUSES.includes(status)) throw new RangeError(`Response.redirect: ${status} is not a redirect status`);
      const location = new URL(String(url)).href;
      return new Response(null, { status, headers: { location } });
    }
    static error() {
      const response = new Response(null, { status: 200 });
      response.#status = 0;
      response.#type = "error";
      return response;
    }
    static {
      Response.fromHost = (status, flatHeaders, url, bytes, redirected) => {
        const response = new Response(null, { status: 200 });
        response.#status = status;
        response.#headers = headersSetGuard(headersFromTrustedPairs(flatHeaders));
        response.#url = url;
        response.#type = "basic";
        response.#redirected = redirected;
        bodyInit(response, NULL_BODY_STATUSES.includes(status) ? null : bytes);
        return response;
      };
    }
    get status() { return this.#status; }
    get statusText() { return this.#statusText; }
    get ok() { return this.#status >= 200 && this.#status <= 299; }
    get headers() { return this.#headers; }
    get url() { return this.#url; }
    get type() { return this.#type; }
    get redirected() { return this.#redirected; }
    clone() {
      const copy = new Response(null, { status: 200 });
      copy.#status = this.#status;
      copy.#statusText = this.#statusText;
      copy.#headers = new Headers(this.#headers);
      copy.#url = this.#url;
      copy.#type = this.#type;
      copy.#redirected = this.#redirected;
      bodyInit(copy, bodyCloneSource(this));
      return copy;
    }
    get [Symbol.toStringTag]() { return "Response"; }
  }
  const responseFromHost = Response.fromHost;
  delete Response.fromHost;

  // ---------------------------------------------------------------------------------------------
  // Operations the host completes later: outbound fetch and timers.

  const pendingFetches = new Map();
  const activeTimers = new Map();
  let nextTimerId = 1;

  async function fetch(input, init = undefined) {
    const request = new Request(input, init);
    const scheme = new URL(request.url).protocol;
    if (scheme !== "http:" && scheme !== "https:") throw new TypeError(`fetch: the scheme "${scheme}" is not supported`);
    let body;
    const source = bodySource(request);
    if (source !== null) body = new Uint8Array(await request.arrayBuffer());
    const flat = [];
    for (const [name, value] of headersList(request.headers)) flat.push(name, value);
    const id = body === undefined ? host.fetch(request.method, request.url, flat) : host.fetch(request.method, request.url, flat, body);
    const { promise, resolve, reject } = Promise.withResolvers();
    pendingFetches.set(id, { resolve, reject });
    return promise;
  }

  function setTimer(callback, delay, args, repeat) {
    if (typeof callback !== "function") throw new TypeError("setTimeout: the callback must be a function");
    const id = nextTimerId++;
    const ms = Math.max(0, Number(delay) || 0);
    activeTimers.set(id, { callback, args, repeat, ms });
    host.timer(id, ms);
    return id;
  }

  // ---------------------------------------------------------------------------------------------
  // Globals.

  define("DOMException", DOMException);
  define("TextEncoder", TextEncoder);
  define("TextDecoder", TextDecoder);
  define("atob", atob);
  define("btoa", btoa);
  define("console", console);
  define("crypto", crypto);
  define("structuredClone", structuredClone);
  define("URL", URL);
  define("URLSearchParams", URLSearchParams);
  define("Headers", Headers);
  define("ReadableStream", ReadableStream);
  define("ReadableStreamDefaultReader", ReadableStreamDefaultReader);
  define("FormData", FormData);
  define("Request", Request);
  define("Response", Response);
  define("fetch", fetch);
  define("setTimeout", (callback, delay, ...args) => setTimer(callback, delay, args, false));
  define("setInterval", (callback, delay, ...args) => setTimer(callback, delay, args, true));
  define("clearTimeout", (id) => { activeTimers.delete(id); });
  define("clearInterval", (id) => { activeTimers.delete(id); });
  define("performance", { now: () => host.now(), timeOrigin: Date.now() });
  define("navigator", { userAgent: "Terrarium" });
  define("self", globalThis);

  // ---------------------------------------------------------------------------------------------
  // The engine's entry points.

  function describeReturn(value) {
    if (value === undefined) return "undefined (did the handler forget to return a Response?)";
    if (value === null) return "null";
    if (typeof value === "object") return `an object (${describe(value, 1).slice(0, 200)})`;
    return `${typeof value} ${describe(value, 1).slice(0, 200)}`;
  }

  // Runs one request through the app's handler and reports the outcome to the host.
  async function invoke(handler, method, url, flatHeaders, body, env) {
    const waits = [];
    const ctx = {
      waitUntil(promise) {
        waits.push(Promise.resolve(promise).catch((error) => host.log(LOG_ERROR, "ctx.waitUntil promise rejected: " + describe(error))));
      },
      passThroughOnException() {},
    };
    try {
      const request = new Request(INCOMING, [method, url, flatHeaders, body]);
      const response = await handler.fetch(request, env, ctx);
      if (!(response instanceof Response)) {
        host.badReturn(describeReturn(response));
      } else if (response.type === "error") {
        host.badReturn("Response.error()");
      } else {
        const flat = [];
        for (const [name, value] of headersList(response.headers)) flat.push(name, value);
        const source = response.bodyUsed ? undefined : bodySource(response);
        if (source instanceof ReadableStream) {
          await readAllChunks(source, (chunk) => host.chunk(chunk));
          host.respond(response.status, flat, undefined);
        } else if (response.bodyUsed) {
          throw new TypeError("the Response's body has already been read");
        } else {
          host.respond(response.status, flat, source);
        }
      }
    } catch (error) {
      host.fail(error);
    }
    if (waits.length > 0) await Promise.all(waits);
    host.finished();
  }

  // Completes a pending outbound fetch: `ok` with [status, flat headers, url, bytes, redirected], or a message.
  function settleFetch(id, ok, value) {
    const pending = pendingFetches.get(id);
    if (pending === undefined) return;
    pendingFetches.delete(id);
    if (ok) pending.resolve(responseFromHost(value[0], value[1], value[2], value[3], value[4]));
    else pending.reject(new TypeError(value));
  }

  function fireTimer(id) {
    const timer = activeTimers.get(id);
    if (timer === undefined) return;
    if (timer.repeat) host.timer(id, timer.ms);
    else activeTimers.delete(id);
    timer.callback(...timer.args);
  }

  // Forgets what an earlier request left behind, so a reused instance starts clean.
  function reset() {
    pendingFetches.clear();
    activeTimers.clear();
  }

  return { invoke, settleFetch, fireTimer, reset };
}
