// Relays the upstream's answer, or the reason fetch was refused.
export default {
  async fetch(request) {
    const target = new URL(request.url).searchParams.get("url");
    try {
      const response = await fetch(target, { headers: { "x-from": "upstream-app" } });
      return new Response(await response.text(), { status: response.status });
    } catch (error) {
      return Response.json({ error: String(error && error.message) }, { status: 502 });
    }
  },
};
