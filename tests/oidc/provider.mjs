// A real OpenID provider for Terrarium's tests: the certified `oidc-provider` package with one
// confidential client, two users and a login form a test can submit over plain HTTP.
//
//   node tests/oidc/provider.mjs    (env: PORT, 0 by default; REDIRECT_URIS=uri1,uri2;
//                                    DEVICE_CODE_TTL in seconds, 600 by default)
//
// Prints one line, `oidc provider listening on http://127.0.0.1:PORT`, and serves:
// - the provider itself: discovery, JWKS, /auth (code + PKCE S256), /device/auth and /device
//   (RFC 8628), /token; access tokens are RS256 JWTs with audience `terrarium`;
// - GET /interaction/:uid, a login form, and POST /interaction/:uid with `login` and `password`
//   (users `ana` and `bob`, password `password`); consent is implied for the one client;
// - POST /test/rotate-keys: new RS256 and ES256 signing keys, published first in the JWKS and used
//   for every token signed from then on; the old keys stay published. Answers `{ "kids": [...] }`;
// - POST /test/sign with a JSON body `{ "alg": "RS256" | "ES256", "claims": { ... } }`: a JWT signed
//   with the current key of that algorithm, with default `iss`, `sub`, `aud`, `iat`, `exp`
//   (claims given as null are left out), so tests can build expired or misaddressed tokens.
// The /test routes exist for tests only: a real provider has nothing like them.

import { createServer } from 'node:http';
import { createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

const CLIENT_ID = 'terrarium';
const CLIENT_SECRET = 'terrarium-secret';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
// The resource every access token is issued for, and the audience written into it.
const RESOURCE = 'urn:terrarium:api';
const AUDIENCE = 'terrarium';
const PASSWORD = 'password';
const USERS = new Map([
  ['ana', { name: 'Ana Lima', email: 'ana@example.test', groups: ['growth-team', 'admins'] }],
  ['bob', { name: 'Bob Stone', email: 'bob@example.test', groups: ['finance'] }],
]);
const redirectUris = (process.env.REDIRECT_URIS || 'http://127.0.0.1/callback').split(',').filter(Boolean);

// Private signing keys as JWKs, newest first: oidc-provider signs with the first key that fits.
let signingKeys = [newKey('RS256'), newKey('ES256')];
// Interaction cookies are signed with this key, so they survive a rebuild of the provider.
const cookieKeys = [randomBytes(32).toString('hex')];

function newKey(alg) {
  const { privateKey } = alg === 'RS256'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = `${alg.toLowerCase()}-${randomBytes(6).toString('hex')}`;
  return { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}

// The claims of a user, for ID tokens, userinfo and (through extraTokenClaims) access tokens.
function userClaims(login) {
  const user = USERS.get(login);
  return { sub: login, name: user.name, email: user.email, email_verified: true, groups: user.groups };
}

// Builds a provider over the current keys. Its state (sessions, grants, codes) lives in the
// in-memory adapter, which every instance of the module shares, so a rebuild keeps flows going.
function buildProvider(issuer) {
  return new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: redirectUris,
      grant_types: ['authorization_code', DEVICE_GRANT],
      response_types: ['code'],
      id_token_signed_response_alg: 'RS256',
    }],
    jwks: { keys: signingKeys },
    cookies: { keys: cookieKeys },
    pkce: { required: () => true },
    // Lifetimes in seconds, spelled out (the defaults print a notice each).
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      DeviceCode: Number(process.env.DEVICE_CODE_TTL || 600),
      Grant: 3600,
      IdToken: 3600,
      Interaction: 600,
      Session: 3600,
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    // Scope-requested claims go into the ID token too, so the relying party needs no userinfo call.
    conformIdTokenClaims: false,
    async findAccount(ctx, sub) {
      if (!USERS.has(sub)) return undefined;
      return { accountId: sub, claims: async () => userClaims(sub) };
    },
    async extraTokenClaims(ctx, token) {
      if (!token.accountId || !USERS.has(token.accountId)) return undefined;
      const { name, email, groups } = userClaims(token.accountId);
      return { name, email, groups };
    },
    // The one client is first-party: consent is implied, so the grant always covers the request.
    async loadExistingGrant(ctx) {
      const { client, session, params, resourceServers } = ctx.oidc;
      const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
      const grant = (grantId && await ctx.oidc.provider.Grant.find(grantId))
        || new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
      grant.addOIDCScope(String(params.scope || 'openid'));
      for (const [indicator, server] of Object.entries(resourceServers || {})) {
        grant.addResourceScope(indicator, server.scope);
      }
      await grant.save();
      return grant;
    },
    features: {
      devInteractions: { enabled: false },
      deviceFlow: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo(ctx, indicator) {
          if (indicator !== RESOURCE) throw new errors.InvalidTarget();
          return { scope: 'api', audience: AUDIENCE, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
        },
      },
    },
  });
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginPage(uid, message) {
  return `<!DOCTYPE html>
<html><head><title>Sign in</title></head><body>
<h1>Sign in</h1>${message ? `<p>${escapeHtml(message)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}">
  <input type="text" name="login" autofocus>
  <input type="password" name="password">
  <button type="submit">Sign in</button>
</form>
</body></html>`;
}

function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

// A compact JWS over `claims`, signed with the newest key for `alg` (RS256 or ES256).
function signJwt(alg, claims) {
  const jwk = signingKeys.find((key) => key.alg === alg);
  if (!jwk) throw new Error(`no signing key for ${alg}`);
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${encode({ alg, typ: 'JWT', kid: jwk.kid })}.${encode(claims)}`;
  const key = createPrivateKey({ key: jwk, format: 'jwk' });
  // JWS wants the raw r || s form of an ECDSA signature, not DER.
  const signature = sign('sha256', Buffer.from(input), alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key);
  return `${input}.${signature.toString('base64url')}`;
}

