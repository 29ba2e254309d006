// Serves bench/data-worker.js under Miniflare (workerd with its local KV and D1) on a loopback
// port, and prints "listening on http://127.0.0.1:PORT" once it answers.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

const here = dirname(fileURLToPath(import.meta.url));
const state = process.argv[2];
const mf = new Miniflare({
  modules: true,
  script: readFileSync(join(here, "..", "data-worker.js"), "utf8"),
  kvNamespaces: ["KV"],
  d1Databases: ["DB"],
  kvPersist: join(state, "kv"),
  d1Persist: join(state, "d1"),
  host: "127.0.0.1",
  port: 0,
});
const url = await mf.ready;
console.log(`listening on ${url.origin}`);
process.on("SIGTERM", async () => {
  await mf.dispose();
  process.exit(0);
});
