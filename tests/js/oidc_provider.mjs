// A real OpenID provider for credd's end-to-end tests: npm's oidc-provider, configured for one
// public native client (authorization code with PKCE S256 on a loopback redirect, refresh tokens,
// the device authorization grant), its built-in login and consent forms, and two test-only routes.
//
//     node oidc_provider.mjs '{"modules": DIR, "port": PORT, ...}'
//
// The JSON argument (every key but `modules` and `port` optional):
//   modules              the directory oidc-provider was installed into (its package.json)
//   port                 serves http://127.0.0.1:PORT, which is also the issuer
//   client_id            the native client's id (default "credd")
//   id_token_ttl         seconds an ID token is valid (default 3600)
//   access_token_ttl     seconds an access token is valid (default 3600)
//   refresh_token_ttl    seconds a refresh token is valid, counted from its issue (default 14 days)
//   rotate_refresh_tokens  whether each refresh answers with a new refresh token and retires the
//                        old one (default true)
//   device_poll_interval the `interval` of device authorization answers, in seconds (default 5)
//
// Prints `listening PORT` on stdout once it serves; exits 3 when the port is taken (the caller
// picks another) and at once when stdin closes, so it never outlives whoever started it.
//
// Where it departs from oidc-provider's defaults, and why:
// - `offline_access` is honoured without `prompt=consent` (as Okta, Entra ID, Keycloak and Auth0
//   do): oidc-provider follows OpenID Connect Core and drops the scope from an authorization
//   request without it, so such a request gets `consent` added to its prompt before oidc-provider
//   sees it. A refresh token is issued exactly when the grant has `offline_access`.
// - ID tokens carry the scopes' claims (`email`), not only `sub` (conformIdTokenClaims: false).
// - The store is a plain in-memory map (oidc-provider's own is an LRU that may evict), so
//   `POST /test/forget-grants` can drop everything at once: the next refresh is refused with
//   invalid_grant, as after an administrator revoked the user's sessions.
// - Device authorization answers carry `interval` (oidc-provider sends none, which means 5 s),
//   so that tests can make clients poll sooner. oidc-provider never answers slow_down.
// - `GET /test/stats` counts authorization requests, device authorizations and token requests by
//   grant_type (and their errors), for single-flight checks.

import { createRequire } from 'node:module';
import { generateKeyPair, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const DAY = 24 * 60 * 60;

const options = JSON.parse(process.argv[2] ?? '{}');
if (!options.modules || !options.port) {
  console.error('usage: node oidc_provider.mjs \'{"modules": DIR, "port": PORT, ...}\'');
  process.exit(2);
}
const port = Number(options.port);
const clientId = options.client_id ?? 'credd';
const idTokenTtl = options.id_token_ttl ?? 3600;
const accessTokenTtl = options.access_token_ttl ?? 3600;
const refreshTokenTtl = options.refresh_token_ttl ?? 14 * DAY;
const rotateRefreshTokens = options.rotate_refresh_tokens ?? true;
const devicePollInterval = options.device_poll_interval ?? 5;
const issuer = `http://127.0.0.1:${port}`;

// Whoever started us is gone once our stdin closes, however it ended.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();

// The signing key is made on libuv's pool while node loads oidc-provider (each takes 0.1-0.3 s).
const keyPair = promisify(generateKeyPair)('rsa', { modulusLength: 2048 });

// oidc-provider lives in target/, not beside this script: resolve it from there.
const entry = createRequire(join(options.modules, 'package.json')).resolve('oidc-provider');
const { default: Provider } = await import(pathToFileURL(entry).href);

/** Every model's records: model name -> id -> { payload, expiresAt (ms) }. */
const stores = new Map();

/** oidc-provider's storage interface over `stores`. */
class MemoryAdapter {
  constructor(model) {
    if (!stores.has(model)) stores.set(model, new Map());
    this.records = stores.get(model);
  }

  live(id) {
    const record = this.records.get(id);
    if (!record) return undefined;
    if (record.expiresAt <= Date.now()) {
      this.records.delete(id);
      return undefined;
    }
    return record.payload;
  }

  findBy(field, value) {
    for (const [id, { payload }] of this.records) {
      if (payload[field] === value) return this.live(id);
    }
    return undefined;
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : Infinity;
    this.records.set(id, { payload, expiresAt });
  }

  async find(id) { return this.live(id); }

  async findByUserCode(userCode) { return this.findBy('userCode', userCode); }

  async findByUid(uid) { return this.findBy('uid', uid); }

  async consume(id) {
    const payload = this.live(id);
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) { this.records.delete(id); }

  async revokeByGrantId(grantId) {
    for (const [id, { payload }] of this.records) {
      if (payload.grantId === grantId) this.records.delete(id);
    }
  }
}

const stats = {
  authorization_requests: 0,
  device_authorizations: 0,
  token_requests: {},
  token_errors: {},
};

function count(table, key) {
  table[key] = (table[key] ?? 0) + 1;
}

const { privateKey } = await keyPair;
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: randomBytes(8).toString('hex'),
  use: 'sig',
  alg: 'RS256',
};

