// crypto (randomUUID, getRandomValues, subtle.digest), structuredClone, and AbortController with
// the small EventTarget it needs.
//
// A part of the prelude: compiled to bytecode once per process and evaluated in an instance only
// when app code first touches one of its globals, which keeps instances small and quick to create.

export default function install(host, internal) {
  const {
    call, MapGet, MapSet, SetAdd, ArrayPush, ArrayIsArray, ArrayBufferSlice, ObjectKeys, ReflectApply, isView, StringCtor,
    StringToUpperCase,
  } = internal.primordials;
  const DIGESTS = { "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512" };

  const subtle = {
    async digest(algorithm, data) {
      const name = call(StringToUpperCase, StringCtor(typeof algorithm === "object" && algorithm !== null ? algorithm.name : algorithm));
      const digest = DIGESTS[name];
      if (digest === undefined) throw new DOMException(`crypto.subtle.digest: ${name} is not supported (SHA-256, SHA-384, SHA-512 are)`, "NotSupportedError");
      if (!internal.isBufferSource(data)) throw new TypeError("crypto.subtle.digest: data must be an ArrayBuffer or a view of one");
      return host.digest(digest, internal.viewBytes(data)).buffer;
    },
  };

  const crypto = {
    subtle,
    randomUUID: () => host.randomUUID(),
    getRandomValues(array) {
      if (!isView(array) || array instanceof Float32Array || array instanceof Float64Array || array instanceof DataView) {
        throw new TypeError("crypto.getRandomValues: the argument must be an integer typed array");
      }
      if (array.byteLength > 65536) {
        throw new DOMException("crypto.getRandomValues: at most 65536 bytes may be requested", "QuotaExceededError");
      }
      call(internal.primordials.TypedArraySet, internal.viewBytes(array), host.randomBytes(array.byteLength));
      return array;
    },
  };

  function structuredClone(value, options) {
    const seen = new Map();
    const cloneError = (what) => new DOMException(`structuredClone: ${what} could not be cloned`, "DataCloneError");
    function clone(input) {
      if (input === null || (typeof input !== "object" && typeof input !== "function" && typeof input !== "symbol")) return input;
      if (typeof input === "function") throw cloneError(`function ${input.name || "(anonymous)"}`);
      if (typeof input === "symbol") throw cloneError("a symbol");
      const known = call(MapGet, seen, input);
      if (known !== undefined) return known;
      let output;
      if (ArrayIsArray(input)) {
        output = new Array(input.length);
        call(MapSet, seen, input, output);
        const keys = ObjectKeys(input);
        for (let i = 0; i < keys.length; i++) output[keys[i]] = clone(input[keys[i]]);
        return output;
      }
      if (input instanceof Date) output = new Date(input.getTime());
      else if (input instanceof RegExp) output = new RegExp(input.source, input.flags);
      else if (input instanceof ArrayBuffer) output = call(ArrayBufferSlice, input, 0);
      else if (input instanceof DataView) output = new DataView(clone(input.buffer), input.byteOffset, input.byteLength);
      else if (isView(input)) output = new input.constructor(clone(input.buffer), input.byteOffset, input.length);
      else if (input instanceof Boolean || input instanceof Number || input instanceof String) output = Object(input.valueOf());
      else if (internal.isBlob(input)) {
        // A Blob's bytes never change: the copy shares them.
        output = internal.isFile(input)
          ? internal.makeFile(internal.blobBytes(input), input.name, input.type, input.lastModified)
          : internal.makeBlob(internal.blobBytes(input), input.type);
      }
      else if (input instanceof Map) {
        output = new Map();
        call(MapSet, seen, input, output);
        for (const [key, inner] of input) call(MapSet, output, clone(key), clone(inner));
        return output;
      } else if (input instanceof Set) {
        output = new Set();
        call(MapSet, seen, input, output);
        for (const inner of input) call(SetAdd, output, clone(inner));
        return output;
      } else if (input instanceof Error) {
        const Constructor = globalThis[input.name] ?? Error;
        output = Object.create(Constructor.prototype);
        call(MapSet, seen, input, output);
        for (const key of ["message", "stack", "cause"]) {
          if (Object.prototype.hasOwnProperty.call(input, key)) {
            Object.defineProperty(output, key, { __proto__: null, value: clone(input[key]), writable: true, configurable: true });
          }
        }
        return output;
      } else if (input instanceof Promise || input instanceof WeakMap || input instanceof WeakSet) {
        throw cloneError(`a ${input.constructor.name}`);
      } else {
        output = {};
        call(MapSet, seen, input, output);
        const keys = ObjectKeys(input);
        for (let i = 0; i < keys.length; i++) output[keys[i]] = clone(input[keys[i]]);
        return output;
      }
      call(MapSet, seen, input, output);
      return output;
    }
    return clone(value);
  }

  class Event {
    #type; #defaultPrevented = false;
    constructor(type) { this.#type = StringCtor(type); }
    get type() { return this.#type; }
    get defaultPrevented() { return this.#defaultPrevented; }
    preventDefault() { this.#defaultPrevented = true; }
  }

  class EventTarget {
    #listeners = new Map();
    addEventListener(type, listener, options = {}) {
      if (typeof listener !== "function" && typeof listener?.handleEvent !== "function") return;
      const list = call(MapGet, this.#listeners, type) ?? [];
      for (let i = 0; i < list.length; i++) if (list[i].listener === listener) return;
      call(ArrayPush, list, { __proto__: null, listener, once: Boolean(options?.once) });
      call(MapSet, this.#listeners, type, list);
    }
    removeEventListener(type, listener) {
      const list = call(MapGet, this.#listeners, type);
      if (list === undefined) return;
      const kept = [];
      for (let i = 0; i < list.length; i++) if (list[i].listener !== listener) call(ArrayPush, kept, list[i]);
      call(MapSet, this.#listeners, type, kept);
    }
    dispatchEvent(event) {
      // The listeners when the event is dispatched, as the DOM standard has it.
      const list = call(MapGet, this.#listeners, event.type) ?? [];
      const entries = [];
      for (let i = 0; i < list.length; i++) call(ArrayPush, entries, list[i]);
      for (let i = 0; i < entries.length; i++) {
        const entry = entries[i];
        if (entry.once) this.removeEventListener(event.type, entry.listener);
        if (typeof entry.listener === "function") ReflectApply(entry.listener, this, [event]);
        else entry.listener.handleEvent(event);
      }
      return !event.defaultPrevented;
    }
  }

  let abortSignal;

  class AbortSignal extends EventTarget {
    #aborted = false;
    #reason = undefined;
    onabort = null;
    static {
      abortSignal = (signal, reason) => {
        if (signal.#aborted) return;
        signal.#aborted = true;
        signal.#reason = reason === undefined ? new DOMException("This operation was aborted", "AbortError") : reason;
        const event = new Event("abort");
        if (typeof signal.onabort === "function") signal.onabort(event);
        signal.dispatchEvent(event);
      };
    }
    get aborted() { return this.#aborted; }
    get reason() { return this.#reason; }
    throwIfAborted() { if (this.#aborted) throw this.#reason; }
    static abort(reason) {
      const signal = new AbortSignal();
      abortSignal(signal, reason);
      return signal;
    }
    static timeout(ms) {
      const signal = new AbortSignal();
      setTimeout(() => abortSignal(signal, new DOMException("The operation timed out", "TimeoutError")), ms);
      return signal;
    }
    static any(signals) {
      const combined = new AbortSignal();
      for (const signal of signals) {
        if (signal.aborted) { abortSignal(combined, signal.reason); break; }
        signal.addEventListener("abort", () => abortSignal(combined, signal.reason), { once: true });
      }
      return combined;
    }
  }

  class AbortController {
    #signal = new AbortSignal();
    get signal() { return this.#signal; }
    abort(reason) { abortSignal(this.#signal, reason); }
  }

  internal.provide("crypto", crypto);
  internal.provide("structuredClone", structuredClone);
  internal.provide("Event", Event);
  internal.provide("EventTarget", EventTarget);
  internal.provide("AbortSignal", AbortSignal);
  internal.provide("AbortController", AbortController);
  internal.isAbortSignal = (value) => value instanceof AbortSignal;
  internal.AbortSignal = AbortSignal;
  internal.AbortController = AbortController;
}
