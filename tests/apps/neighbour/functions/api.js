// Answers with its env var, and keeps a counter in module state to prove per-app isolation.
globalThis.counter = (globalThis.counter || 0);

export default {
  async fetch(request, env) {
    globalThis.counter += 1;
    const url = new URL(request.url);
    if (url.pathname === "/api/global") {
      return Response.json({ leakedLimitsGlobal: typeof globalThis.limitsSecret });
    }
    return Response.json({ greeting: env.GREETING, path: url.pathname, count: globalThis.counter });
  },
};
