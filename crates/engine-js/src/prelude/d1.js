// D1: the Workers D1 API over the host's SQL database of this app.
//
// A part of the prelude: compiled to bytecode once per process and evaluated in an instance only
// when the app has the binding (or touches the global), so apps without it never pay for it.

export default function install(host, internal) {
  const { call, PromiseWithResolvers, MapGet, MapSet, MapDelete, MapClear, JSONParse, JSONStringify, ArrayIndexOf, ArrayPush, Uint8ArrayCtor, ArrayBufferCtor, freeze, ObjectAssign: assign } = internal.primordials;
  const { record } = internal;

  // ---------------------------------------------------------------------------------------------
  // D1: the Workers D1 API over the host's SQL database of this app. Every call is one
  // transaction on the host; first(), all(), run() and raw() shape the same answer.

  const pendingSql = new Map();

  function sqlCall(call) {
    const id = host.sql(JSONStringify(call));
    const { promise, resolve, reject } = PromiseWithResolvers();
    call(MapSet, pendingSql, id, { resolve, reject });
    return promise;
  }

  function d1Error(message) {
    const cause = message.startsWith("D1_ERROR: ") ? message.slice("D1_ERROR: ".length) : message;
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
        if (Number.isFinite(value)) return value;
        break;
      case "boolean":
        return value ? 1 : 0;
      case "object":
        if (value instanceof ArrayBufferCtor) return { blob: Array.from(new Uint8ArrayCtor(value)) };
        if (ArrayBuffer.isView(value)) {
          return { blob: Array.from(new Uint8ArrayCtor(value.buffer, value.byteOffset, value.byteLength)) };
        }
        // As on D1, an array of bytes binds as a BLOB (the shape D1 answers BLOBs in).
        if (Array.isArray(value) && value.every((byte) => Number.isInteger(byte) && byte >= 0 && byte <= 255)) {
          return { blob: value.slice() };
        }
        break;
    }
    throw new Error(`D1_TYPE_ERROR: Type '${typeof value}' not supported for value '${String(value)}'`);
  }

  function d1Result(result) {
    const results = result.rows.map((row) => {
      const object = {};
      result.columns.forEach((column, index) => { object[column] = row[index]; });
      return object;
    });
    return { success: true, meta: assign({ served_by: "terrarium" }, result.meta), results };
  }

  // Each prepared statement's SQL and parameters, as the host takes them; not the app's to see.
  const statements = new WeakMap();

  class D1PreparedStatement {
    constructor(sql, params) {
      statements.set(this, { sql, params });
    }

    bind(...values) {
      return new D1PreparedStatement(statements.get(this).sql, values.map(d1Value));
    }

    async #run() {
      return (await sqlCall({ batch: [statements.get(this)] })).answer[0];
    }

    async first(column) {
      const result = d1Result(await this.#run());
      const row = result.results[0];
      if (column === undefined) return row ?? null;
      if (row === undefined) return null;
      if (!Object.prototype.hasOwnProperty.call(row, column)) {
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
      return options?.columnNames ? [result.columns, ...result.rows] : result.rows;
    }
  }

  class D1Database {
    prepare(sql) {
      if (typeof sql !== "string") throw new TypeError("D1: prepare() takes the SQL as a string");
      return new D1PreparedStatement(sql, []);
    }

    async batch(list) {
      if (!Array.isArray(list) || !list.every((statement) => statement instanceof D1PreparedStatement)) {
        throw new TypeError("D1: batch() takes an array of statements made by prepare()");
      }
      if (list.length === 0) throw new Error("D1_ERROR: No SQL statements detected.");
      const results = (await sqlCall({ batch: list.map((statement) => statements.get(statement)) })).answer;
      return results.map(d1Result);
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
    const pending = call(MapGet, pendingSql, id);
    if (pending === undefined) return;
    call(MapDelete, pendingSql, id);
    if (ok) pending.resolve(record({ answer: JSONParse(json) }));
    else pending.reject(d1Error(json));
  }

  internal.makeD1 = makeD1;
  internal.settleSql = settleSql;
  call(ArrayPush, internal.resets, () => call(MapClear, pendingSql));
}
