// Vectorize: the Workers Vectorize API (insert, upsert, query, queryById, getByIds, deleteByIds,
// describe) over the host's vector index of this app, and the platform's text pipeline beside
// it (upsertText, queryText): the host redacts, embeds and stores text, and answers matches with
// their text and provenance.
//
// A part of the prelude: compiled to bytecode once per process and evaluated in an instance only
// when the app has the binding, so apps without it never pay for it.

export default function install(host, internal) {
  const { call, ArrayPush, ArrayIsArray, PromiseWithResolvers, PromiseReject, JSONParse, JSONStringify, isView, freeze } =
    internal.primordials;

  let pendingVectors = { __proto__: null };

  function vectorCall(message) {
    const id = host.vectors(JSONStringify(message));
    const { promise, resolve, reject } = PromiseWithResolvers();
    pendingVectors[id] = { __proto__: null, resolve, reject };
    return promise;
  }

  // Runs `make` and sends what it builds; a TypeError it throws rejects the promise, as in Workers.
  function send(make) {
    try {
      return vectorCall(make());
    } catch (error) {
      return PromiseReject(error);
    }
  }

  // Numbers of a vector: an array or a typed array of finite numbers.
  function numbers(what, values) {
    if (!ArrayIsArray(values) && !(isView(values) && typeof values.length === "number")) {
      throw new TypeError(`${what}: values must be an array of numbers or a Float32Array/Float64Array`);
    }
    const out = [];
    for (let i = 0; i < values.length; i++) {
      const value = values[i];
      if (typeof value !== "number" || value !== value || value === Infinity || value === -Infinity) {
        throw new TypeError(`${what}: values[${i}] is not a finite number`);
      }
      call(ArrayPush, out, value);
    }
    return out;
  }

  function text(what, value) {
    if (typeof value !== "string") throw new TypeError(`${what} must be a string`);
    return value;
  }

  function optionalText(what, value) {
    return value === undefined || value === null ? undefined : text(what, value);
  }

  function metadataOf(what, metadata) {
    if (metadata === undefined || metadata === null) return undefined;
    if (typeof metadata !== "object" || ArrayIsArray(metadata)) throw new TypeError(`${what}: metadata must be an object`);
    // Through JSON, as Vectorize stores it.
    return JSONParse(JSONStringify(metadata));
  }

  function list(what, items) {
    if (!ArrayIsArray(items)) throw new TypeError(`${what} takes an array`);
    return items;
  }

  function vectorsOf(what, vectors) {
    const out = [];
    const given = list(what, vectors);
    for (let i = 0; i < given.length; i++) {
      const vector = given[i];
      if (vector === null || typeof vector !== "object") throw new TypeError(`${what}: vectors[${i}] must be { id, values, metadata? }`);
      call(ArrayPush, out, {
        id: text(`${what}: vectors[${i}].id`, vector.id),
        values: numbers(`${what}: vectors[${i}]`, vector.values),
        metadata: metadataOf(`${what}: vectors[${i}]`, vector.metadata),
        namespace: optionalText(`${what}: vectors[${i}].namespace`, vector.namespace),
      });
    }
    return out;
  }

  function idsOf(what, ids) {
    const out = [];
    const given = list(what, ids);
    for (let i = 0; i < given.length; i++) call(ArrayPush, out, text(`${what}: ids[${i}]`, given[i]));
    return out;
  }

  function optionsOf(what, options) {
    if (options === undefined || options === null) return {};
    if (typeof options !== "object") throw new TypeError(`${what}: options must be an object`);
    const out = {};
    if (options.topK !== undefined) {
      const topK = options.topK;
      if (typeof topK !== "number" || topK % 1 !== 0 || topK < 1) throw new TypeError(`${what}: topK must be a whole number from 1`);
      out.topK = topK;
    }
    if (options.filter !== undefined && options.filter !== null) out.filter = metadataOf(`${what}: filter`, options.filter);
    if (options.namespace !== undefined && options.namespace !== null) out.namespace = text(`${what}: namespace`, options.namespace);
    if (options.returnValues !== undefined) out.returnValues = !!options.returnValues;
    if (options.returnMetadata !== undefined) {
      const returnMetadata = options.returnMetadata;
      if (typeof returnMetadata === "boolean") out.returnMetadata = returnMetadata;
      else if (returnMetadata === "none" || returnMetadata === "indexed" || returnMetadata === "all") out.returnMetadata = returnMetadata;
      else throw new TypeError(`${what}: returnMetadata must be "none", "indexed" or "all"`);
    }
    if (options.returnText !== undefined) out.returnText = !!options.returnText;
    if (options.rerank !== undefined) out.rerank = !!options.rerank;
    return out;
  }

  class VectorizeIndex {
    insert(vectors) {
      return send(() => ({ op: "insert", vectors: vectorsOf("insert", vectors), upsert: false }));
    }

    upsert(vectors) {
      return send(() => ({ op: "insert", vectors: vectorsOf("upsert", vectors), upsert: true }));
    }

    query(vector, options = undefined) {
      return send(() => ({ op: "query", vector: numbers("query", vector), options: optionsOf("query", options) }));
    }

    async queryById(vectorId, options = undefined) {
      const id = text("queryById: the id", vectorId);
      const found = await vectorCall({ op: "getByIds", ids: [id] });
      if (found.length === 0) return { count: 0, matches: [] };
      return vectorCall({ op: "query", vector: found[0].values, options: optionsOf("queryById", options) });
    }

    getByIds(ids) {
      return send(() => ({ op: "getByIds", ids: idsOf("getByIds", ids) }));
    }

    deleteByIds(ids) {
      return send(() => ({ op: "deleteByIds", ids: idsOf("deleteByIds", ids) }));
    }

    describe() {
      return send(() => ({ op: "describe" }));
    }

    // Beyond Vectorize: texts in, redacted and embedded by the platform.
    upsertText(items) {
      return send(() => {
        const out = [];
        const given = list("upsertText", items);
        for (let i = 0; i < given.length; i++) {
          const item = given[i];
          if (item === null || typeof item !== "object") throw new TypeError(`upsertText: items[${i}] must be { id, text, metadata? }`);
          const ttlDays = item.ttlDays;
          if (ttlDays !== undefined && (typeof ttlDays !== "number" || ttlDays % 1 !== 0 || ttlDays < 1 || ttlDays > 3650)) {
            throw new TypeError(`upsertText: items[${i}].ttlDays must be a whole number of days from 1 to 3650`);
          }
          call(ArrayPush, out, {
            id: text(`upsertText: items[${i}].id`, item.id),
            text: text(`upsertText: items[${i}].text`, item.text),
            metadata: metadataOf(`upsertText: items[${i}]`, item.metadata),
            namespace: optionalText(`upsertText: items[${i}].namespace`, item.namespace),
            ttlDays,
          });
        }
        return { op: "upsertText", items: out };
      });
    }

    queryText(question, options = undefined) {
      return send(() => ({ op: "queryText", text: text("queryText: the question", question), options: optionsOf("queryText", options) }));
    }
  }

  // Completes a call: `ok` with the answer as JSON, or the message and whether it is the app's
  // mistake (TypeError) or the platform's (Error).
  function settleVectors(id, ok, value, appMistake) {
    const pending = pendingVectors[id];
    if (pending === undefined) return;
    delete pendingVectors[id];
    if (!ok) {
      pending.reject(appMistake ? new TypeError(value) : new Error(value));
      return;
    }
    pending.resolve(JSONParse(value));
  }

  internal.makeVectorize = () => freeze(new VectorizeIndex());
  internal.entryPoints.settleVectors = settleVectors;
  call(ArrayPush, internal.resets, () => { pendingVectors = { __proto__: null }; });
}
