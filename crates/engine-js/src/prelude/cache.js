// Cache: the Workers Cache API (caches.default, caches.open) over the host's store for this app.
//
// A part of the prelude: compiled to bytecode once per process and evaluated in an instance only
// when the app has the binding (or touches the global), so apps without it never pay for it.

export default function install(host, internal) {
  const { call, PromiseWithResolvers, MapGet, MapSet, MapDelete, MapClear, JSONParse, JSONStringify, ArrayIndexOf, ArrayPush, Uint8ArrayCtor, ArrayBufferCtor, freeze, ObjectAssign: assign } = internal.primordials;
  const { record } = internal;
  const { Request, Response, responseFromHost, headersList } = internal;

  // ---------------------------------------------------------------------------------------------
  // Cache: the Workers Cache API (caches.default, caches.open) over the host's store for this
  // app. The host builds every key from the app and the URL; app code names only URLs.

  const pendingCache = new Map();

  function cacheCall(call, body) {
    const json = JSONStringify(call);
    const id = body === undefined ? host.cache(json) : host.cache(json, body);
    const { promise, resolve, reject } = PromiseWithResolvers();
    call(MapSet, pendingCache, id, { resolve, reject });
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
      const body = new Uint8ArrayCtor(await response.arrayBuffer());
      const headers = [];
      const list = headersList(response.headers);
      for (let i = 0; i < list.length; i++) call(ArrayPush, headers, [list[i][0], list[i][1]]);
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
    const pending = call(MapGet, pendingCache, id);
    if (pending === undefined) return;
    call(MapDelete, pendingCache, id);
    if (ok) pending.resolve(record({ json: JSONParse(json), bytes }));
    else pending.reject(new Error(json));
  }

  internal.define("caches", freeze(new CacheStorage()));
  internal.settleCache = settleCache;
  call(ArrayPush, internal.resets, () => call(MapClear, pendingCache));
}
