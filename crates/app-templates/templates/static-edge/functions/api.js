// This function runs on the Terrarium server for every request to /api/...
// It receives the request and returns a response, like a Cloudflare Worker.
// console.log lines show up in `terrarium logs`.

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    // Read ?name=... from the address; use "friend" when it is missing.
    const name = url.searchParams.get("name") || "friend";
    // env.GREETING comes from spec.vars in terrarium.yaml.
    const greeting = env.GREETING || "Hello";
    console.log(`greeting ${name}`);
    return Response.json({
      message: `${greeting}, ${name}!`,
      time: new Date().toISOString(),
    });
  },
};
