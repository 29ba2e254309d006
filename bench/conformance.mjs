// Runs the Web-platform conformance suites (crates/engine-js/tests/conformance) under another
// runtime, for `bench/conformance`: `node bench/conformance.mjs workerd DIR` (through Miniflare)
// or `bun bench/conformance.mjs bun DIR`. DIR holds the suites with the WPT data as modules.
// Prints one JSON line: { suite: [passed, total], ... }.
const [runtime, dir] = process.argv.slice(2);
const SUITES = ["headers", "body", "request", "response", "encoding", "labels", "blob", "formdata", "urlsearchparams", "url", "streams", "tamper"];

let call;
let close = async () => {};
if (runtime === "workerd") {
  const { createRequire } = await import("node:module");
  const require = createRequire(new URL("./miniflare/package.json", import.meta.url));
  const { Miniflare } = await import(require.resolve("miniflare"));
  const mf = new Miniflare({
    modules: true,
    scriptPath: `${dir}/runner.js`,
    modulesRoot: dir,
    modulesRules: [{ type: "ESModule", include: ["**/*.js"] }],
    compatibilityDate: "2026-04-01",
  });
  call = async (suite) => (await mf.dispatchFetch(`http://conformance.test/${suite}`)).json();
  close = () => mf.dispose();
} else {
  const runner = (await import(`${dir}/runner.js`)).default;
  call = async (suite) => (await runner.fetch(new Request(`http://conformance.test/${suite}`))).json();
}
const counts = {};
for (const suite of SUITES) {
  try {
    // A suite that never answers (a runtime hanging on a case) counts as none passed.
    let timer;
    const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error("no answer in 60 s")), 60_000); });
    const answer = await Promise.race([call(suite), timeout]);
    clearTimeout(timer);
    counts[suite] = [answer.passed.length, answer.passed.length + answer.failed.length];
  } catch (error) {
    counts[suite] = [0, 0, String(error.message ?? error)];
  }
}
await close();
console.log(JSON.stringify(counts));
