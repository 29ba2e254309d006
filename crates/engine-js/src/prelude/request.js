// What `new Request(input, init)` takes from its input and RequestInit (Fetch standard §5.4):
// the enumerations' checks, the method's normalisation, the body. The incoming request the
// engine builds never needs this part, so a warm instance that only answers requests never
// holds it.
//
// A part of the prelude: compiled to bytecode once per process and evaluated in an instance only
// when app code first makes a Request (or calls fetch).

export default function install(host, internal) {
  const { call, StringCtor, StringToUpperCase, ArrayIndexOf, ArrayJoin, freeze, ObjectAssign: assign } = internal.primordials;
  const { record, Headers, Request, extractBody, bodyTransfer, dictionary, TOKEN } = internal;

  // The methods the standard normalises to uppercase (PATCH is not one of them).
  const METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"];
  const FORBIDDEN_METHODS = ["CONNECT", "TRACE", "TRACK"];

  // RequestInit's enumerations: a value outside one is a TypeError, as WebIDL says.
  const ENUMS = {
    __proto__: null,
    mode: ["navigate", "same-origin", "no-cors", "cors"],
    credentials: ["omit", "same-origin", "include"],
    cache: ["default", "no-store", "reload", "no-cache", "force-cache", "only-if-cached"],
    redirect: ["follow", "error", "manual"],
    referrerPolicy: ["", "no-referrer", "no-referrer-when-downgrade", "same-origin", "origin", "strict-origin",
      "origin-when-cross-origin", "strict-origin-when-cross-origin", "unsafe-url"],
    priority: ["high", "low", "auto"],
  };
  const ENUM_MEMBERS = ["mode", "credentials", "cache", "redirect", "referrerPolicy", "priority"];

  const DEFAULTS = freeze({
    __proto__: null, mode: "cors", credentials: "same-origin", cache: "default", redirect: "follow",
    referrerPolicy: "", priority: "auto", integrity: "", keepalive: false, referrer: "about:client",
  });

  function enumMember(what, value) {
    const text = StringCtor(value);
    if (call(ArrayIndexOf, ENUMS[what], text) < 0) {
      throw new TypeError(`Request: "${text}" is not a valid value for ${what} (${call(ArrayJoin, ENUMS[what], ", ")})`);
    }
    return text;
  }

  // The fields of a new Request: `fields(request)` reads another Request's.
  function requestInit(input, init, fields) {
    init = dictionary(init, "Request");
    let method, url, headers, signal, options;
    const other = input instanceof Request ? fields(input) : null;
    if (other !== null) {
      method = other.method;
      url = other.url;
      headers = new Headers(other.headers);
      signal = other.signal;
      options = assign({ __proto__: null }, other.options);
    } else {
      const parsed = new (internal.load("url").URL)(StringCtor(input));
      if (parsed.username !== "" || parsed.password !== "") {
        throw new TypeError(`Request: the URL ${parsed.href} has credentials in it; send them in a header instead`);
      }
      url = parsed.href;
      method = "GET";
      headers = new Headers();
      signal = null;
      options = assign({ __proto__: null }, DEFAULTS);
    }
    for (let i = 0; i < ENUM_MEMBERS.length; i++) {
      const what = ENUM_MEMBERS[i];
      if (init[what] !== undefined) options[what] = enumMember(what, init[what]);
    }
    if (options.mode === "navigate") {
      if (init.mode !== undefined) throw new TypeError('Request: mode "navigate" cannot be set');
      options.mode = "same-origin";
    }
    if (options.cache === "only-if-cached" && options.mode !== "same-origin") {
      throw new TypeError('Request: cache "only-if-cached" needs mode "same-origin"');
    }
    if (init.integrity !== undefined) options.integrity = StringCtor(init.integrity);
    if (init.keepalive !== undefined) options.keepalive = Boolean(init.keepalive);
    if (init.referrer !== undefined) options.referrer = StringCtor(init.referrer) === "" ? "" : "about:client";
    if (init.method !== undefined) {
      const given = StringCtor(init.method);
      if (!internal.matches(TOKEN, given)) throw new TypeError(`Request: "${given}" is not a valid method`);
      const upper = call(StringToUpperCase, given);
      if (call(ArrayIndexOf, FORBIDDEN_METHODS, upper) >= 0) throw new TypeError(`Request: the method ${given} is forbidden`);
      method = call(ArrayIndexOf, METHODS, upper) >= 0 ? upper : given;
    }
    if (init.headers !== undefined) headers = new Headers(init.headers);
    if (init.signal !== undefined) signal = init.signal;
    const hasBody = init.body !== undefined && init.body !== null;
    const inherits = other !== null && init.body === undefined && other.hasBody;
    if ((hasBody || inherits) && (method === "GET" || method === "HEAD")) {
      throw new TypeError("Request: a GET or HEAD request cannot have a body");
    }
    let source = null;
    if (hasBody) {
      const extracted = extractBody(init.body);
      source = extracted.source;
      if (extracted.type !== null) internal.headersDefaultType(headers, extracted.type);
    } else if (inherits) {
      // The new request takes the input's body: the input reads as used from now on.
      source = bodyTransfer(input);
    }
    return record({ method, url, headers, signal, options: freeze(options), source });
  }

  internal.requestInit = requestInit;
}
