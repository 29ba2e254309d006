// The core of the prelude: Headers, Request, Response, fetch, timers and the engine's entry points,
// plus lazy globals that evaluate the other parts (URL, streams, console, …) on first use.
//
// Compiled to bytecode once per process and evaluated in every instance before the app's modules.
// `install(host)` defines the globals and returns the functions the engine calls; `host` and
// `internal` never become visible to app code.

export default function install(host) {
  const LOG_ERROR = 3;

  // Built-ins the prelude relies on, taken before app code runs and can replace them or their
  // prototypes' methods. Methods are called through `call`: `call(ArrayPush, list, item)` is
  // `list.push(item)` with the push taken here, so a replaced `Array.prototype.push` or
  // `Promise.prototype.then` never runs inside the platform's code. One bound `call` serves every
  // method (a bound function per method would cost each instance some 300 bytes apiece).
  const { defineProperty, freeze, assign } = Object;
  const FunctionCall = Function.prototype.call;
  const PromiseCtor = Promise;
  const primordials = freeze({
    __proto__: null,
    call: Function.prototype.bind.call(FunctionCall, FunctionCall),
    StringCtor: String,
    PromiseCtor,
    PromiseResolve: Promise.resolve.bind(Promise),
    PromiseReject: Promise.reject.bind(Promise),
    PromiseWithResolvers: Promise.withResolvers.bind(Promise),
    ArrayPush: Array.prototype.push,
    ArraySort: Array.prototype.sort,
    ArrayIndexOf: Array.prototype.indexOf,
    ArrayJoin: Array.prototype.join,
    MapGet: Map.prototype.get,
    MapSet: Map.prototype.set,
    SetAdd: Set.prototype.add,
    StringToLowerCase: String.prototype.toLowerCase,
    StringToUpperCase: String.prototype.toUpperCase,
    StringFromCharCode: String.fromCharCode,
    StringCharCodeAt: String.prototype.charCodeAt,
    StringSlice: String.prototype.slice,
    RegExpExec: RegExp.prototype.exec,
    isWellFormed: String.prototype.isWellFormed,
    toWellFormed: String.prototype.toWellFormed,
    TypedArraySet: Object.getPrototypeOf(Uint8Array.prototype).set,
    TypedArraySubarray: Object.getPrototypeOf(Uint8Array.prototype).subarray,
    TypedArraySlice: Object.getPrototypeOf(Uint8Array.prototype).slice,
    ArrayBufferSlice: ArrayBuffer.prototype.slice,
    Uint8ArrayCtor: Uint8Array,
    ArrayBufferCtor: ArrayBuffer,
    isView: ArrayBuffer.isView,
    JSONParse: JSON.parse,
    JSONStringify: JSON.stringify,
    ObjectKeys: Object.keys,
    getOwnPropertyDescriptor: Object.getOwnPropertyDescriptor,
    freeze,
    defineProperty,
    ObjectAssign: assign,
    ObjectPrototype: Object.prototype,
    setPrototypeOf: Object.setPrototypeOf,
    ArrayShift: Array.prototype.shift,
    ArrayIsArray: Array.isArray,
    FinalizationRegistryCtor: typeof FinalizationRegistry === "function" ? FinalizationRegistry : null,
    ReflectApply: Reflect.apply,
    SymbolIterator: Symbol.iterator,
    SymbolAsyncIterator: Symbol.asyncIterator,
    SymbolToStringTag: Symbol.toStringTag,
    IteratorPrototype: Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]())),
  });
  const {
    call, StringCtor, PromiseResolve, PromiseReject, PromiseWithResolvers, ArrayPush,
    ArraySort, StringToLowerCase, RegExpExec, StringSlice,
    TypedArraySet, TypedArraySlice, ArrayBufferSlice, Uint8ArrayCtor, ArrayBufferCtor, isView, JSONParse,
    JSONStringify, ObjectKeys, ReflectApply, ObjectPrototype,
  } = primordials;
  // A record no prototype reaches: what the prelude resolves its own promises with, so a
  // `then` added to Object.prototype is never called by the platform's own awaits.
  const record = (fields) => assign({ __proto__: null }, fields);

  // Shared between the parts of the prelude. A part's checks stay false until it is loaded:
  // no URL can exist before the URL part defines the class. It has no prototype, so app code
  // that changes Object.prototype cannot observe it.
  const internal = { __proto__: null,
    primordials,
    record,
    isSearchParams: () => false,
    isBlob: () => false,
    // Each binding's part adds what clears its pending calls when a request starts.
    resets: [],
    isFormData: () => false,
    isURL: () => false,
    isStream: () => false,
    isAbortSignal: () => false,
    define(name, value) {
      defineProperty(globalThis, name, { __proto__: null, value, writable: true, configurable: true, enumerable: false });
    },
  };

  // Evaluates a part of the prelude once and returns `internal`, which the part extended. The
  // part gets its own host functions, with the core's behind them.
  primordials.setPrototypeOf(host, null);
  const loaded = { __proto__: null };
  internal.load = (part) => {
    if (loaded[part] !== true) {
      const made = host.loadPart(part);
      const partHost = primordials.setPrototypeOf(made[1], host);
      made[0](partHost, internal);
      // Marked only once it loaded: a part that failed is tried again, not left half-made.
      loaded[part] = true;
    }
    return internal;
  };

  // Globals that load their part when first read; assigning one first simply replaces it. One
  // function is both the getter and the setter (a getter is called with no argument), which
  // halves what the lazy globals cost an instance.
  const lazy = (part, names) => {
    for (let i = 0; i < names.length; i++) {
      const name = names[i];
      const access = function (...value) {
        if (value.length === 0) {
          internal.load(part);
          return globalThis[name];
        }
        internal.define(name, value[0]);
      };
      defineProperty(globalThis, name, { __proto__: null, configurable: true, enumerable: false, get: access, set: access });
    }
  };
  // A part's global, unless app code got there first: it assigned or redefined the lazy global
  // (still a lazy one: an accessor whose getter is its setter), and its choice stands.
  internal.provide = (name, value) => {
    const current = primordials.getOwnPropertyDescriptor(globalThis, name);
    if (current === undefined || (current.get !== undefined && current.get === current.set)) internal.define(name, value);
  };
  lazy("url", ["URL", "URLSearchParams"]);
  lazy("cache", ["caches"]);
  lazy("blob", ["Blob", "File", "FormData"]);
  lazy("streams", [
    "ReadableStream", "ReadableStreamDefaultReader", "ReadableStreamDefaultController", "ByteLengthQueuingStrategy",
    "CountQueuingStrategy",
  ]);
  lazy("writable", [
    "WritableStream", "WritableStreamDefaultWriter", "WritableStreamDefaultController", "TransformStream",
    "TransformStreamDefaultController", "TextEncoderStream", "TextDecoderStream",
  ]);
  lazy("encoding", ["TextEncoder", "TextDecoder"]);
  lazy("console", ["console"]);
  lazy("extras", ["crypto", "structuredClone", "Event", "EventTarget", "AbortSignal", "AbortController"]);
  internal.describe = (value, depth) => internal.load("console").describe(value, depth);

  // ---------------------------------------------------------------------------------------------
  // Bytes.

  const isBufferSource = (value) => value instanceof ArrayBufferCtor || isView(value);

  // A fresh Uint8Array with a copy of the bytes of any BufferSource.
  function copyBytes(value) {
    if (value instanceof ArrayBufferCtor) return new Uint8ArrayCtor(call(ArrayBufferSlice, value, 0));
    return new Uint8ArrayCtor(call(ArrayBufferSlice, value.buffer, value.byteOffset, value.byteOffset + value.byteLength));
  }

  // A Uint8Array view of any BufferSource, without copying.
  function viewBytes(value) {
    if (value instanceof Uint8ArrayCtor) return value;
    if (value instanceof ArrayBufferCtor) return new Uint8ArrayCtor(value);
    return new Uint8ArrayCtor(value.buffer, value.byteOffset, value.byteLength);
  }

  function concatBytes(chunks) {
    let length = 0;
    for (let i = 0; i < chunks.length; i++) length += chunks[i].byteLength;
    const out = new Uint8ArrayCtor(length);
    let offset = 0;
    for (let i = 0; i < chunks.length; i++) {
      call(TypedArraySet, out, chunks[i], offset);
      offset += chunks[i].byteLength;
    }
    return out;
  }

  // UTF-8 of any string: lone surrogates become U+FFFD, as the Encoding Standard says.
  const encodeText = (text) => host.encodeUtf8(call(primordials.isWellFormed, text) ? text : call(primordials.toWellFormed, text));
  const decodeText = (bytes) => host.decodeUtf8(bytes, false, false);

  // A USVString, as WebIDL converts one: lone surrogates become U+FFFD.
  const usv = (value) => {
    const text = StringCtor(value);
    return call(primordials.isWellFormed, text) ? text : call(primordials.toWellFormed, text);
  };
  internal.usv = usv;

  // Whether a regular expression matches: through the exec taken at start, which reads no
  // property a changed RegExp.prototype could supply (test() and replace() both do).
  const matches = (regex, text) => call(RegExpExec, regex, text) !== null;
  internal.matches = matches;

  // A string without the HTTP whitespace (tab, LF, CR, space) at either end.
  function trimHttp(text) {
    let start = 0;
    let end = text.length;
    for (let c = text[start]; start < end && (c === " " || c === "\t" || c === "\n" || c === "\r"); c = text[++start]);
    for (let c = text[end - 1]; end > start && (c === " " || c === "\t" || c === "\n" || c === "\r"); c = text[--end - 1]);
    return start === 0 && end === text.length ? text : call(StringSlice, text, start, end);
  }
  internal.trimHttp = trimHttp;

  internal.isBufferSource = isBufferSource;
  internal.viewBytes = viewBytes;
  internal.copyBytes = copyBytes;
  internal.concatBytes = concatBytes;
  internal.encodeText = encodeText;
  internal.decodeText = decodeText;

  // ---------------------------------------------------------------------------------------------
  // Headers.

  const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
  // NUL, CR, LF, or a character no byte encodes (a header value is a ByteString).
  const FORBIDDEN_IN_VALUE = /[\0\r\n\u0100-\uffff]/;

  function normalizeName(name) {
    name = StringCtor(name);
    if (!matches(TOKEN, name)) throw new TypeError(`Headers: "${name}" is not a valid header name`);
    return call(StringToLowerCase, name);
  }

  function normalizeValue(value) {
    value = trimHttp(StringCtor(value));
    const found = call(RegExpExec, FORBIDDEN_IN_VALUE, value);
    if (found !== null) {
      if (found[0] > "\u00ff") throw new TypeError("Headers: a header value must be a ByteString (no character above U+00FF)");
      throw new TypeError("Headers: a header value must not contain NUL, CR or LF");
    }
    return value;
  }

  let headersList, headersFromTrustedPairs, headersSetGuard, headersGuarded, headersDefaultType;
  // Made on the first iteration: most instances never iterate headers.
  let headersIterators = null;
  const headersIterator = (pairs, kind) => (headersIterators ??= internal.load("shared").pairIterators("Headers Iterator"))(pairs, kind);

  class Headers {
    // A list of [lowercase name, value] pairs in insertion order.
    #list = [];
    #immutable = false;
    constructor(init = undefined) {
      if (init === undefined) return;
      if (init instanceof Headers) {
        const list = init.#list;
        for (let i = 0; i < list.length; i++) call(ArrayPush, this.#list, [list[i][0], list[i][1]]);
        return;
      }
      if (init === null || (typeof init !== "object" && typeof init !== "function")) {
        throw new TypeError("Headers: expected an object, an array of [name, value] pairs or Headers");
      }
      const iterate = init[primordials.SymbolIterator];
      if (iterate !== undefined) {
        if (typeof iterate !== "function") throw new TypeError("Headers: the init's Symbol.iterator is not a function");
        for (const pair of init) {
          if (pair === null || typeof pair !== "object") throw new TypeError("Headers: each header must be a [name, value] pair");
          const entry = [];
          for (const item of pair) call(ArrayPush, entry, item);
          if (entry.length !== 2) throw new TypeError("Headers: each header must be a [name, value] pair");
          this.append(entry[0], entry[1]);
        }
      } else {
        const keys = ObjectKeys(init);
        for (let i = 0; i < keys.length; i++) this.append(keys[i], init[keys[i]]);
      }
    }
    static {
      headersList = (headers) => headers.#list;
      headersFromTrustedPairs = (flat) => {
        const headers = new Headers();
        for (let i = 0; i < flat.length; i += 2) call(ArrayPush, headers.#list, [call(StringToLowerCase, flat[i]), flat[i + 1]]);
        return headers;
      };
      headersSetGuard = (headers) => { headers.#immutable = true; return headers; };
      headersGuarded = (headers) => headers.#immutable;
      // A body's content type, unless the headers have one: the name and value are the
      // platform's own, so they skip the checks.
      headersDefaultType = (headers, type) => {
        const list = headers.#list;
        for (let i = 0; i < list.length; i++) if (list[i][0] === "content-type") return;
        call(ArrayPush, list, ["content-type", type]);
      };
    }
    #check() {
      if (this.#immutable) throw new TypeError("Headers: these headers are immutable");
    }
    append(name, value) {
      name = normalizeName(name);
      value = normalizeValue(value);
      this.#check();
      call(ArrayPush, this.#list, [name, value]);
    }
    delete(name) {
      name = normalizeName(name);
      this.#check();
      const kept = [];
      for (let i = 0; i < this.#list.length; i++) if (this.#list[i][0] !== name) call(ArrayPush, kept, this.#list[i]);
      this.#list = kept;
    }
    get(name) {
      name = normalizeName(name);
      let result = null;
      for (let i = 0; i < this.#list.length; i++) {
        if (this.#list[i][0] === name) result = result === null ? this.#list[i][1] : `${result}, ${this.#list[i][1]}`;
      }
      return result;
    }
    getSetCookie() {
      const values = [];
      for (let i = 0; i < this.#list.length; i++) if (this.#list[i][0] === "set-cookie") call(ArrayPush, values, this.#list[i][1]);
      return values;
    }
    has(name) {
      name = normalizeName(name);
      for (let i = 0; i < this.#list.length; i++) if (this.#list[i][0] === name) return true;
      return false;
    }
    set(name, value) {
      name = normalizeName(name);
      value = normalizeValue(value);
      this.#check();
      const kept = [];
      let found = false;
      for (let i = 0; i < this.#list.length; i++) {
        if (this.#list[i][0] !== name) call(ArrayPush, kept, this.#list[i]);
        else if (!found) { found = true; call(ArrayPush, kept, [name, value]); }
      }
      if (!found) call(ArrayPush, kept, [name, value]);
      this.#list = kept;
    }
    // Sorted by name with the values of one name combined, except `set-cookie`, as the standard says.
    #sorted() {
      const names = [];
      const seen = { __proto__: null };
      for (let i = 0; i < this.#list.length; i++) {
        const name = this.#list[i][0];
        if (seen[name] !== true) { seen[name] = true; call(ArrayPush, names, name); }
      }
      call(ArraySort, names, (a, b) => (a < b ? -1 : a > b ? 1 : 0));
      const pairs = [];
      for (let i = 0; i < names.length; i++) {
        const name = names[i];
        if (name === "set-cookie") {
          const cookies = this.getSetCookie();
          for (let j = 0; j < cookies.length; j++) call(ArrayPush, pairs, [name, cookies[j]]);
        } else {
          call(ArrayPush, pairs, [name, this.get(name)]);
        }
      }
      return pairs;
    }
    entries() { return headersIterator(() => this.#sorted(), "entries"); }
    keys() { return headersIterator(() => this.#sorted(), "keys"); }
    values() { return headersIterator(() => this.#sorted(), "values"); }
    forEach(callback, thisArg = undefined) {
      if (typeof callback !== "function") throw new TypeError("Headers.forEach: the callback must be a function");
      const pairs = this.#sorted();
      for (let i = 0; i < pairs.length; i++) ReflectApply(callback, thisArg, [pairs[i][1], pairs[i][0], this]);
    }
    get [Symbol.toStringTag]() { return "Headers"; }
  }
  // `Headers.prototype[Symbol.iterator]` is its `entries`, not enumerable, as WebIDL defines it.
  defineProperty(Headers.prototype, primordials.SymbolIterator, {
    __proto__: null, value: Headers.prototype.entries, writable: true, configurable: true, enumerable: false,
  });

  // Headers as the host takes them: name, value, name, value, ...
  function flatHeaders(headers) {
    const list = headersList(headers);
    const flat = [];
    for (let i = 0; i < list.length; i++) call(ArrayPush, flat, list[i][0], list[i][1]);
    return flat;
  }

  // ---------------------------------------------------------------------------------------------
  // Bodies, shared by Request and Response.

  // Turns what a constructor was given into a body source and the content type it implies.
  function extractBody(body) {
    const extracted = (source, type) => ({ __proto__: null, source, type });
    if (body === undefined || body === null) return extracted(null, null);
    if (typeof body === "string") return extracted(body, "text/plain;charset=UTF-8");
    if (isBufferSource(body)) return extracted(copyBytes(body), null);
    if (internal.isSearchParams(body)) return extracted(body.toString(), "application/x-www-form-urlencoded;charset=UTF-8");
    if (internal.isStream(body)) {
      if (internal.streamIsLocked(body) || internal.streamIsDisturbed(body)) {
        throw new TypeError("the body stream is locked or has been read already");
      }
      return extracted(body, null);
    }
    if (internal.isBlob(body)) return extracted(internal.blobBytes(body), body.type === "" ? null : body.type);
    if (internal.isFormData(body)) return internal.serializeFormData(body);
    return extracted(StringCtor(body), "text/plain;charset=UTF-8");
  }

  let bodySource, bodyInit, bodyCloneSource, bodyIsUnusable, bodyTransfer;

  class Body {
    // null, a string, a Uint8Array or a ReadableStream. Once `body` is read, always the stream.
    #source = null;
    // Consumed without a stream ever made (text() of a string or bytes).
    #consumed = false;
    static {
      bodySource = (body) => body.#source;
      bodyInit = (body, source) => { body.#source = source; };
      bodyCloneSource = (body) => body.#cloneSource();
      bodyIsUnusable = (body) => body.#unusable();
      // A new Request made from one with a body takes that body: the old one reads as used.
      bodyTransfer = (body) => {
        if (body.#unusable()) throw new TypeError("Request: the input request's body has already been used");
        const source = body.#source;
        if (source === null) return null;
        if (!internal.isStream(source)) {
          body.#consumed = true;
          return source;
        }
        // The old request's stream is locked and read from here on; the new one reads through it.
        return internal.streamProxy(source);
      };
    }
    get body() {
      if (this.#source === null) return null;
      if (internal.isStream(this.#source)) return this.#source;
      const source = this.#source;
      // A copy: the bytes may be shared with a clone or a Blob.
      const stream = internal.load("streams").chunkStream(typeof source === "string" ? encodeText(source) : call(TypedArraySlice, source));
      // A body consumed already: its stream is read and locked, as the Fetch standard's is.
      if (this.#consumed) internal.streamConsume(stream);
      this.#source = stream;
      return stream;
    }
    get bodyUsed() {
      if (this.#source === null) return false;
      if (internal.isStream(this.#source)) return internal.streamIsDisturbed(this.#source);
      return this.#consumed;
    }
    #unusable() {
      if (this.#source === null) return false;
      if (internal.isStream(this.#source)) return internal.streamIsDisturbed(this.#source) || internal.streamIsLocked(this.#source);
      return this.#consumed;
    }
    // The body's bytes, as a record (never a bare object an app-made `then` could intercept).
    async #bytes() {
      if (this.#unusable()) throw new TypeError("Body has already been used; use clone() to read it twice");
      const source = this.#source;
      if (source === null) return { __proto__: null, bytes: new Uint8ArrayCtor(0) };
      if (!internal.isStream(source)) {
        this.#consumed = true;
        return { __proto__: null, bytes: typeof source === "string" ? encodeText(source) : call(TypedArraySlice, source) };
      }
      const chunks = [];
      await internal.consumeStream(source, (chunk) => { call(ArrayPush, chunks, typeof chunk === "string" ? encodeText(chunk) : call(TypedArraySlice, chunk)); });
      return { __proto__: null, bytes: concatBytes(chunks) };
    }
    async text() {
      if (typeof this.#source === "string" && !this.#unusable()) {
        this.#consumed = true;
        return this.#source;
      }
      return decodeText((await this.#bytes()).bytes);
    }
    async json() { return JSONParse(await this.text()); }
    async arrayBuffer() { return (await this.#bytes()).bytes.buffer; }
    async bytes() { return (await this.#bytes()).bytes; }
    async blob() {
      const { bytes } = await this.#bytes();
      return internal.load("blob").makeBlob(bytes, this.headers.get("content-type") ?? "");
    }
    async formData() {
      const contentType = this.headers.get("content-type") ?? "";
      const { bytes } = await this.#bytes();
      return internal.load("blob").parseFormData(bytes, contentType);
    }
    // A second, independent copy of this body's source, for clone().
    #cloneSource() {
      if (this.#unusable()) throw new TypeError("clone(): the body has already been used");
      if (internal.isStream(this.#source)) {
        const branches = internal.streamTee(this.#source);
        this.#source = branches[0];
        return branches[1];
      }
      return this.#source;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Request.

  let requestSignal, requestFields;

  // Passed as `input` by the engine to build the incoming request; app code cannot name it.
  const INCOMING = Symbol("incoming request");

  // A dictionary argument: undefined and null are empty, anything else must be an object.
  function dictionary(value, what) {
    if (value === undefined || value === null) return { __proto__: null };
    if (typeof value !== "object" && typeof value !== "function") throw new TypeError(`${what}: the options must be an object`);
    return value;
  }

  class Request extends Body {
    #method; #url; #headers; #signal;
    #options;
    #rawHeaders = null;
    constructor(input, init = undefined) {
      super();
      if (input === INCOMING) {
        // Trusted values from the host; the headers are built on first use.
        this.#method = init[0];
        this.#url = init[1];
        this.#headers = null;
        this.#rawHeaders = init[2];
        this.#options = INCOMING_OPTIONS;
        this.#signal = null;
        bodyInit(this, init[3]);
        return;
      }
      // What an app-made Request takes from its input and init: in a part of its own, so a
      // warm instance that only answers requests never holds that code.
      const made = internal.load("request").requestInit(input, init, requestFields);
      this.#method = made.method;
      this.#url = made.url;
      this.#headers = made.headers;
      this.#signal = made.signal;
      this.#options = made.options;
      bodyInit(this, made.source);
    }
    static {
      // A Request input's fields, for the request part.
      requestFields = (request) => record({
        method: request.#method, url: request.#url, headers: request.headers, signal: request.#signal,
        options: request.#options, hasBody: bodySource(request) !== null,
      });
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
    get redirect() { return this.#options.redirect; }
    get mode() { return this.#options.mode; }
    get credentials() { return this.#options.credentials; }
    get cache() { return this.#options.cache; }
    get integrity() { return this.#options.integrity; }
    get keepalive() { return this.#options.keepalive; }
    get referrer() { return this.#options.referrer; }
    get referrerPolicy() { return this.#options.referrerPolicy; }
    get destination() { return ""; }
    // Always a signal, as the standard says; made on first use (it loads AbortSignal's part).
    get signal() {
      if (this.#signal === null) this.#signal = new (internal.load("extras").AbortSignal)();
      return this.#signal;
    }
    static {
      requestSignal = (request) => request.#signal;
    }
    clone() {
      if (bodyIsUnusable(this)) throw new TypeError("clone(): the body has already been used");
      const copy = new Request(INCOMING, [this.#method, this.#url, [], null]);
      copy.#headers = new Headers(this.headers);
      copy.#options = this.#options;
      copy.#signal = this.#signal;
      bodyInit(copy, bodyCloneSource(this));
      return copy;
    }
    get [Symbol.toStringTag]() { return "Request"; }
  }
  // The incoming request's RequestInit members (an app-made one's come from the request part).
  const INCOMING_OPTIONS = freeze({
    __proto__: null, mode: "same-origin", credentials: "same-origin", cache: "default", redirect: "manual",
    referrerPolicy: "", priority: "auto", integrity: "", keepalive: false, referrer: "about:client",
  });

  // ---------------------------------------------------------------------------------------------
  // Response.

  const NULL_BODY_STATUSES = [101, 103, 204, 205, 304];
  const REDIRECT_STATUSES = [301, 302, 303, 307, 308];
  const REASON_PHRASE = /^[\t\x20-\x7e\x80-\xff]*$/;

  class Response extends Body {
    #status; #statusText; #headers; #url = ""; #type = "default"; #redirected = false;
    constructor(body = null, init = undefined) {
      super();
      init = dictionary(init, "Response");
      const status = init.status === undefined ? 200 : Number(init.status);
      if (!Number.isInteger(status) || status < 200 || status > 599) {
        throw new RangeError(`Response: status ${init.status} is not in the range 200 to 599`);
      }
      this.#status = status;
      this.#statusText = init.statusText === undefined ? "" : StringCtor(init.statusText);
      if (this.#statusText !== "" && !matches(REASON_PHRASE, this.#statusText)) {
        throw new TypeError("Response: the statusText must be a reason phrase (no CR, LF or characters above U+00FF)");
      }
      this.#headers = new Headers(init.headers);
      const extracted = extractBody(body);
      if (extracted.source !== null && call(primordials.ArrayIndexOf, NULL_BODY_STATUSES, status) >= 0) {
        throw new TypeError(`Response: a response with status ${status} cannot have a body`);
      }
      if (extracted.type !== null) headersDefaultType(this.#headers, extracted.type);
      bodyInit(this, extracted.source);
    }
    static json(data, init = undefined) {
      init = dictionary(init, "Response.json");
      const text = JSONStringify(data);
      if (text === undefined) throw new TypeError("Response.json: the value cannot be serialised as JSON");
      if (init.status !== undefined && call(primordials.ArrayIndexOf, NULL_BODY_STATUSES, Number(init.status)) >= 0) {
        throw new TypeError(`Response.json: a response with status ${init.status} cannot have a body`);
      }
      const response = new Response(null, init);
      bodyInit(response, text);
      headersDefaultType(response.#headers, "application/json");
      return response;
    }
    static redirect(url, status = 302) {
      status = Number(status);
      if (call(primordials.ArrayIndexOf, REDIRECT_STATUSES, status) < 0) {
        throw new RangeError(`Response.redirect: ${status} is not a redirect status (301, 302, 303, 307 or 308)`);
      }
      const location = new (internal.load("url").URL)(StringCtor(url)).href;
      const response = new Response(null, { __proto__: null, status, headers: [["location", location]] });
      headersSetGuard(response.#headers);
      return response;
    }
    static error() {
      const response = new Response(null, { __proto__: null, status: 200 });
      response.#status = 0;
      response.#type = "error";
      headersSetGuard(response.#headers);
      return response;
    }
    static {
      // A Response's own status, type and headers, or null for anything that is not one (a
      // brand check: a Symbol.hasInstance app code put on Response cannot fool it).
      Response.parts = (value) => (value !== null && typeof value === "object" && #status in value
        ? { __proto__: null, status: value.#status, type: value.#type, headers: value.#headers }
        : null);
      Response.fromHost = (status, flatHeaders, url, bytes, redirected) => {
        const response = new Response(null, { __proto__: null, status: 200 });
        response.#status = status;
        response.#headers = headersSetGuard(headersFromTrustedPairs(flatHeaders));
        response.#url = url;
        response.#type = "basic";
        response.#redirected = redirected;
        bodyInit(response, call(primordials.ArrayIndexOf, NULL_BODY_STATUSES, status) >= 0 ? null : bytes);
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
      if (bodyIsUnusable(this)) throw new TypeError("clone(): the body has already been used");
      const copy = new Response(null, { __proto__: null, status: 200 });
      copy.#status = this.#status;
      copy.#statusText = this.#statusText;
      copy.#headers = new Headers(this.#headers);
      if (headersGuarded(this.#headers)) headersSetGuard(copy.#headers);
      copy.#url = this.#url;
      copy.#type = this.#type;
      copy.#redirected = this.#redirected;
      bodyInit(copy, bodyCloneSource(this));
      return copy;
    }
    get [Symbol.toStringTag]() { return "Response"; }
  }
  const responseFromHost = Response.fromHost;
  const responseParts = Response.parts;
  delete Response.parts;
  delete Response.fromHost;
  internal.responseFromHost = responseFromHost;
  internal.headersList = headersList;
  internal.Request = Request;
  internal.Headers = Headers;
  internal.headersDefaultType = headersDefaultType;
  internal.extractBody = extractBody;
  internal.bodyTransfer = bodyTransfer;
  internal.dictionary = dictionary;
  internal.TOKEN = TOKEN;
  internal.Response = Response;

  // ---------------------------------------------------------------------------------------------
  // Operations the host completes later: outbound fetch and timers.

  let pendingFetches = { __proto__: null };
  let activeTimers = { __proto__: null };
  let nextTimerId = 1;

  // Not an async function: one returning the pending promise would resolve with it, which calls
  // that promise's (replaceable) `then`.
  function fetch(input, init = undefined) {
    const { promise, resolve, reject } = PromiseWithResolvers();
    internal.load("shared").react(send(input, init, resolve, reject), undefined, reject);
    return promise;
  }

  async function send(input, init, resolve, reject) {
    const request = new Request(input, init);
    const scheme = new (internal.load("url").URL)(request.url).protocol;
    if (scheme !== "http:" && scheme !== "https:") throw new TypeError(`fetch: the scheme "${scheme}" is not supported`);
    let body;
    const source = bodySource(request);
    if (source !== null) body = new Uint8ArrayCtor(await request.arrayBuffer());
    const flat = flatHeaders(request.headers);
    const signal = requestSignal(request);
    if (internal.isAbortSignal(signal)) signal.throwIfAborted();
    const id = body === undefined ? host.fetch(request.method, request.url, flat) : host.fetch(request.method, request.url, flat, body);
    const entry = { __proto__: null, resolve, reject, forget: null };
    pendingFetches[id] = entry;
    // An abort rejects the app's promise at once; the host's answer, when it comes, is ignored.
    // Only this fetch's own entry (ids start again each request), and the listener goes when
    // the fetch settles, so a long-lived signal does not collect them.
    if (internal.isAbortSignal(signal)) {
      const onAbort = () => {
        if (pendingFetches[id] !== entry) return;
        delete pendingFetches[id];
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      entry.forget = () => signal.removeEventListener("abort", onAbort);
    }
  }

  function setTimer(callback, delay, args, repeat) {
    if (typeof callback !== "function") throw new TypeError("setTimeout: the callback must be a function");
    const id = nextTimerId++;
    const ms = Math.max(0, Number(delay) || 0);
    activeTimers[id] = { callback, args, repeat, ms };
    host.timer(id, ms);
    return id;
  }

  // ---------------------------------------------------------------------------------------------
  // Globals.

  internal.define("Headers", Headers);
  internal.define("Request", Request);
  internal.define("Response", Response);
  internal.define("fetch", fetch);
  internal.define("setTimeout", (callback, delay, ...args) => setTimer(callback, delay, args, false));
  internal.define("setInterval", (callback, delay, ...args) => setTimer(callback, delay, args, true));
  internal.define("clearTimeout", (id) => { delete activeTimers[id]; });
  internal.define("clearInterval", (id) => { delete activeTimers[id]; });
  internal.define("navigator", { userAgent: "Terrarium" });
  internal.define("self", globalThis);

  // ---------------------------------------------------------------------------------------------
  // The engine's entry points.

  function describeReturn(value) {
    if (value === undefined) return "undefined (did the handler forget to return a Response?)";
    if (value === null) return "null";
    if (typeof value === "object") return `an object (${call(StringSlice, internal.describe(value, 1), 0, 200)})`;
    return `${typeof value} ${call(StringSlice, internal.describe(value, 1), 0, 200)}`;
  }

  // Which request the instance serves now: an earlier request's invoke that resumes later (its
  // handler or a waitUntil promise settled by this request's code) must never answer for it.
  let serving = 0;

  // Runs one request through the app's handler and reports the outcome to the host.
  // env.USER is the platform's: it wins over a var of the same name, and is null when anonymous
  // (defined by the literal, never assigned: an accessor app code put on Object.prototype cannot
  // see it). Anonymous requests share one env, as every request of a Workers isolate does.
  let anonymousEnv = null;
  let anonymousBase = null;
  function envFor(baseEnv, user) {
    if (user === null && baseEnv === anonymousBase) return anonymousEnv;
    if (user !== null) {
      freeze(user.groups);
      freeze(user);
    }
    const env = { __proto__: null, ...baseEnv, USER: user };
    primordials.setPrototypeOf(env, ObjectPrototype);
    freeze(env);
    if (user === null) {
      anonymousBase = baseEnv;
      anonymousEnv = env;
    }
    return env;
  }

  async function invoke(handler, method, url, rawHeaders, body, baseEnv, user) {
    const generation = ++serving;
    const current = () => generation === serving;
    // A reused instance starts clean: nothing an earlier request left pending can fire now.
    pendingFetches = { __proto__: null };
    activeTimers = { __proto__: null };
    for (let i = 0; i < internal.resets.length; i++) internal.resets[i]();
    const waits = [];
    const ctx = {
      waitUntil(promise) {
        call(ArrayPush, waits, internal.load("shared").then(promise, undefined, (error) => {
          if (current()) host.log(LOG_ERROR, "ctx.waitUntil promise rejected: " + internal.describe(error));
        }));
      },
      passThroughOnException() {},
    };
    try {
      const request = new Request(INCOMING, [method, url, rawHeaders, body]);
      const env = envFor(baseEnv, user);
      const response = await handler.fetch(request, env, ctx);
      if (!current()) return;
      // Read through the Response's own fields, never its (redefinable) getters or instanceof.
      const parts = responseParts(response);
      if (parts === null) {
        host.badReturn(describeReturn(response));
      } else if (parts.type === "error") {
        host.badReturn("Response.error()");
      } else {
        const flat = flatHeaders(parts.headers);
        const used = bodyIsUnusable(response);
        const source = used ? undefined : bodySource(response);
        if (internal.isStream(source)) {
          await internal.consumeStream(source, (chunk) => {
            if (!current()) return false;
            // false: over the response cap; the stream is cancelled.
            return host.chunk(typeof chunk === "string" ? encodeText(chunk) : chunk);
          });
          if (current()) host.respond(parts.status, flat, undefined);
        } else if (used) {
          throw new TypeError("the Response's body has already been read (or its stream is locked to a reader)");
        } else {
          // A string with a lone surrogate is sent as UTF-8 with U+FFFD, as the standard encodes it.
          const wellFormed = typeof source !== "string" || call(primordials.isWellFormed, source);
          host.respond(parts.status, flat, wellFormed ? source : encodeText(source));
        }
      }
    } catch (error) {
      if (current()) host.fail(error);
    }
    // Native promises awaited one by one.
    for (let i = 0; i < waits.length; i++) await waits[i];
    if (current()) host.finished();
  }

  // Completes a pending outbound fetch: `ok` with [status, flat headers, url, bytes, redirected], or a message.
  function settleFetch(id, ok, value) {
    const pending = pendingFetches[id];
    if (pending === undefined) return;
    delete pendingFetches[id];
    if (pending.forget !== null) pending.forget();
    if (ok) pending.resolve(responseFromHost(value[0], value[1], value[2], value[3], value[4]));
    else pending.reject(new TypeError(value));
  }

  function fireTimer(id) {
    const timer = activeTimers[id];
    if (timer === undefined) return;
    if (timer.repeat) host.timer(id, timer.ms);
    else delete activeTimers[id];
    ReflectApply(timer.callback, undefined, timer.args);
  }

  // The bindings' parts load when the app has the binding (the engine makes it at start), and
  // add their settle functions here.
  internal.entryPoints = {
    __proto__: null,
    invoke,
    settleFetch,
    fireTimer,
    makeKv: () => internal.load("kv").makeKv(),
    makeD1: () => internal.load("d1").makeD1(),
    makeAi: () => internal.load("ai").makeAi(),
    makeVectorize: () => internal.load("vectorize").makeVectorize(),
  };
  return internal.entryPoints;
}
