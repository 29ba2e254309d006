// A small JSON API that shows what Terrarium edge functions can use:
//   GET  api/status            settings from spec.vars (env), the time, a fresh request id
//   GET  api/greet?name=Ada    URLSearchParams and env.GREETING
//   GET  api/uuid?count=3      crypto.randomUUID
//   POST api/echo              request.json(), request.text() or request.formData()
// Anything else answers a small HTML page that links to the endpoints.
// console.log lines show up in `terrarium logs demo/status`.

// Module state lives as long as one instance of the app: a new instance starts again at zero.
const INSTANCE_ID = crypto.randomUUID();
const STARTED_AT = Date.now();
let requestsServed = 0;

function status(env) {
  return {
    team: env.TEAM,
    environment: env.ENVIRONMENT,
    time: new Date().toISOString(),
    requestId: crypto.randomUUID(),
    instance: { id: INSTANCE_ID, requestsServed, uptimeMs: Date.now() - STARTED_AT },
  };
}

function greet(url, env) {
  const name = url.searchParams.get("name") || "stranger";
  const greeting = env.GREETING || "Hello";
  const message = `${greeting}, ${name}!`;
  // btoa and TextEncoder are there too: show the message base64-encoded and its size in bytes.
  const bytes = new TextEncoder().encode(message);
  return { message, bytes: bytes.length, base64: btoa(String.fromCharCode(...bytes)) };
}

function uuids(url) {
  const count = Number.parseInt(url.searchParams.get("count") || "1", 10);
  if (!Number.isInteger(count) || count < 1 || count > 20) {
    return Response.json({ error: "count must be a whole number from 1 to 20" }, { status: 400 });
  }
  return Response.json({ uuids: Array.from({ length: count }, () => crypto.randomUUID()) });
}

async function echo(request, url) {
  const contentType = request.headers.get("content-type") || "";
  let body;
  if (contentType.includes("application/json")) {
    try {
      body = await request.json();
    } catch (error) {
      return Response.json({ error: "the body is not valid JSON" }, { status: 400 });
    }
  } else if (contentType.includes("application/x-www-form-urlencoded")) {
    body = Object.fromEntries((await request.formData()).entries());
  } else {
    body = await request.text();
  }
  return Response.json({
    method: request.method,
    query: Object.fromEntries(url.searchParams.entries()),
    contentType,
    body,
  });
}

function home() {
  const html = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>status</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}code{background:#eee;padding:0 .3rem}</style>
</head>
<body>
<h1>status</h1>
<p>A JSON API served by one JavaScript function. Try:</p>
<ul>
<li><a href="api/status">api/status</a>: settings from <code>spec.vars</code> and a fresh request id</li>
<li><a href="api/greet?name=Ada">api/greet?name=Ada</a>: reads the query string</li>
<li><a href="api/uuid?count=3">api/uuid?count=3</a>: random ids</li>
<li><code>curl -d '{"hello":"world"}' -H 'content-type: application/json' …/api/echo</code>: echoes a body</li>
</ul>
</body>
</html>`;
  return new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } });
}

export default {
  async fetch(request, env, ctx) {
    requestsServed += 1;
    const url = new URL(request.url);
    // Match on the end of the path, so the app works both at /apps/demo/status/... and at its own host name.
    const path = url.pathname.replace(/\/+$/, "");
    console.log(`${request.method} ${url.pathname}`);

    if (path.endsWith("/api/status")) {
      return Response.json(status(env));
    }
    if (path.endsWith("/api/greet")) {
      return Response.json(greet(url, env));
    }
    if (path.endsWith("/api/uuid")) {
      return uuids(url);
    }
    if (path.endsWith("/api/echo")) {
      if (request.method !== "POST") {
        return Response.json({ error: "send a POST request with a body to api/echo" }, { status: 405 });
      }
      return echo(request, url);
    }
    if (path.includes("/api/")) {
      return Response.json({ error: `there is no endpoint at ${url.pathname}`, endpoints: ["api/status", "api/greet", "api/uuid", "api/echo"] }, { status: 404 });
    }
    return home();
  },
};
