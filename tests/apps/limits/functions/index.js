// Each path misbehaves in one way; the platform must contain every one.
globalThis.limitsSecret = "only-visible-to-limits";

function recurse(n) {
  return recurse(n + 1) + 1;
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    switch (url.pathname) {
      case "/hello":
        console.log("hello from limits");
        return new Response("hello");
      case "/loop":
        while (true) {}
      case "/bomb": {
        const hoard = [];
        while (true) hoard.push("x".repeat(1024 * 1024) + hoard.length);
      }
      case "/recurse":
        return new Response(String(recurse(0)));
      case "/huge":
        return new Response("x".repeat(100 * 1024 * 1024));
      case "/throw":
        throw new Error("boom from the app");
      case "/bad-return":
        return 42;
      case "/fetch": {
        const target = url.searchParams.get("url");
        try {
          const response = await fetch(target);
          return Response.json({ ok: true, status: response.status, body: await response.text() });
        } catch (error) {
          return Response.json({ ok: false, error: String(error && error.message) }, { status: 502 });
        }
      }
      default:
        return new Response("not found", { status: 404 });
    }
  },
};
