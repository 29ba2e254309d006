// Runs one suite per request (`/SUITE`) and answers `{ passed: [names], failed: [{ name, message }] }`.
import { assert } from "./harness.js";
import headers from "./headers.js";
import body from "./body.js";
import request from "./request.js";
import response from "./response.js";
import encoding from "./encoding.js";
import blob from "./blob.js";
import formdata from "./formdata.js";
import urlsearchparams from "./urlsearchparams.js";
import url from "./url.js";
import tamper from "./tamper.js";
import labels from "./labels.js";
import streams from "./streams.js";

const SUITES = { headers, body, request, response, encoding, blob, formdata, urlsearchparams, url, labels, streams, tamper };

export default {
  async fetch(request) {
    const name = new URL(request.url).pathname.slice(1);
    const register = SUITES[name];
    if (register === undefined) return new Response(`no suite ${name}`, { status: 404 });
    const cases = [];
    register((title, fn) => cases.push([title, fn]), assert);
    const passed = [];
    const failed = [];
    for (const [title, fn] of cases) {
      // A case that never settles fails by name instead of hanging the suite (except in the
      // tampering suite, whose cases replace the very built-ins a race would use).
      let timer;
      const hung = () => new Promise((_, reject) => { timer = setTimeout(() => reject(new Error("the case never settled")), 5000); });
      try {
        await (name === "tamper" ? fn() : Promise.race([fn(), hung()]));
        passed.push(title);
      } catch (error) {
        failed.push({ name: title, message: String(error && error.message !== undefined ? error.message : error) });
      } finally {
        clearTimeout(timer);
      }
    }
    return new Response(JSON.stringify({ passed, failed }), { headers: { "content-type": "application/json" } });
  },
};
