// The core of the prelude: Headers, Request, Response, fetch, timers and the engine's entry points,
// plus lazy globals that evaluate the other parts (URL, streams, console, …) on first use.
//
// Compiled to bytecode once per process and evaluated in every instance before the app's modules.
// `install(host)` defines the globals and returns the functions the engine calls; `host` and
// `internal` never become visible to app code.

export default function install(host) {
  const LOG_ERROR = 3;

  // Built-ins the prelude relies on, taken before app code runs and can replace them.
  const { defineProperty, freeze, assign } = Object;

  // Shared between the parts of the prelude. A part's checks stay false until it is loaded:
  // no URL can exist before the URL part defines the class. It has no prototype, so app code
  // that changes Object.prototype cannot observe it.
  const internal = { __proto__: null,
    isSearchParams: () => false,
    isFormData: () => false,
    isURL: () => false,
    isStream: () => false,
    isAbortSignal: () => false,
    define(name, value) {
      defineProperty(globalThis, name, { __proto__: null, value, writable: true, configurable: true, enumerable: false });
    },
  };

  // Evaluates a part of the prelude once and returns `internal`, which the part extended.
  const loaded = new Set();
  internal.load = (part) => {
    if (!loaded.has(part)) {
      loaded.add(part);
      host.loadPart(part)(host, internal);
    }
    return internal;
  };

  // Globals that load their part when first read; assigning one first simply replaces it.
  const lazy = (part, names) => {
    for (const name of names) {
      defineProperty(globalThis, name, {
        __proto__: null,
        configurable: true,
        enumerable: false,
        get() {
          internal.load(part);
          return globalThis[name];
        },
        set(value) {
          internal.define(name, value);
        },
      });
    }
  };
  lazy("url", ["URL", "URLSearchParams", "FormData"]);
  lazy("streams", ["ReadableStream", "ReadableStreamDefaultReader"]);
  lazy("encoding", ["TextEncoder", "TextDecoder"]);
  lazy("console", ["console"]);
  lazy("extras", ["crypto", "structuredClone", "Event", "EventTarget", "AbortSignal", "AbortController"]);
  internal.describe = (value, depth) => internal.load("console").describe(value, depth);

  // ---------------------------------------------------------------------------------------------
  // Bytes.

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

  internal.isBufferSource = isBufferSource;
  internal.viewBytes = viewBytes;

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
  // Bodies, shared by Request and Response.

  // Turns what a constructor was given into a body source and the content type it implies.
  function extractBody(body) {
    if (body === undefined || body === null) return [null, null];
    if (typeof body === "string") return [body, "text/plain;charset=UTF-8"];
    if (isBufferSource(body)) return [copyBytes(body), null];
    if (internal.isSearchParams(body)) return [body.toString(), "application/x-www-form-urlencoded;charset=UTF-8"];
    if (internal.isStream(body)) return [body, null];
    if (internal.isFormData(body)) {
      throw new TypeError("FormData bodies are not supported yet; send a URLSearchParams or JSON instead");
    }
    return [String(body), "text/plain;charset=UTF-8"];
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
      if (internal.isStream(this.#source)) return this.#source;
      if (this.#stream === null) {
        const source = this.#source;
        const { ReadableStream } = internal.load("streams");
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
      return this.#used || (internal.isStream(this.#source) && internal.streamIsDisturbed(this.#source));
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
      await internal.readAllChunks(source, (chunk) => { chunks.push(typeof chunk === "string" ? host.encodeUtf8(chunk) : chunk.slice()); });
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
      const { FormData, URLSearchParams } = internal.load("url");
      const form = new FormData();
      for (const [name, value] of new URLSearchParams(await this.text())) form.append(name, value);
      return form;
    }
    // A second, independent copy of this body's source, for clone().
    #cloneSource() {
      if (this.bodyUsed) throw new TypeError("clone(): the body has already been used");
      if (internal.isStream(this.#source)) {
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
        this.#url = new (internal.load("url").URL)(String(input)).href;
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
      const location = new (internal.load("url").URL)(String(url)).href;
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
    const scheme = new (internal.load("url").URL)(request.url).protocol;
    if (scheme !== "http:" && scheme !== "https:") throw new TypeError(`fetch: the scheme "${scheme}" is not supported`);
    let body;
    const source = bodySource(request);
    if (source !== null) body = new Uint8Array(await request.arrayBuffer());
    const flat = [];
    for (const [name, value] of headersList(request.headers)) flat.push(name, value);
    const signal = request.signal;
    if (internal.isAbortSignal(signal)) signal.throwIfAborted();
    const id = body === undefined ? host.fetch(request.method, request.url, flat) : host.fetch(request.method, request.url, flat, body);
    const { promise, resolve, reject } = Promise.withResolvers();
    pendingFetches.set(id, { resolve, reject });
    // An abort rejects the app's promise at once; the host's answer, when it comes, is ignored.
    if (internal.isAbortSignal(signal)) {
      signal.addEventListener("abort", () => {
        if (pendingFetches.delete(id)) reject(signal.reason);
      }, { once: true });
    }
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
  // KV: the Workers KV API over the host's key-value namespace of this app, plus increment()
  // and compare-and-set (put with onlyIf).

  const pendingKv = new Map();

  function kvCall(op, key, options, value) {
    const json = JSON.stringify(options ?? {});
    const id = value === undefined ? host.kv(op, key, json) : host.kv(op, key, json, value);
    const { promise, resolve, reject } = Promise.withResolvers();
    pendingKv.set(id, { resolve, reject });
    return promise;
  }

  function kvKey(key, what) {
    if (key === undefined || key === null) throw new TypeError(`KV ${what} failed: a key is required`);
    return String(key);
  }

  function kvType(options, what) {
    const type = typeof options === "string" ? options : (options?.type ?? "text");
    if (!["text", "json", "arrayBuffer", "stream"].includes(type)) {
      throw new TypeError(`KV ${what} failed: Unknown response type "${type}"; use "text", "json", "arrayBuffer" or "stream"`);
    }
    return type;
  }

  function kvDecode(bytes, type) {
    if (type === "arrayBuffer") return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    if (type === "stream") return new Response(bytes).body;
    const text = host.decodeUtf8(bytes, false, false);
    return type === "json" ? JSON.parse(text) : text;
  }

  async function kvBytes(value) {
    if (typeof value === "string") return host.encodeUtf8(value);
    if (value instanceof ArrayBuffer) return new Uint8Array(value.slice(0));
    if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
    if (internal.isStream(value)) return new Uint8Array(await new Response(value).arrayBuffer());
    throw new TypeError("KV put() accepts only strings, ArrayBuffers, ArrayBufferViews, and ReadableStreams as values.");
  }

  class KVNamespace {
    async get(key, options) {
      const type = kvType(options, "GET");
      const answer = await kvCall("get", kvKey(key, "GET"));
      return answer.json === null ? null : kvDecode(answer.bytes, type);
    }

    async getWithMetadata(key, options) {
      const type = kvType(options, "GET");
      const answer = await kvCall("get", kvKey(key, "GET"));
      if (answer.json === null) return { value: null, metadata: null, cacheStatus: null };
      return { value: kvDecode(answer.bytes, type), metadata: answer.json.metadata ?? null, cacheStatus: null, etag: answer.json.etag };
    }

    async put(key, value, options = {}) {
      const name = kvKey(key, "PUT");
      const bytes = await kvBytes(value);
      const sent = {};
      if (options.expiration !== undefined) sent.expiration = Number(options.expiration);
      if (options.expirationTtl !== undefined) sent.expirationTtl = Number(options.expirationTtl);
      if (options.metadata !== undefined && options.metadata !== null) sent.metadata = JSON.stringify(options.metadata);
      if (options.onlyIf !== undefined) sent.onlyIf = options.onlyIf;
      const answer = await kvCall("put", name, sent, bytes);
      // Workers' put answers nothing; with onlyIf, the new etag, or null when the condition failed.
      return options.onlyIf === undefined ? undefined : answer.json.etag;
    }

    async delete(key) {
      await kvCall("delete", kvKey(key, "DELETE"));
    }

    async list(options = {}) {
      const sent = {};
      if (options.prefix !== undefined && options.prefix !== null) sent.prefix = String(options.prefix);
      if (options.limit !== undefined) sent.limit = Number(options.limit);
      if (options.cursor !== undefined && options.cursor !== null && options.cursor !== "") sent.cursor = String(options.cursor);
      const answer = await kvCall("list", "", sent);
      const listed = { keys: answer.json.keys, list_complete: answer.json.cursor === null, cacheStatus: null };
      if (answer.json.cursor !== null) listed.cursor = answer.json.cursor;
      return listed;
    }

    // Beside the Workers API: an atomic counter.
    async increment(key, by = 1) {
      const answer = await kvCall("increment", kvKey(key, "INCREMENT"), { by: Number(by) });
      return answer.json.count;
    }
  }

  function makeKv() {
    return freeze(new KVNamespace());
  }

  // Completes a KV operation: `ok` with the answer's JSON and the value's bytes, or a message and
  // whether it is a TypeError (the app's mistake) or an Error (the platform's).
  function settleKv(id, ok, json, extra) {
    const pending = pendingKv.get(id);
    if (pending === undefined) return;
    pendingKv.delete(id);
    if (ok) pending.resolve({ json: JSON.parse(json), bytes: extra });
    else pending.reject(extra ? new TypeError(json) : new Error(json));
  }

  // ---------------------------------------------------------------------------------------------
  // Cache: the Workers Cache API (caches.default, caches.open) over the host's store for this
  // app. The host builds every key from the app and the URL; app code names only URLs.

  const pendingCache = new Map();

  function cacheCall(call, body) {
    const json = JSON.stringify(call);
    const id = body === undefined ? host.cache(json) : host.cache(json, body);
    const { promise, resolve, reject } = Promise.withResolvers();
    pendingCache.set(id, { resolve, reject });
    return promise;
  }

  function cacheRequest(request) {
    return request instanceof Request ? request : new Request(request);
  }

  const cacheNames = new WeakMap();

  class Cache {
    async match(request, options = undefined) {
      const asked = cacheRequest(request);
      if (asked.method !== "GET" && !options?.ignoreMethod) return undefined;
      const call = { op: "match", cache: cacheNames.get(this), url: asked.url };
      const condition = asked.headers.get("if-none-match");
      if (condition !== null) call.ifNoneMatch = condition;
      const answer = await cacheCall(call);
      if (answer.json === null) return undefined;
      return responseFromHost(answer.json.status, answer.json.headers, asked.url, answer.bytes, false);
    }

    async put(request, response) {
      const asked = cacheRequest(request);
      if (asked.method !== "GET") throw new TypeError("Cannot cache response to non-GET request.");
      if (!(response instanceof Response)) throw new TypeError("Cache.put(): the response must be a Response.");
      if (response.status === 206) throw new TypeError("Cannot cache response to a range request (206 Partial Content).");
      const vary = response.headers.get("vary");
      if (vary !== null && vary.split(",").some((field) => field.trim() === "*")) {
        throw new TypeError("Cannot cache response with 'Vary: *' header.");
      }
      if (response.bodyUsed) throw new TypeError("Cache.put(): the response's body has already been used.");
      const body = new Uint8Array(await response.arrayBuffer());
      const headers = [];
      for (const [name, value] of headersList(response.headers)) headers.push([name, value]);
      await cacheCall({ op: "put", cache: cacheNames.get(this), url: asked.url, status: response.status, headers }, body);
      return undefined;
    }

    async delete(request, options = undefined) {
      const asked = cacheRequest(request);
      if (asked.method !== "GET" && !options?.ignoreMethod) return false;
      const answer = await cacheCall({ op: "delete", cache: cacheNames.get(this), url: asked.url });
      return answer.json === true;
    }
  }

  function makeCache(name) {
    const cache = new Cache();
    cacheNames.set(cache, name);
    return freeze(cache);
  }

  const defaultCache = makeCache("default");

  class CacheStorage {
    get default() { return defaultCache; }
    async open(name) { return makeCache(`named:${String(name)}`); }
  }

  // Completes a Cache API call: `ok` with the answer's JSON and a found body's bytes, or a message.
  function settleCache(id, ok, json, bytes) {
    const pending = pendingCache.get(id);
    if (pending === undefined) return;
    pendingCache.delete(id);
    if (ok) pending.resolve({ json: JSON.parse(json), bytes });
    else pending.reject(new Error(json));
  }

  // ---------------------------------------------------------------------------------------------
  // D1: the Workers D1 API over the host's SQL database of this app. Every call is one
  // transaction on the host; first(), all(), run() and raw() shape the same answer.

  const pendingSql = new Map();

  function sqlCall(call) {
    const id = host.sql(JSON.stringify(call));
    const { promise, resolve, reject } = Promise.withResolvers();
    pendingSql.set(id, { resolve, reject });
    return promise;
  }

  function d1Error(message) {
    const cause = message.startsWith("D1_ERROR: ") ? message.slice("D1_ERROR: ".length) : message;
    return new Error(message, { cause: new Error(cause) });
  }

  // A bound value as D1 takes it: null, numbers, strings, booleans (as 1 and 0), ArrayBuffers
  // and views (as BLOBs); anything else is D1_TYPE_ERROR, thrown by bind() as in Workers.
  function d1Value(value) {
    if (value === null) return null;
    switch (typeof value) {
      case "string":
        return value;
      case "number":
        if (Number.isFinite(value)) return value;
        break;
      case "boolean":
        return value ? 1 : 0;
      case "object":
        if (value instanceof ArrayBuffer) return { blob: Array.from(new Uint8Array(value)) };
        if (ArrayBuffer.isView(value)) {
          return { blob: Array.from(new Uint8Array(value.buffer, value.byteOffset, value.byteLength)) };
        }
        // As on D1, an array of bytes binds as a BLOB (the shape D1 answers BLOBs in).
        if (Array.isArray(value) && value.every((byte) => Number.isInteger(byte) && byte >= 0 && byte <= 255)) {
          return { blob: value.slice() };
        }
        break;
    }
    throw new Error(`D1_TYPE_ERROR: Type '${typeof value}' not supported for value '${String(value)}'`);
  }

  function d1Result(result) {
    const results = result.rows.map((row) => {
      const object = {};
      result.columns.forEach((column, index) => { object[column] = row[index]; });
      return object;
    });
    return { success: true, meta: assign({ served_by: "terrarium" }, result.meta), results };
  }

  // Each prepared statement's SQL and parameters, as the host takes them; not the app's to see.
  const statements = new WeakMap();

  class D1PreparedStatement {
    constructor(sql, params) {
      statements.set(this, { sql, params });
    }

    bind(...values) {
      return new D1PreparedStatement(statements.get(this).sql, values.map(d1Value));
    }

    async #run() {
      const [result] = await sqlCall({ batch: [statements.get(this)] });
      return result;
    }

    async first(column) {
      const result = d1Result(await this.#run());
      const row = result.results[0];
      if (column === undefined) return row ?? null;
      if (row === undefined) return null;
      if (!Object.prototype.hasOwnProperty.call(row, column)) {
        throw new Error(`D1_COLUMN_NOTFOUND: Column not found (${column})`);
      }
      return row[column];
    }

    async all() {
      return d1Result(await this.#run());
    }

    async run() {
      return d1Result(await this.#run());
    }

    async raw(options = {}) {
      const result = await this.#run();
      return options?.columnNames ? [result.columns, ...result.rows] : result.rows;
    }
  }

  class D1Database {
    prepare(sql) {
      if (typeof sql !== "string") throw new TypeError("D1: prepare() takes the SQL as a string");
      return new D1PreparedStatement(sql, []);
    }

    async batch(list) {
      if (!Array.isArray(list) || !list.every((statement) => statement instanceof D1PreparedStatement)) {
        throw new TypeError("D1: batch() takes an array of statements made by prepare()");
      }
      if (list.length === 0) throw new Error("D1_ERROR: No SQL statements detected.");
      const results = await sqlCall({ batch: list.map((statement) => statements.get(statement)) });
      return results.map(d1Result);
    }

    async exec(sql) {
      if (typeof sql !== "string") throw new TypeError("D1: exec() takes the SQL as a string");
      return await sqlCall({ exec: sql });
    }

    async dump() {
      throw new Error("D1_DUMP_ERROR: dump() is not available; the app's owner can run terrarium data export --sql");
    }

    // The Sessions API: reads here always see the latest write, so a session is the database.
    withSession() {
      const database = this;
      return freeze({
        prepare: (sql) => database.prepare(sql),
        batch: (statements) => database.batch(statements),
        getBookmark: () => null,
      });
    }
  }

  function makeD1() {
    return freeze(new D1Database());
  }

  // Completes a D1 call: `ok` with the answer's JSON, or D1's error message.
  function settleSql(id, ok, json) {
    const pending = pendingSql.get(id);
    if (pending === undefined) return;
    pendingSql.delete(id);
    if (ok) pending.resolve(JSON.parse(json));
    else pending.reject(d1Error(json));
  }

  // ---------------------------------------------------------------------------------------------
  // Globals.

  internal.isHeaders = (value) => value instanceof Headers;
  internal.isRequest = (value) => value instanceof Request;
  internal.isResponse = (value) => value instanceof Response;
  internal.define("Headers", Headers);
  internal.define("Request", Request);
  internal.define("Response", Response);
  internal.define("fetch", fetch);
  internal.define("caches", freeze(new CacheStorage()));
  internal.define("setTimeout", (callback, delay, ...args) => setTimer(callback, delay, args, false));
  internal.define("setInterval", (callback, delay, ...args) => setTimer(callback, delay, args, true));
  internal.define("clearTimeout", (id) => { activeTimers.delete(id); });
  internal.define("clearInterval", (id) => { activeTimers.delete(id); });
  internal.define("navigator", { userAgent: "Terrarium" });
  internal.define("self", globalThis);

  // ---------------------------------------------------------------------------------------------
  // The engine's entry points.

  function describeReturn(value) {
    if (value === undefined) return "undefined (did the handler forget to return a Response?)";
    if (value === null) return "null";
    if (typeof value === "object") return `an object (${internal.describe(value, 1).slice(0, 200)})`;
    return `${typeof value} ${internal.describe(value, 1).slice(0, 200)}`;
  }

  // Runs one request through the app's handler and reports the outcome to the host.
  async function invoke(handler, method, url, flatHeaders, body, baseEnv, user) {
    // A reused instance starts clean: nothing an earlier request left pending can fire now.
    pendingFetches.clear();
    pendingKv.clear();
    pendingSql.clear();
    activeTimers.clear();
    const waits = [];
    const ctx = {
      waitUntil(promise) {
        waits.push(Promise.resolve(promise).catch((error) => host.log(LOG_ERROR, "ctx.waitUntil promise rejected: " + internal.describe(error))));
      },
      passThroughOnException() {},
    };
    try {
      const request = new Request(INCOMING, [method, url, flatHeaders, body]);
      // env.USER is the platform's: it wins over a var of the same name, and is null when anonymous.
      if (user !== null) {
        freeze(user.groups);
        freeze(user);
      }
      const env = freeze(assign({}, baseEnv, { USER: user }));
      const response = await handler.fetch(request, env, ctx);
      if (!(response instanceof Response)) {
        host.badReturn(describeReturn(response));
      } else if (response.type === "error") {
        host.badReturn("Response.error()");
      } else {
        const flat = [];
        for (const [name, value] of headersList(response.headers)) flat.push(name, value);
        const source = response.bodyUsed ? undefined : bodySource(response);
        if (internal.isStream(source)) {
          await internal.readAllChunks(source, (chunk) => host.chunk(chunk));
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

  return { invoke, settleFetch, settleKv, makeKv, settleSql, makeD1, settleCache, fireTimer };
}
