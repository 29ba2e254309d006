// Workers AI: env.AI.run(model, inputs) for the model aliases the app's manifest lists
// (spec.ai.models). Embedding models take { text: "..." } or { text: ["...", ...] } and answer
// { shape: [n, d], data: [[...], ...] }, as Workers AI's text-embedding models do.
//
// A part of the prelude: compiled to bytecode once per process and evaluated in an instance only
// when the app has the binding, so apps without it never pay for it.

export default function install(host, internal) {
  const { call, ArrayPush, ArrayIsArray, PromiseWithResolvers, PromiseReject, freeze } = internal.primordials;

  let pendingAi = { __proto__: null };

  // The texts of an embedding call, checked: the host refuses what is not text.
  function textsOf(inputs) {
    if (inputs === null || typeof inputs !== "object") {
      throw new TypeError('env.AI.run: the inputs must be an object, like { text: ["first passage", "second"] }');
    }
    const text = inputs.text;
    if (typeof text === "string") return [text];
    if (!ArrayIsArray(text)) throw new TypeError('env.AI.run: inputs.text must be a string or an array of strings');
    const texts = [];
    for (let i = 0; i < text.length; i++) {
      if (typeof text[i] !== "string") throw new TypeError(`env.AI.run: inputs.text[${i}] is not a string`);
      call(ArrayPush, texts, text[i]);
    }
    return texts;
  }

  class Ai {
    run(model, inputs, options = undefined) {
      void options;
      try {
        if (typeof model !== "string") throw new TypeError("env.AI.run: the model must be a string, an alias from spec.ai.models");
        const id = host.ai(model, textsOf(inputs));
        const { promise, resolve, reject } = PromiseWithResolvers();
        pendingAi[id] = { __proto__: null, resolve, reject };
        return promise;
      } catch (error) {
        return PromiseReject(error);
      }
    }
  }

  // Completes a call: `ok` with the vectors as one Float32Array and their dimensions, or the
  // message and whether it is the app's mistake (TypeError) or the platform's (Error).
  function settleAi(id, ok, value, extra) {
    const pending = pendingAi[id];
    if (pending === undefined) return;
    delete pendingAi[id];
    if (!ok) {
      pending.reject(extra ? new TypeError(value) : new Error(value));
      return;
    }
    const dimensions = extra;
    const count = dimensions === 0 ? 0 : value.length / dimensions;
    const data = [];
    for (let row = 0; row < count; row++) {
      const vector = [];
      for (let column = 0; column < dimensions; column++) call(ArrayPush, vector, value[row * dimensions + column]);
      call(ArrayPush, data, vector);
    }
    pending.resolve({ shape: [count, dimensions], data });
  }

  internal.makeAi = () => freeze(new Ai());
  internal.entryPoints.settleAi = settleAi;
  call(ArrayPush, internal.resets, () => { pendingAi = { __proto__: null }; });
}
