// console.*, formatted like a browser console (objects as JSON), into the app's log.
//
// A part of the prelude: compiled to bytecode once per process and evaluated in an instance only
// when app code first touches one of its globals, which keeps instances small and quick to create.

export default function install(host, internal) {
  const LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3;


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
    if (value instanceof internal.Headers || internal.isSearchParams(value)) return `${value.constructor.name} ${describe(Object.fromEntries(value), depth + 1)}`;
    if (internal.isURL(value)) return `URL ${value.href}`;
    if (value instanceof internal.Request) return `Request ${value.method} ${value.url}`;
    if (value instanceof internal.Response) return `Response ${value.status}`;
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

  internal.describe = describe;
  internal.provide("console", console);
}
