// URL, URLSearchParams and FormData (string values only).
//
// A part of the prelude: compiled to bytecode once per process and evaluated in an instance only
// when app code first touches one of its globals, which keeps instances small and quick to create.

export default function install(host, internal) {
  // Parsing is the `url` crate's (WHATWG URL Standard) through the host.


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
        const descriptor = { __proto__: null, get() { return this.#parts[index]; }, configurable: true, enumerable: true };
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

  internal.define("URL", URL);
  internal.define("URLSearchParams", URLSearchParams);
  internal.define("FormData", FormData);
  internal.URL = URL;
  internal.URLSearchParams = URLSearchParams;
  internal.FormData = FormData;
  internal.isURL = (value) => value instanceof URL;
  internal.isSearchParams = (value) => value instanceof URLSearchParams;
  internal.isFormData = (value) => value instanceof FormData;
}
