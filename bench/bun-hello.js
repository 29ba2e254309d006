// Bun's bare hello-world server, for comparison in the same run.
const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch() { return new Response("Hello, world!"); } });
console.log(`listening on ${server.hostname}:${server.port}`);
