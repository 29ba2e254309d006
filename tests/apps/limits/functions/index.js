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
      case "/work": {
        // A fixed amount of computation (?n= steps): the same CPU time however busy the machine.
        const n = Number(url.searchParams.get("n") ?? "1000");
        let x = 0;
        for (let i = 0; i < n; i++) x = (x * 31 + i) % 1000003;
        return new Response(String(x));
      }
      case "/bomb": {
        const hoard = [];
        while (true) hoard.push(new Uint8Array(8 * 1024 * 1024));
      }
      case "/recurse":
        return new Response(String(recurse(0)));
      case "/huge": {
        // An endless stream of 1 MiB chunks: the platform's response cap must stop it.
        const chunk = new TextEncoder().encode("x".repeat(1024 * 1024));
        return new Response(new ReadableStream({ pull(controller) { controller.enqueue(chunk); } }));
      }
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
