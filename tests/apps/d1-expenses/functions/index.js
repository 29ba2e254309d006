// Expenses on D1: a schema made on first use, inserts with bound values, totals, a batch that
// writes an expense and its ledger line together, and routes for each part of the API the
// tests check. /query runs any SQL it is given (what an attacker's app would try), /reset drops
// the tables.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS expenses (id INTEGER PRIMARY KEY AUTOINCREMENT, who TEXT NOT NULL, what TEXT NOT NULL, cents INTEGER NOT NULL CHECK (cents > 0));
CREATE TABLE IF NOT EXISTS ledger (expense_id INTEGER NOT NULL REFERENCES expenses(id), note TEXT NOT NULL);
`;

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const db = env.DB;
    const q = (name) => url.searchParams.get(name);
    const caught = async (work) => {
      try {
        return { ok: await work() };
      } catch (error) {
        return { error: `${error.constructor.name}: ${error.message}` };
      }
    };
    if (url.pathname !== "/query" && url.pathname !== "/reset") await db.exec(SCHEMA);
    switch (url.pathname) {
      case "/reset":
        await db.batch([db.prepare("DROP TABLE IF EXISTS ledger"), db.prepare("DROP TABLE IF EXISTS expenses")]);
        return Response.json({ reset: true });
      case "/add": {
        // The expense and its ledger line in one transaction: both or neither.
        const { who, what, cents } = await request.json();
        const [inserted] = await db.batch([
          db.prepare("INSERT INTO expenses (who, what, cents) VALUES (?1, ?2, ?3)").bind(who, what, cents),
          db.prepare("INSERT INTO ledger (expense_id, note) VALUES (last_insert_rowid(), ?)").bind(`${who}: ${what}`),
        ]);
        return Response.json({ id: inserted.meta.last_row_id, changes: inserted.meta.changes });
      }
      case "/list": {
        const { results } = await db.prepare("SELECT id, who, what, cents FROM expenses ORDER BY id").all();
        return Response.json(results);
      }
      case "/total":
        return Response.json({
          total: await db.prepare("SELECT coalesce(sum(cents), 0) AS total FROM expenses WHERE who = ?").bind(q("who")).first("total"),
        });
      case "/check": {
        const expenses = await db.prepare("SELECT count(*) AS n FROM expenses").first("n");
        const ledger = await db.prepare("SELECT count(*) AS n FROM ledger").first("n");
        const orphans = await db.prepare("SELECT count(*) AS n FROM expenses WHERE id NOT IN (SELECT expense_id FROM ledger)").first("n");
        const ids = await db.prepare("SELECT id FROM expenses ORDER BY id").raw();
        return Response.json({ expenses, ledger, orphans, ids: ids.map(([id]) => id) });
      }
      case "/api": {
        await db.prepare("CREATE TABLE IF NOT EXISTS kinds (n INTEGER, r REAL, t TEXT, b BLOB, empty TEXT)").run();
        await db.prepare("DELETE FROM kinds").run();
        const insert = await db.prepare("INSERT INTO kinds VALUES (?, ?, ?, ?, ?)").bind(42, 1.5, "text", new Uint8Array([1, 2, 255]), null).run();
        const booleans = await db.prepare("SELECT CAST(? AS INTEGER) AS yes, CAST(? AS INTEGER) AS no").bind(true, false).first();
        const byteArray = await db.prepare("SELECT hex(?) AS hex").bind([1, 2, 255]).first("hex");
        const all = await db.prepare("SELECT * FROM kinds").all();
        return Response.json({
          insert: { success: insert.success, changes: insert.meta.changes, rows_written: insert.meta.rows_written, changed_db: insert.meta.changed_db },
          first: await db.prepare("SELECT * FROM kinds").first(),
          firstColumn: await db.prepare("SELECT t FROM kinds").first("t"),
          firstOfNothing: await db.prepare("SELECT * FROM kinds WHERE n = 0").first(),
          raw: await db.prepare("SELECT n, t FROM kinds").raw(),
          rawWithNames: await db.prepare("SELECT n, t FROM kinds").raw({ columnNames: true }),
          allKeys: Object.keys(all).sort(),
          metaKeys: Object.keys(all.meta).sort(),
          booleans,
          byteArray,
          exec: await db.exec("CREATE TABLE IF NOT EXISTS a (x);\nCREATE TABLE IF NOT EXISTS b (y);"),
        });
      }
      case "/errors":
        return Response.json({
          missingColumn: await caught(() => db.prepare("SELECT 1 AS one").first("two")),
          syntax: await caught(() => db.prepare("SELEKT 1").all()),
          noTable: await caught(() => db.prepare("SELECT * FROM missing").all()),
          undefinedValue: await caught(() => db.prepare("SELECT ?").bind(undefined)),
          objectValue: await caught(() => db.prepare("SELECT ?").bind({ a: 1 })),
          begin: await caught(() => db.prepare("BEGIN TRANSACTION").run()),
          check: await caught(() => db.prepare("INSERT INTO expenses (who, what, cents) VALUES ('x', 'y', -1)").run()),
          rolledBack: await caught(() => db.batch([
            db.prepare("INSERT INTO expenses (who, what, cents) VALUES ('ghost', 'first half', 1)"),
            db.prepare("INSERT INTO nowhere VALUES (1)"),
          ])),
          ghosts: await db.prepare("SELECT count(*) AS n FROM expenses WHERE who = 'ghost'").first("n"),
        });
      case "/query": {
        const sql = await request.text();
        return Response.json(await caught(async () => (await db.prepare(sql).all()).results));
      }
      default:
        return new Response("not found", { status: 404 });
    }
  },
};
