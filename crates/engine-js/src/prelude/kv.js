// KV: the Workers KV API over the host's key-value namespace of this app, plus increment()
// and compare-and-set (put with onlyIf).
//
// A part of the prelude: compiled to bytecode once per process and evaluated in an instance only
// when the app has the binding (or touches the global), so apps without it never pay for it.

export default function install(host, internal) {
  const {
    call, PromiseWithResolvers, JSONParse, JSONStringify, ArrayIndexOf, ArrayPush,
    ArrayBufferSlice, StringCtor, Uint8ArrayCtor, ArrayBufferCtor, isView, freeze,
  } = internal.primordials;
  const { record } = internal;
  const { Response } = internal;

  // ---------------------------------------------------------------------------------------------
  // KV: the Workers KV API over the host's key-value namespace of this app, plus increment()
  // and compare-and-set (put with onlyIf).

  let pendingKv = { __proto__: null };

  function kvCall(op, key, options, value) {
    const json = JSONStringify(options ?? {});
    const id = value === undefined ? host.kv(op, key, json) : host.kv(op, key, json, value);
    const { promise, resolve, reject } = PromiseWithResolvers();
    pendingKv[id] = { resolve, reject };
    return promise;
  }

  function kvKey(key, what) {
    if (key === undefined || key === null) throw new TypeError(`KV ${what} failed: a key is required`);
    return StringCtor(key);
  }

  function kvType(options, what) {
    const type = typeof options === "string" ? options : (options?.type ?? "text");
    if (call(ArrayIndexOf, ["text", "json", "arrayBuffer", "stream"], type) < 0) {
      throw new TypeError(`KV ${what} failed: Unknown response type "${type}"; use "text", "json", "arrayBuffer" or "stream"`);
    }
    return type;
  }

  function kvDecode(bytes, type) {
    if (type === "arrayBuffer") return call(ArrayBufferSlice, bytes.buffer, bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    if (type === "stream") return new Response(bytes).body;
    const text = host.decodeUtf8(bytes, false, false);
    return type === "json" ? JSONParse(text) : text;
  }

  async function kvBytes(value) {
    if (typeof value === "string") return host.encodeUtf8(value);
    if (value instanceof ArrayBufferCtor || isView(value)) return internal.copyBytes(value);
    if (internal.isStream(value)) return new Uint8ArrayCtor(await new Response(value).arrayBuffer());
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
      if (options.expiration !== undefined) sent.expiration = +options.expiration;
      if (options.expirationTtl !== undefined) sent.expirationTtl = +options.expirationTtl;
      if (options.metadata !== undefined && options.metadata !== null) sent.metadata = JSONStringify(options.metadata);
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
      if (options.prefix !== undefined && options.prefix !== null) sent.prefix = StringCtor(options.prefix);
      if (options.limit !== undefined) sent.limit = +options.limit;
      if (options.cursor !== undefined && options.cursor !== null && options.cursor !== "") sent.cursor = StringCtor(options.cursor);
      const answer = await kvCall("list", "", sent);
      const listed = { keys: answer.json.keys, list_complete: answer.json.cursor === null, cacheStatus: null };
      if (answer.json.cursor !== null) listed.cursor = answer.json.cursor;
      return listed;
    }

    // Beside the Workers API: an atomic counter.
    async increment(key, by = 1) {
      const answer = await kvCall("increment", kvKey(key, "INCREMENT"), { by: +by });
      return answer.json.count;
    }
  }

  function makeKv() {
    return freeze(new KVNamespace());
  }

  // Completes a KV operation: `ok` with the answer's JSON and the value's bytes, or a message and
  // whether it is a TypeError (the app's mistake) or an Error (the platform's).
  function settleKv(id, ok, json, extra) {
    const pending = pendingKv[id];
    if (pending === undefined) return;
    delete pendingKv[id];
    if (ok) pending.resolve(record({ json: JSONParse(json), bytes: extra }));
    else pending.reject(extra ? new TypeError(json) : new Error(json));
  }

  internal.makeKv = makeKv;
  internal.entryPoints.settleKv = settleKv;
  call(ArrayPush, internal.resets, () => { pendingKv = { __proto__: null }; });
}
