// The conformance runner's assertions: each suite registers cases with `test(name, fn)`, where
// `fn` may be async and fails by throwing. Written for this project; the cases follow what the
// Web Platform Tests assert, in our own words.

export class AssertionError extends Error {}

const show = (value) => {
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(show).join(", ")}]`;
  return String(value);
};

export const assert = {
  equals(actual, expected, what = "") {
    if (!Object.is(actual, expected)) throw new AssertionError(`${what} expected ${show(expected)}, got ${show(actual)}`);
  },
  true(value, what = "") {
    if (value !== true) throw new AssertionError(`${what} expected true, got ${show(value)}`);
  },
  false(value, what = "") {
    if (value !== false) throw new AssertionError(`${what} expected false, got ${show(value)}`);
  },
  array(actual, expected, what = "") {
    const a = JSON.stringify(Array.from(actual));
    const e = JSON.stringify(expected);
    if (a !== e) throw new AssertionError(`${what} expected ${e}, got ${a}`);
  },
  throws(Type, fn, what = "") {
    try {
      fn();
    } catch (error) {
      if (!(error instanceof Type)) throw new AssertionError(`${what} expected ${Type.name}, got ${error && error.name}: ${error && error.message}`);
      return error;
    }
    throw new AssertionError(`${what} expected ${Type.name}, nothing was thrown`);
  },
  async rejects(Type, promiseOrFn, what = "") {
    try {
      await (typeof promiseOrFn === "function" ? promiseOrFn() : promiseOrFn);
    } catch (error) {
      if (!(error instanceof Type)) throw new AssertionError(`${what} expected ${Type.name}, got ${error && error.name}: ${error && error.message}`);
      return error;
    }
    throw new AssertionError(`${what} expected a rejection with ${Type.name}, it resolved`);
  },
};

export const bytes = (...values) => new Uint8Array(values);
