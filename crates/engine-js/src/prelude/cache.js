// Cache: the Workers Cache API (caches.default, caches.open) over the host's store for this app.
//
// A part of the prelude: compiled to bytecode once per process and evaluated in an instance only
// when the app has the binding (or touches the global), so apps without it never pay for it.

export default function install(host, internal) {
  const { call, PromiseWithResolvers, JSONParse, JSONStringify, ArrayPush, StringSlice, StringCtor, Uint8ArrayCtor, freeze } = internal.primordials;
  const { record, trimHttp } = internal;
  const { Request, Response, responseFromHost, headersList } = internal;

  // ---------------------------------------------------------------------------------------------
  // Cache: the Workers Cache API (caches.default, caches.open) over the host's store for this
  // app. The host builds every key from the app and the URL; app code names only URLs.

  let pendingCache = { __proto__: null };

  function cacheCall(message, body) {
    const json = JSONStringify(message);
    const id = body === undefined ? host.cache(json) : host.cache(json, body);
    const { promise, resolve, reject } = PromiseWithResolvers();
    pendingCache[id] = { resolve, reject };
    return promise;
  }

  function cacheRequest(request) {
    return request instanceof Request ? request : new Request(request);
  }


  // Whether a Vary value lists `*`.
  function varyAll(vary) {
    let from = 0;
    for (let i = 0; i <= vary.length; i++) {
      if (i < vary.length && vary[i] !== ",") continue;
      if (trimHttp(call(StringSlice, vary, from, i)) === "*") return true;
      from = i + 1;
    }
    return false;
  }

  class Cache {
    // The cache's name as the host keys it (`default` or `named:NAME`); not the app's to see.
    #name;
    constructor(name) {
      this.#name = name;
    }
    async match(request, options = undefined) {
      const asked = cacheRequest(request);
      if (asked.method !== "GET" && !options?.ignoreMethod) return undefined;
      const message = { op: "match", cache: this.#name, url: asked.url };
      const condition = asked.headers.get("if-none-match");
      if (condition !== null) message.ifNoneMatch = condition;
      const answer = await cacheCall(message);
      if (answer.json === null) return undefined;
      return responseFromHost(answer.json.status, answer.json.headers, asked.url, answer.bytes, false);
    }

    async put(request, response) {
      const asked = cacheRequest(request);
      if (asked.method !== "GET") throw new TypeError("Cannot cache response to non-GET request.");
      if (!(response instanceof Response)) throw new TypeError("Cache.put(): the response must be a Response.");
      if (response.status === 206) throw new TypeError("Cannot cache response to a range request (206 Partial Content).");
      const vary = response.headers.get("vary");
      if (vary !== null && varyAll(vary)) {
        throw new TypeError("Cannot cache response with 'Vary: *' header.");
      }
      if (response.bodyUsed) throw new TypeError("Cache.put(): the response's body has already been used.");
      const body = new Uint8ArrayCtor(await response.arrayBuffer());
      const headers = [];
      const list = headersList(response.headers);
      for (let i = 0; i < list.length; i++) call(ArrayPush, headers, [list[i][0], list[i][1]]);
      await cacheCall({ op: "put", cache: this.#name, url: asked.url, status: response.status, headers }, body);
      return undefined;
    }

    async delete(request, options = undefined) {
      const asked = cacheRequest(request);
      if (asked.method !== "GET" && !options?.ignoreMethod) return false;
      const answer = await cacheCall({ op: "delete", cache: this.#name, url: asked.url });
      return answer.json === true;
    }
  }

  const makeCache = (name) => freeze(new Cache(name));

  const defaultCache = makeCache("default");

  class CacheStorage {
    get default() { return defaultCache; }
    async open(name) { return makeCache(`named:${StringCtor(name)}`); }
  }

  // Completes a Cache API call: `ok` with the answer's JSON and a found body's bytes, or a message.
  function settleCache(id, ok, json, bytes) {
    const pending = pendingCache[id];
    if (pending === undefined) return;
    delete pendingCache[id];
    if (ok) pending.resolve(record({ json: JSONParse(json), bytes }));
    else pending.reject(new Error(json));
  }

  internal.provide("caches", freeze(new CacheStorage()));
  internal.entryPoints.settleCache = settleCache;
  call(ArrayPush, internal.resets, () => { pendingCache = { __proto__: null }; });
}
