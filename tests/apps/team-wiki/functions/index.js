// A wiki search: pages go in through the platform's text pipeline (redacted, deduplicated,
// embedded by the platform) or the Vectorize way (embedded with env.AI, upserted as vectors).
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    try {
      switch (url.pathname) {
        case "/pages": {
          const pages = await request.json();
          return Response.json(await env.WIKI.upsertText(pages));
        }
        case "/ask": {
          const found = await env.WIKI.queryText(url.searchParams.get("q"), {
            topK: Number(url.searchParams.get("k") || 3),
            returnText: true,
            returnMetadata: "all",
            filter: url.searchParams.has("team") ? { team: url.searchParams.get("team") } : undefined,
          });
          return Response.json(found);
        }
        case "/vectors": {
          // The way Workers examples write it: embed with Workers AI, upsert the vectors.
          const pages = await request.json();
          const { data } = await env.AI.run("embed-default", { text: pages.map((page) => page.text) });
          const vectors = pages.map((page, i) => ({ id: page.id, values: data[i], metadata: { title: page.title } }));
          return Response.json(await env.WIKI.upsert(vectors));
        }
        case "/search": {
          const { data } = await env.AI.run("embed-default", { text: [url.searchParams.get("q")] });
          return Response.json(await env.WIKI.query(data[0], { topK: 1, returnMetadata: "all" }));
        }
        case "/get": {
          const found = await env.WIKI.getByIds(url.searchParams.getAll("id"));
          return Response.json(found.map(({ id, metadata, values }) => ({ id, metadata, dimensions: values.length })));
        }
        case "/delete":
          return Response.json(await env.WIKI.deleteByIds(await request.json()));
        case "/describe":
          return Response.json(await env.WIKI.describe());
        case "/bad":
          return Response.json(await env.WIKI.query([1, 2, 3]));
      }
    } catch (error) {
      return Response.json({ error: error.message, type: error.constructor.name }, { status: 400 });
    }
    return new Response("not found", { status: 404 });
  },
};