const provider = new Provider(issuer, {
  adapter: MemoryAdapter,
  clients: [
    {
      client_id: clientId,
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      // RFC 8252 section 7.3: for a native client oidc-provider accepts this with any port.
      redirect_uris: ['http://127.0.0.1/oauth/callback'],
      grant_types: ['authorization_code', 'refresh_token', DEVICE_GRANT],
      response_types: ['code'],
      id_token_signed_response_alg: 'RS256',
    },
  ],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
  },
  pkce: { required: () => true },
  scopes: ['openid', 'offline_access', 'email'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  conformIdTokenClaims: false,
  async findAccount(_ctx, login) {
    return {
      accountId: login,
      async claims() {
        return { sub: login, email: `${login}@acme.example`, email_verified: true };
      },
    };
  },
  async issueRefreshToken(_ctx, client, source) {
    return client.grantTypeAllowed('refresh_token') && source.scopes.has('offline_access');
  },
  rotateRefreshToken: () => rotateRefreshTokens,
  ttl: {
    IdToken: idTokenTtl,
    AccessToken: accessTokenTtl,
    RefreshToken: refreshTokenTtl,
    // A grant or session that ended first would end its refresh tokens early.
    Grant: Math.max(refreshTokenTtl, 14 * DAY),
    Session: Math.max(refreshTokenTtl, 14 * DAY),
    Interaction: 60 * 60,
    DeviceCode: 10 * 60,
    AuthorizationCode: 60,
  },
  renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html><html><head><title>oidc-provider error</title></head><body>
<h1>oops! something went wrong</h1>
<pre id="error">${escapeHtml(JSON.stringify(out))}</pre></body></html>`;
  },
});

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// The test-only routes, the offline_access rule, and the counting.
provider.use(async (ctx, next) => {
  if (ctx.path === '/test/stats' && ctx.method === 'GET') {
    ctx.body = stats;
    return;
  }
  if (ctx.path === '/test/forget-grants' && ctx.method === 'POST') {
    const forgotten = {};
    for (const [model, records] of stores) {
      if (records.size) forgotten[model] = records.size;
      records.clear();
    }
    ctx.body = { forgotten };
    return;
  }
  if (ctx.path === '/auth' && ctx.method === 'GET') {
    const query = new URLSearchParams(ctx.querystring);
    const scopes = (query.get('scope') ?? '').split(' ');
    const prompts = (query.get('prompt') ?? '').split(' ').filter(Boolean);
    if (scopes.includes('offline_access') && !prompts.includes('consent') && !prompts.includes('none')) {
      query.set('prompt', [...prompts, 'consent'].join(' '));
      ctx.querystring = query.toString();
    }
  }
  await next();
  switch (ctx.oidc?.route) {
    case 'authorization':
      stats.authorization_requests += 1;
      break;
    case 'device_authorization':
      stats.device_authorizations += 1;
      if (ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
        ctx.body.interval = devicePollInterval;
      }
      break;
    case 'token': {
      const grantType = ctx.oidc.params?.grant_type ?? '(none)';
      count(stats.token_requests, grantType);
      if (ctx.status >= 400) {
        stats.token_errors[grantType] ??= {};
        count(stats.token_errors[grantType], ctx.body?.error ?? `HTTP ${ctx.status}`);
      }
      break;
    }
    default:
  }
});

provider.on('server_error', (_ctx, error) => console.error('server_error:', error));

const server = provider.listen(port, '127.0.0.1');
server.on('listening', () => console.log(`listening ${port}`));
server.on('error', (error) => {
  console.error(`cannot serve on 127.0.0.1:${port}: ${error.message}`);
  process.exit(error.code === 'EADDRINUSE' ? 3 : 1);
});
