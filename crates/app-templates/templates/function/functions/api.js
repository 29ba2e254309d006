// This function runs on the Terrarium server for every request to the app.
// It receives the request and returns a response, like a Cloudflare Worker.
// console.log lines show up in `terrarium logs`.

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);

    // POST requests with a JSON body get the body back, with a note.
    if (request.method === "POST") {
      let body;
      try {
        body = await request.json();
      } catch (error) {
        return Response.json({ error: "send a JSON body, for example {\"name\": \"Ada\"}" }, { status: 400 });
      }
      console.log("received a JSON body");
      return Response.json({ received: body, note: "this is what you sent" });
    }

    // Other requests get a greeting. Try adding ?name=Ada to the address.
    const name = url.searchParams.get("name") || "friend";
    // env.GREETING comes from spec.vars in terrarium.yaml.
    const greeting = env.GREETING || "Hello";
    return Response.json({
      message: `${greeting}, ${name}!`,
      path: url.pathname,
      time: new Date().toISOString(),
    });
  },
};
