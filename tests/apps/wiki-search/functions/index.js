// Ranks the wiki's pages against a question by cosine similarity of their embeddings.
const PAGES = [
  "How to request a new laptop from IT: open a ticket in the service desk.",
  "The cafeteria serves lunch from noon until two in the afternoon.",
  "Expense reports are due on the fifth working day of each month.",
];

const dot = (a, b) => a.reduce((sum, value, index) => sum + value * b[index], 0);

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    try {
      if (url.pathname === "/embed") {
        const { text } = await request.json();
        return Response.json(await env.AI.run("embed-default", { text }));
      }
      if (url.pathname === "/search") {
        const question = url.searchParams.get("q");
        const { data } = await env.AI.run("embed-default", { text: [question, ...PAGES] });
        const ranked = PAGES.map((page, index) => ({ page, score: dot(data[0], data[index + 1]) }))
          .sort((a, b) => b.score - a.score);
        return Response.json(ranked);
      }
      if (url.pathname === "/other-model") {
        return Response.json(await env.AI.run("chat-default", { text: "hi" }));
      }
    } catch (error) {
      return Response.json({ error: error.message, type: error.constructor.name }, { status: 400 });
    }
    return new Response("not found", { status: 404 });
  },
};
