// Waits (without using CPU) when asked to, so a test can hold the app's only concurrency slot.
export default {
  async fetch(request) {
    const ms = Number(new URL(request.url).searchParams.get("wait") || "0");
    await new Promise((resolve) => setTimeout(resolve, ms));
    return new Response("done");
  },
};
