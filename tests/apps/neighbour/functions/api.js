// Answers with its env var, and keeps a counter in module state to prove per-app isolation.
globalThis.counter = (globalThis.counter || 0);

export default {
  async fetch(request, env, ctx) {
    globalThis.counter += 1;
    const url = new URL(request.url);
    if (url.pathname === "/api/stream") {
      // The Workers way to stream: answer with a TransformStream's readable, write in waitUntil.
      const { readable, writable } = new TransformStream();
      const writer = writable.getWriter();
      const encoder = new TextEncoder();
      ctx.waitUntil((async () => {
        for (const part of ["streamed ", "through a ", "TransformStream"]) {
          await new Promise((resolve) => setTimeout(resolve, 1));
          await writer.write(encoder.encode(part));
        }
        await writer.close();
      })());
      const body = readable.pipeThrough(new TextDecoderStream()).pipeThrough(new TextEncoderStream());
      return new Response(body, { headers: { "content-type": "text/plain; charset=utf-8" } });
    }
    if (url.pathname === "/api/global") {
      return Response.json({ leakedLimitsGlobal: typeof globalThis.limitsSecret });
    }
    return Response.json({ greeting: env.GREETING, path: url.pathname, count: globalThis.counter });
  },
};
