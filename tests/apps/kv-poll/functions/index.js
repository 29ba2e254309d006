// The Workers KV API as apps use it: votes (read-modify-write), results (list + get), and a
// route per part of the API the tests check.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const kv = env.KV;
    const q = (name) => url.searchParams.get(name);
    const caught = async (work) => {
      try {
        return { ok: await work() };
      } catch (error) {
        return { error: `${error.constructor.name}: ${error.message}` };
      }
    };
    switch (url.pathname) {
      case "/vote": {
        const key = `votes:${q("choice")}`;
        const votes = parseInt((await kv.get(key)) ?? "0", 10);
        await kv.put(key, String(votes + 1));
        return Response.json({ [q("choice")]: votes + 1 });
      }
      case "/results": {
        const results = {};
        let cursor;
        do {
          const page = await kv.list({ prefix: "votes:", cursor });
          for (const { name } of page.keys) results[name.slice(6)] = Number(await kv.get(name));
          cursor = page.list_complete ? undefined : page.cursor;
        } while (cursor);
        return Response.json(results);
      }
      case "/types": {
        await kv.put("profile", JSON.stringify({ name: "ana", lunch: "pizza" }), { metadata: { v: 2 } });
        await kv.put("bytes", new Uint8Array([1, 2, 3]));
        const stream = await kv.get("profile", { type: "stream" });
        const withMetadata = await kv.getWithMetadata("profile", "json");
        return Response.json({
          text: await kv.get("profile"),
          json: await kv.get("profile", "json"),
          arrayBuffer: [...new Uint8Array(await kv.get("bytes", "arrayBuffer"))],
          stream: await new Response(stream).text(),
          withMetadata: { value: withMetadata.value, metadata: withMetadata.metadata },
          missing: await kv.get("nope"),
          missingWithMetadata: await kv.getWithMetadata("nope"),
          deleted: await kv.delete("bytes").then(() => kv.get("bytes")),
        });
      }
      case "/limits":
        return Response.json({
          longKey: await caught(() => kv.get("k".repeat(513))),
          dot: await caught(() => kv.put(".", "x")),
          bigMetadata: await caught(() => kv.put("m", "x", { metadata: { blob: "x".repeat(2000) } })),
          shortTtl: await caught(() => kv.put("t", "x", { expirationTtl: 30 })),
          badValue: await caught(() => kv.put("v", 42)),
          badLimit: await caught(() => kv.list({ limit: 5000 })),
          badType: await caught(() => kv.get("profile", "xml")),
        });
      case "/counter":
        return Response.json({ count: await kv.increment(q("key") ?? "counter", Number(q("by") ?? 1)) });
      case "/lock": {
        const first = await kv.put("lock", "mine", { onlyIf: { absent: true } });
        const second = await kv.put("lock", "theirs", { onlyIf: { absent: true } });
        const swapped = await kv.put("lock", "released", { onlyIf: { etag: first } });
        const stale = await kv.put("lock", "late", { onlyIf: { etag: first } });
        return Response.json({ first: typeof first, second, swapped: typeof swapped, stale, value: await kv.get("lock") });
      }
      case "/expire":
        await kv.put("soon", "here", { expirationTtl: 60 });
        return Response.json({ soon: await kv.get("soon") });
      case "/soon":
        return Response.json({ soon: await kv.get("soon"), listed: (await kv.list({ prefix: "soon" })).keys.length });
      case "/page": {
        for (let i = 0; i < 5; i++) await kv.put(`page:${i}`, String(i), { metadata: { i } });
        const first = await kv.list({ prefix: "page:", limit: 2 });
        const second = await kv.list({ prefix: "page:", limit: 2, cursor: first.cursor });
        const rest = await kv.list({ prefix: "page:", cursor: second.cursor });
        return Response.json({ first, second, rest });
      }
      case "/fill": {
        // Writes ?count values of ?kib KiB each under fill:N; answers how many were stored.
        const blob = "x".repeat(Number(q("kib")) * 1024);
        let stored = 0;
        for (let i = 0; i < Number(q("count")); i++) {
          const put = await caught(() => kv.put(`fill:${i}`, blob));
          if (put.error) return Response.json({ stored, error: put.error });
          stored++;
        }
        return Response.json({ stored });
      }
      case "/remember":
        await kv.put("memo", q("value"));
        return Response.json({ memo: await kv.get("memo") });
      case "/drain": {
        for (const { name } of (await kv.list({ prefix: "fill:" })).keys) await kv.delete(name);
        return Response.json({ drained: true });
      }
      default:
        return new Response("not found", { status: 404 });
    }
  },
};
