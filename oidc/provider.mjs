// A real OpenID Connect provider (`oidc-provider` from the npm registry) with Casework's
// demo people as its accounts: for the tests and `casework up --oidc-demo`, never for
// production. One client (Casework), the authorization code flow with PKCE, ID tokens
// carrying email, name and groups, JWT access tokens for the resource `urn:casework:api`
// (audience `casework-api`), RP-initiated logout, and a new signing key on SIGHUP (the
// old one dropped), so a client's key rotation can be tested.
//
// Settings (environment): OIDC_PORT, OIDC_ISSUER (default http://127.0.0.1:$OIDC_PORT),
// OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URIS and OIDC_POST_LOGOUT_URIS
// (space-separated), OIDC_PEOPLE_CSV (email,name,manager_email,roles), OIDC_PASSWORD (the
// one demo password, default "casework"). Prints "listening ISSUER" once it answers.
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { parse as parseQuery } from 'node:querystring';

import Provider from 'oidc-provider';

const env = process.env;
const port = Number(env.OIDC_PORT || 0);
const issuer = env.OIDC_ISSUER || `http://127.0.0.1:${port}`;
const password = env.OIDC_PASSWORD || 'casework';
const RESOURCE = 'urn:casework:api';
const AUDIENCE = 'casework-api';

function people(path) {
  const accounts = new Map();
  if (!path) return accounts;
  const [, ...lines] = readFileSync(path, 'utf8').split(/\r?\n/);
  for (const line of lines) {
    if (!line.trim()) continue;
    const [email, name, , roles = ''] = line.split(',');
    const groups = roles.split(';').filter(Boolean);
    accounts.set(email.trim().toLowerCase(), { email: email.trim().toLowerCase(), name, groups });
  }
  return accounts;
}

const accounts = people(env.OIDC_PEOPLE_CSV);

function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const page = (title, body) => `<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>${escape(title)}</title></head><body><main><h1>${escape(title)}</h1>${body}</main></body></html>`;

const cookieKeys = [randomBytes(32).toString('hex')];

function configuration(key) {
  return {
    clients: [
      {
        client_id: env.OIDC_CLIENT_ID || 'casework',
        client_secret: env.OIDC_CLIENT_SECRET || 'casework-demo-secret',
        redirect_uris: (env.OIDC_REDIRECT_URIS || '').split(' ').filter(Boolean),
        post_logout_redirect_uris: (env.OIDC_POST_LOGOUT_URIS || '').split(' ').filter(Boolean),
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [key] },
    cookies: { keys: cookieKeys },
    pkce: { required: () => true },
    conformIdTokenClaims: false, // the ID token carries email, name and groups itself
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'groups'] },
    scopes: ['openid', 'email', 'profile'],
    async findAccount(ctx, id) {
      const person = accounts.get(id);
      if (!person) return undefined;
      return {
        accountId: id,
        async claims() {
          return { sub: id, email: id, email_verified: true, name: person.name, groups: person.groups };
        },
      };
    },
    async extraTokenClaims(ctx, token) {
      const person = accounts.get(token.accountId);
      return person ? { email: person.email, groups: person.groups } : undefined;
    },
    // Casework is the organisation's own application: no consent screen.
    async loadExistingGrant(ctx) {
      const { client, session } = ctx.oidc;
      const found = session.grantIdFor(client.clientId);
      if (found) return ctx.oidc.provider.Grant.find(found);
      const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
      grant.addOIDCScope('openid email profile');
      grant.addResourceScope(RESOURCE, 'openid email profile');
      await grant.save();
      session.ensureClientContainer(client.clientId);
      session.grantIdFor(client.clientId, grant.jti);
      return grant;
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          ctx.body = page(
            'Sign out of the demo provider?',
            `${form}<button type="submit" form="op.logoutForm" name="logout" value="yes">Sign out</button>`,
          );
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, indicator) => {
          if (indicator !== RESOURCE) throw new Provider.errors.InvalidTarget();
          return {
            scope: 'openid email profile',
            audience: AUDIENCE,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 3600,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    ttl: { IdToken: 3600, AccessToken: 3600, Session: 3600 * 12, Interaction: 600, Grant: 3600 * 12 },
  };
}

let provider = new Provider(issuer, configuration(signingKey()));
provider.proxy = false;

process.on('SIGHUP', () => {
  // A new signing key, the old one gone: clients find the new kid in the JWKS.
  provider = new Provider(issuer, configuration(signingKey()));
  console.log('rotated');
});

function readBody(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.on('data', (chunk) => {
      data += chunk;
      if (data.length > 10000) reject(new Error('too large'));
    });
    req.on('end', () => resolve(parseQuery(data)));
    req.on('error', reject);
  });
}

function loginForm(uid, error = '') {
  const message = error ? `<p role="alert">${escape(error)}</p>` : '';
  return page(
    'Sign in to the demo provider',
    `${message}<form method="post" action="/interaction/${escape(uid)}/login">
<label for="login">Email</label> <input id="login" name="login" type="email" autocomplete="username" required>
<label for="password">Password</label> <input id="password" name="password" type="password" required>
<button type="submit">Sign in</button></form>`,
  );
}

async function interaction(req, res) {
  const url = new URL(req.url, issuer);
  const [, , uid, step] = url.pathname.split('/');
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(loginForm(uid));
    return;
  }
  if (req.method === 'POST' && step === 'login') {
    const form = await readBody(req);
    const email = String(form.login || '').trim().toLowerCase();
    if (!accounts.has(email) || form.password !== password) {
      res.writeHead(401, { 'content-type': 'text/html; charset=utf-8' });
      res.end(loginForm(uid, 'Unknown email or wrong password.'));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: email } }, { mergeWithLastSubmission: false });
    return;
  }
  res.writeHead(405);
  res.end();
}

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`interaction failed: ${err.message}`);
    });
    return;
  }
  provider.callback()(req, res);
});

server.listen(port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