const server = createServer();
server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  let provider = buildProvider(issuer);
  let handle = provider.callback();

  server.on('request', async (req, res) => {
    try {
      const { pathname } = new URL(req.url, issuer);
      const interaction = pathname.match(/^\/interaction\/([\w-]+)$/);

      if (req.method === 'POST' && pathname === '/test/rotate-keys') {
        signingKeys = [newKey('RS256'), newKey('ES256'), ...signingKeys];
        provider = buildProvider(issuer);
        handle = provider.callback();
        return send(res, 200, 'application/json', JSON.stringify({ kids: [signingKeys[0].kid, signingKeys[1].kid] }));
      }

      if (req.method === 'POST' && pathname === '/test/sign') {
        const { alg = 'RS256', claims = {} } = JSON.parse((await readBody(req)) || '{}');
        const now = Math.floor(Date.now() / 1000);
        const defaults = { iss: issuer, sub: 'ana', aud: AUDIENCE, iat: now, exp: now + 300 };
        const merged = Object.fromEntries(
          Object.entries({ ...defaults, ...claims }).filter(([, value]) => value !== null),
        );
        return send(res, 200, 'application/jwt', signJwt(alg, merged));
      }

      if (interaction && req.method === 'GET') {
        // Fails when the interaction cookie is missing or stale, which a test should see.
        const { uid } = await provider.interactionDetails(req, res);
        return send(res, 200, 'text/html; charset=utf-8', loginPage(uid));
      }

      if (interaction && req.method === 'POST') {
        const { uid } = await provider.interactionDetails(req, res);
        const form = new URLSearchParams(await readBody(req));
        const login = form.get('login') || '';
        if (!USERS.has(login) || form.get('password') !== PASSWORD) {
          return send(res, 401, 'text/html; charset=utf-8', loginPage(uid, 'Wrong login or password.'));
        }
        // Redirects the browser back to the authorization (or device) flow, now signed in.
        return await provider.interactionFinished(req, res, { login: { accountId: login } }, {
          mergeWithLastSubmission: false,
        });
      }

      return handle(req, res);
    } catch (error) {
      send(res, 400, 'text/plain; charset=utf-8', `${error.name}: ${error.message}\n`);
    }
  });

  console.log(`oidc provider listening on ${issuer}`);
});
