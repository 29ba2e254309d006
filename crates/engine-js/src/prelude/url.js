// URL and URLSearchParams.
//
// A part of the prelude: compiled to bytecode once per process and evaluated in an instance only
// when app code first touches one of its globals, which keeps instances small and quick to create.

export default function install(host, internal) {
  // Parsing is the `url` crate's (WHATWG URL Standard) through the host.
  const { usv, entries } = internal.load("shared");
  const { call, ArrayPush, ArraySort, ReflectApply, SymbolIterator, StringSlice } = internal.primordials;
  // A query's name, value, name, value, … (a leading '?' skipped).
  const parseQuery = (query) => host.formParse(query[0] === "?" ? call(StringSlice, query, 1) : query);
  internal.parseQuery = parseQuery;
  const paramsIterator = internal.pairIterators("URLSearchParams Iterator");


  const URL_FIELDS = ["href", "origin", "protocol", "username", "password", "host", "hostname", "port", "pathname", "search", "hash"];

  class URLSearchParams {
    #list = [];
    #url = null;
    constructor(init = "") {
      if (init instanceof URLSearchParams) {
        for (let i = 0; i < init.#list.length; i++) call(ArrayPush, this.#list, [init.#list[i][0], init.#list[i][1]]);
      } else if ((typeof init === "object" || typeof init === "function") && init !== null) {
        const iterate = init[SymbolIterator];
        if (iterate !== undefined) {
          if (typeof iterate !== "function") throw new TypeError("URLSearchParams: the init's Symbol.iterator is not a function");
          for (const pair of init) {
            if (pair === null || typeof pair !== "object") throw new TypeError("URLSearchParams: each pair must be a sequence");
            const entry = [];
            for (const item of pair) call(ArrayPush, entry, item);
            if (entry.length !== 2) throw new TypeError("URLSearchParams: each pair must have exactly two items");
            call(ArrayPush, this.#list, [usv(entry[0]), usv(entry[1])]);
          }
        } else {
          for (const key of Reflect.ownKeys(init)) {
            const descriptor = Reflect.getOwnPropertyDescriptor(init, key);
            if (descriptor === undefined || !descriptor.enumerable) continue;
            if (typeof key === "symbol") throw new TypeError("URLSearchParams: a record's keys must be strings");
            call(ArrayPush, this.#list, [usv(key), usv(init[key])]);
          }
        }
      } else {
        this.#parse(usv(init));
      }
    }
    #parse(query) {
      const flat = parseQuery(query);
      this.#list = [];
      for (let i = 0; i < flat.length; i += 2) call(ArrayPush, this.#list, [flat[i], flat[i + 1]]);
    }
    #update() {
      if (this.#url !== null) urlSetSearchFromParams(this.#url, this.toString());
    }
    static attach(params, url, query) {
      params.#url = url;
      params.#parse(query);
    }
    get size() { return this.#list.length; }
    append(name, value) { call(ArrayPush, this.#list, [usv(name), usv(value)]); this.#update(); }
    delete(name, value = undefined) {
      this.#list = entries.without(this.#list, usv(name), value === undefined ? undefined : usv(value));
      this.#update();
    }
    get(name) { return entries.get(this.#list, usv(name)); }
    getAll(name) { return entries.getAll(this.#list, usv(name)); }
    has(name, value = undefined) {
      return entries.has(this.#list, usv(name), value === undefined ? undefined : usv(value));
    }
    set(name, value) {
      this.#list = entries.replaced(this.#list, [usv(name), usv(value)]);
      this.#update();
    }
    sort() {
      // A stable sort (as the engine's sort is) by UTF-16 code units, as the standard says.
      const sorted = [];
      for (let i = 0; i < this.#list.length; i++) call(ArrayPush, sorted, this.#list[i]);
      call(ArraySort, sorted, (a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      this.#list = sorted;
      this.#update();
    }
    forEach(callback, thisArg = undefined) {
      if (typeof callback !== "function") throw new TypeError("URLSearchParams.forEach: the callback must be a function");
      for (let i = 0; i < this.#list.length; i++) ReflectApply(callback, thisArg, [this.#list[i][1], this.#list[i][0], this]);
    }
    // Live: an entry appended while iterating is visited, as WebIDL's pair iterators do.
    entries() { return paramsIterator(() => this.#list, "entries"); }
    keys() { return paramsIterator(() => this.#list, "keys"); }
    values() { return paramsIterator(() => this.#list, "values"); }
    toString() {
      const flat = [];
      for (let i = 0; i < this.#list.length; i++) call(ArrayPush, flat, this.#list[i][0], this.#list[i][1]);
      return host.formSerialize(flat);
    }
    get [internal.primordials.SymbolToStringTag]() { return "URLSearchParams"; }
  }
  internal.iterable(URLSearchParams);

  let urlSetSearchFromParams;

  const parseUrl = (url, base) => (base === undefined ? host.urlParse(usv(url)) : host.urlParse(usv(url), usv(base)));

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
        const descriptor = { __proto__: null, get() { return this.#parts[index]; }, configurable: true, enumerable: true };
        if (field !== "origin") {
          descriptor.set = function (value) {
            if (field === "href") {
              const parts = host.urlParse(usv(value));
              if (parts == null) throw new TypeError(`Invalid URL: ${value}`);
              this.#parts = parts;
            } else {
              this.#parts = host.urlSet(this.#parts[0], field, usv(value)) ?? this.#parts;
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
    get [internal.primordials.SymbolToStringTag]() { return "URL"; }
  }


  internal.provide("URL", URL);
  internal.provide("URLSearchParams", URLSearchParams);
  internal.URL = URL;
  internal.URLSearchParams = URLSearchParams;
  internal.isURL = (value) => value instanceof URL;
  internal.isSearchParams = (value) => value instanceof URLSearchParams;
}
