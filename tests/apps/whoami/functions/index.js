// Shows env.USER, whether an app token arrived, and the cookies and authorization the app sees.
export default {
  async fetch(request, env) {
    return Response.json({
      user: env.USER,
      identity: request.headers.get("x-terrarium-identity"),
      cookie: request.headers.get("cookie"),
      authorization: request.headers.get("authorization"),
    });
  },
};
