// Echoes the signed-in user and the cookies this app receives.
export default {
  async fetch(request, env) {
    return Response.json({ user: env.USER ?? null, cookie: request.headers.get("cookie") });
  },
};
