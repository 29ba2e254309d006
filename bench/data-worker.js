// The data benchmark's app, the same code under Terrarium and under Miniflare: a KV counter
// (read, add one, write back) and a D1 insert followed by a select.
export default {
  async fetch(request, env) {
    const path = new URL(request.url).pathname;
    if (path.endsWith("/setup")) {
      await env.DB.exec("CREATE TABLE IF NOT EXISTS hits (id INTEGER PRIMARY KEY, at INTEGER NOT NULL)");
      return new Response("ready");
    }
    if (path.endsWith("/kv")) {
      const count = parseInt((await env.KV.get("counter")) ?? "0", 10) + 1;
      await env.KV.put("counter", String(count));
      return new Response(String(count));
    }
    if (path.endsWith("/d1")) {
      const { meta } = await env.DB.prepare("INSERT INTO hits (at) VALUES (?)").bind(Date.now()).run();
      const at = await env.DB.prepare("SELECT at FROM hits WHERE id = ?").bind(meta.last_row_id).first("at");
      return new Response(String(at));
    }
    return new Response("not found", { status: 404 });
  },
};
