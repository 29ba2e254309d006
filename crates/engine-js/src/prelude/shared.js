// What several parts share: promise reactions that read no species, lists of [name, value]
// entries (URLSearchParams, FormData) and WebIDL's pair iterators (those and Headers).
//
// A part of the prelude: compiled to bytecode once per process and evaluated in an instance only
// when a part that needs it loads (or fetch, ctx.waitUntil or a Headers iteration first runs).

export default function install(host, internal) {
  const { call, ArrayPush, PromiseWithResolvers, freeze, defineProperty, setPrototypeOf } = internal.primordials;
  const primordials = internal.primordials;

  // Reacts to a promise's outcome without Promise.prototype.then, which makes its result through
  // Promise[Symbol.species] (app code can replace it); an await reads no species. `then` is the
  // same with a promise of the platform's own for the reaction's result.
  async function react(promise, onFulfilled, onRejected) {
    let value;
    try {
      value = await promise;
    } catch (error) {
      if (onRejected !== undefined) onRejected(error);
      return;
    }
    if (onFulfilled !== undefined) onFulfilled(value);
  }
  function then(promise, onFulfilled, onRejected) {
    const { promise: result, resolve, reject } = PromiseWithResolvers();
    const settle = (handler, value, otherwise) => {
      if (handler === undefined) {
        otherwise(value);
        return;
      }
      try {
        resolve(handler(value));
      } catch (error) {
        reject(error);
      }
    };
    react(promise, (value) => settle(onFulfilled, value, resolve), (error) => settle(onRejected, error, reject));
    return result;
  }
  internal.react = react;
  internal.then = then;

  // A list of [name, value] entries, as FormData and URLSearchParams keep them: the value of the
  // first entry named `name` (or null), every value of that name, the list without the entries
  // of that name (and that value, when given), and the list with `entry` in place of the first
  // entry of its name and without the others.
  internal.entries = freeze({
    __proto__: null,
    get(list, name) {
      for (let i = 0; i < list.length; i++) if (list[i][0] === name) return list[i][1];
      return null;
    },
    getAll(list, name) {
      const values = [];
      for (let i = 0; i < list.length; i++) if (list[i][0] === name) call(ArrayPush, values, list[i][1]);
      return values;
    },
    has(list, name, value = undefined) {
      for (let i = 0; i < list.length; i++) {
        if (list[i][0] === name && (value === undefined || list[i][1] === value)) return true;
      }
      return false;
    },
    without(list, name, value = undefined) {
      const kept = [];
      for (let i = 0; i < list.length; i++) {
        if (list[i][0] !== name || (value !== undefined && list[i][1] !== value)) call(ArrayPush, kept, list[i]);
      }
      return kept;
    },
    replaced(list, entry) {
      const kept = [];
      let found = false;
      for (let i = 0; i < list.length; i++) {
        if (list[i][0] !== entry[0]) call(ArrayPush, kept, list[i]);
        else if (!found) { found = true; call(ArrayPush, kept, entry); }
      }
      if (!found) call(ArrayPush, kept, entry);
      return kept;
    },
  });

  // An iterator object as WebIDL makes them for pair iterables: `next()` reads the live list
  // through `pairs()` at each step, and the prototype is the engine's %IteratorPrototype%. The
  // state is in private fields, which no prototype change reaches.
  class PairIterator {
    #pairs;
    #kind;
    #index = 0;
    constructor(pairs, kind) {
      this.#pairs = pairs;
      this.#kind = kind;
    }
    static next(iterator, tag) {
      if (iterator === null || typeof iterator !== "object" || !(#pairs in iterator)) {
        throw new TypeError(`next() called on an object that is not a ${tag}`);
      }
      const list = iterator.#pairs();
      if (iterator.#index >= list.length) return { value: undefined, done: true };
      const pair = list[iterator.#index++];
      const kind = iterator.#kind;
      return { value: kind === "keys" ? pair[0] : kind === "values" ? pair[1] : [pair[0], pair[1]], done: false };
    }
  }
  const next = PairIterator.next;

  // `Class.prototype[Symbol.iterator]` is its `entries`, not enumerable, as WebIDL defines it.
  internal.iterable = (Class) => defineProperty(Class.prototype, primordials.SymbolIterator, {
    __proto__: null, value: Class.prototype.entries, writable: true, configurable: true, enumerable: false,
  });
  // Makes the iterators of one interface: `(pairs, kind)` → an iterator over `pairs()`.
  internal.pairIterators = (tag) => {
    const prototype = { __proto__: primordials.IteratorPrototype, next() { return next(this, tag); } };
    defineProperty(prototype, primordials.SymbolToStringTag, { __proto__: null, value: tag, configurable: true });
    return (pairs, kind) => setPrototypeOf(new PairIterator(pairs, kind), prototype);
  };
}
