// crypto.randomUUID, crypto.getRandomValues and structuredClone.
//
// A part of the prelude: compiled to bytecode once per process and evaluated in an instance only
// when app code first touches one of its globals, which keeps instances small and quick to create.

export default function install(host, internal) {

  const crypto = {
    randomUUID: () => host.randomUUID(),
    getRandomValues(array) {
      if (!ArrayBuffer.isView(array) || array instanceof Float32Array || array instanceof Float64Array || array instanceof DataView) {
        throw new TypeError("crypto.getRandomValues: the argument must be an integer typed array");
      }
      if (array.byteLength > 65536) {
        throw new DOMException("crypto.getRandomValues: at most 65536 bytes may be requested", "QuotaExceededError");
      }
      internal.viewBytes(array).set(host.randomBytes(array.byteLength));
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
      if (seen.has(input)) return seen.get(input);
      let output;
      if (Array.isArray(input)) {
        output = new Array(input.length);
        seen.set(input, output);
        for (const key of Object.keys(input)) output[key] = clone(input[key]);
        return output;
      }
      if (input instanceof Date) output = new Date(input.getTime());
      else if (input instanceof RegExp) output = new RegExp(input.source, input.flags);
      else if (input instanceof ArrayBuffer) output = input.slice(0);
      else if (input instanceof DataView) output = new DataView(clone(input.buffer), input.byteOffset, input.byteLength);
      else if (ArrayBuffer.isView(input)) output = new input.constructor(clone(input.buffer), input.byteOffset, input.length);
      else if (input instanceof Boolean || input instanceof Number || input instanceof String) output = Object(input.valueOf());
      else if (input instanceof Map) {
        output = new Map();
        seen.set(input, output);
        for (const [key, inner] of input) output.set(clone(key), clone(inner));
        return output;
      } else if (input instanceof Set) {
        output = new Set();
        seen.set(input, output);
        for (const inner of input) output.add(clone(inner));
        return output;
      } else if (input instanceof Error) {
        const Constructor = globalThis[input.name] ?? Error;
        output = Object.create(Constructor.prototype);
        seen.set(input, output);
        for (const key of ["message", "stack", "cause"]) {
          if (Object.prototype.hasOwnProperty.call(input, key)) {
            Object.defineProperty(output, key, { value: clone(input[key]), writable: true, configurable: true });
          }
        }
        return output;
      } else if (input instanceof Promise || input instanceof WeakMap || input instanceof WeakSet) {
        throw cloneError(`a ${input.constructor.name}`);
      } else {
        output = {};
        seen.set(input, output);
        for (const key of Object.keys(input)) output[key] = clone(input[key]);
        return output;
      }
      seen.set(input, output);
      return output;
    }
    return clone(value);
  }

  internal.define("crypto", crypto);
  internal.define("structuredClone", structuredClone);
}
