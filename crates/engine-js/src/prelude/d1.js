// D1: the Workers D1 API over the host's SQL database of this app.
//
// A part of the prelude: compiled to bytecode once per process and evaluated in an instance only
// when the app has the binding (or touches the global), so apps without it never pay for it.

export default function install(host, internal) {
  const {
    call, PromiseWithResolvers, JSONParse, JSONStringify, ArrayIndexOf, ArrayPush,
    ArrayIsArray, StringSlice, StringCtor, Uint8ArrayCtor, ArrayBufferCtor, isView, freeze, ObjectAssign: assign,
  } = internal.primordials;
  const { record } = internal;

  // ---------------------------------------------------------------------------------------------
  // D1: the Workers D1 API over the host's SQL database of this app. Every call is one
  // transaction on the host; first(), all(), run() and raw() shape the same answer.

  let pendingSql = { __proto__: null };

  function sqlCall(message) {
    const id = host.sql(JSONStringify(message));
    const { promise, resolve, reject } = PromiseWithResolvers();
    pendingSql[id] = { resolve, reject };
    return promise;
  }

  function d1Error(message) {
    const prefix = "D1_ERROR: ";
    const cause = call(StringSlice, message, 0, prefix.length) === prefix ? call(StringSlice, message, prefix.length) : message;
    return new Error(message, { cause: new Error(cause) });
  }

  // A bound value as D1 takes it: null, numbers, strings, booleans (as 1 and 0), ArrayBuffers
  // and views (as BLOBs); anything else is D1_TYPE_ERROR, thrown by bind() as in Workers.
  function d1Value(value) {
    if (value === null) return null;
    switch (typeof value) {
      case "string":
        return value;
      case "number":
        if (value === value && value !== Infinity && value !== -Infinity) return value;
        break;
      case "boolean":
        return value ? 1 : 0;
      case "object":
        if (value instanceof ArrayBufferCtor) return { blob: byteList(new Uint8ArrayCtor(value)) };
        if (isView(value)) return { blob: byteList(new Uint8ArrayCtor(value.buffer, value.byteOffset, value.byteLength)) };
        // As on D1, an array of bytes binds as a BLOB (the shape D1 answers BLOBs in).
        if (ArrayIsArray(value)) {
          const bytes = [];
          for (let i = 0; i < value.length; i++) {
            const byte = value[i];
            if (typeof byte !== "number" || !(byte >= 0 && byte <= 255) || byte % 1 !== 0) return unsupported(value);
            call(ArrayPush, bytes, byte);
          }
          return { blob: bytes };
        }
        break;
    }
    return unsupported(value);
  }
  function unsupported(value) {
    throw new Error(`D1_TYPE_ERROR: Type '${typeof value}' not supported for value '${StringCtor(value)}'`);
  }
  function byteList(bytes) {
    const list = [];
    for (let i = 0; i < bytes.length; i++) call(ArrayPush, list, bytes[i]);
    return list;
  }

  function d1Result(result) {
    const results = [];
    for (let i = 0; i < result.rows.length; i++) {
      const row = result.rows[i];
      const object = {};
      // Defined, not assigned: a setter on Object.prototype never sees a row.
      for (let j = 0; j < result.columns.length; j++) {
        internal.primordials.defineProperty(object, result.columns[j], { __proto__: null, value: row[j], writable: true, enumerable: true, configurable: true });
      }
      call(ArrayPush, results, object);
    }
    return { success: true, meta: assign({ served_by: "terrarium" }, result.meta), results };
  }

  let statementOf;

  class D1PreparedStatement {
    // The SQL and parameters, as the host takes them; not the app's to see.
    #statement;
    constructor(sql, params) {
      this.#statement = { sql, params };
    }
    static {
      statementOf = (statement) => statement.#statement;
    }

    bind(...values) {
      const params = [];
      for (let i = 0; i < values.length; i++) call(ArrayPush, params, d1Value(values[i]));
      return new D1PreparedStatement(this.#statement.sql, params);
    }

    async #run() {
      return (await sqlCall({ batch: [this.#statement] })).answer[0];
    }

    async first(column) {
      const answer = await this.#run();
      const result = d1Result(answer);
      const row = result.results[0];
      if (column === undefined) return row ?? null;
      if (row === undefined) return null;
      if (call(ArrayIndexOf, answer.columns, StringCtor(column)) < 0) {
        throw new Error(`D1_COLUMN_NOTFOUND: Column not found (${column})`);
      }
      return row[column];
    }

    async all() {
      return d1Result(await this.#run());
    }

    async run() {
      return d1Result(await this.#run());
    }

    async raw(options = {}) {
      const result = await this.#run();
      if (!options?.columnNames) return result.rows;
      const rows = [result.columns];
      for (let i = 0; i < result.rows.length; i++) call(ArrayPush, rows, result.rows[i]);
      return rows;
    }
  }

  class D1Database {
    prepare(sql) {
      if (typeof sql !== "string") throw new TypeError("D1: prepare() takes the SQL as a string");
      return new D1PreparedStatement(sql, []);
    }

    async batch(list) {
      const batch = [];
      if (ArrayIsArray(list)) {
        for (let i = 0; i < list.length; i++) {
          if (!(list[i] instanceof D1PreparedStatement)) break;
          call(ArrayPush, batch, statementOf(list[i]));
        }
      }
      if (!ArrayIsArray(list) || batch.length !== list.length) {
        throw new TypeError("D1: batch() takes an array of statements made by prepare()");
      }
      if (list.length === 0) throw new Error("D1_ERROR: No SQL statements detected.");
      const answers = (await sqlCall({ batch })).answer;
      const results = [];
      for (let i = 0; i < answers.length; i++) call(ArrayPush, results, d1Result(answers[i]));
      return results;
    }

    async exec(sql) {
      if (typeof sql !== "string") throw new TypeError("D1: exec() takes the SQL as a string");
      return (await sqlCall({ exec: sql })).answer;
    }

    async dump() {
      throw new Error("D1_DUMP_ERROR: dump() is not available; the app's owner can run terrarium data export --sql");
    }

    // The Sessions API: reads here always see the latest write, so a session is the database.
    withSession() {
      const database = this;
      return freeze({
        prepare: (sql) => database.prepare(sql),
        batch: (statements) => database.batch(statements),
        getBookmark: () => null,
      });
    }
  }

  function makeD1() {
    return freeze(new D1Database());
  }

  // Completes a D1 call: `ok` with the answer's JSON, or D1's error message.
  function settleSql(id, ok, json) {
    const pending = pendingSql[id];
    if (pending === undefined) return;
    delete pendingSql[id];
    if (ok) pending.resolve(record({ answer: JSONParse(json) }));
    else pending.reject(d1Error(json));
  }

  internal.makeD1 = makeD1;
  internal.entryPoints.settleSql = settleSql;
  call(ArrayPush, internal.resets, () => { pendingSql = { __proto__: null }; });
}
