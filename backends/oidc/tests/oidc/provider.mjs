// A real OpenID provider for keystation-oidc's tests: panva's `oidc-provider` (an
// OpenID Certified implementation, https://github.com/panva/node-oidc-provider), started on
// 127.0.0.1 with its own freshly generated signing key.
//
//   node provider.mjs [--port N] [--id-token-ttl SECONDS] [--client-id ID] [--client-secret S]
//
// Prints one line of JSON on stdout once it listens:
//   {"issuer":"http://127.0.0.1:N","port":N,"pid":P}
// and serves until killed (SIGTERM/SIGINT) or until its stdin closes (so a crashed test
// leaves no provider behind).
//
// Accounts (the devInteractions login form accepts any password):
//   alice  email alice@example.com, email_verified true,  groups ["ops", "dev"]
//   bob    email bob@example.com,   email_verified false, groups ["dev"]
//   carol  email carol@other.example, email_verified true, groups ["sales"]
// Two confidential clients: client_id "keystation" (or --client-id), secret "keystation-secret"
// (or --client-secret), redirect_uri http://127.0.0.1:<port>/cb, client_secret_basic; and a
// second client, "other-app" (secret "other-app-secret"), whose tokens are for someone else.
// Claims of the email and groups scopes are put into the ID token
// (conformIdTokenClaims: false), as Dex, Keycloak and Okta do with their defaults.

import http from 'node:http';

import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const port = Number(arg('port', '0'));
const idTokenTtl = Number(arg('id-token-ttl', '600'));
const clientId = arg('client-id', 'keystation');
const clientSecret = arg('client-secret', 'keystation-secret');

const ACCOUNTS = {
  alice: { email: 'alice@example.com', email_verified: true, groups: ['ops', 'dev'] },
  bob: { email: 'bob@example.com', email_verified: false, groups: ['dev'] },
  carol: { email: 'carol@other.example', email_verified: true, groups: ['sales'] },
};

// The provider must know its port before it is built (issuer, redirect URI), so listen
// first on an ephemeral port when none was given, then build the provider on that port.
const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
const actual = server.address().port;
const issuer = `http://127.0.0.1:${actual}`;

// A signing key of this instance alone: two instances never share keys (the library's
// built-in development key would be the same everywhere). RS256, the ID token default
// (OpenID Connect Core §3.1.3.7), plus an ES256 key so the JWKS holds two.
const rsa = await generateKeyPair('RS256', { extractable: true, modulusLength: 2048 });
const ec = await generateKeyPair('ES256', { extractable: true });
const rsaJwk = { ...(await exportJWK(rsa.privateKey)), alg: 'RS256', use: 'sig', kid: `rsa-${actual}` };
const ecJwk = { ...(await exportJWK(ec.privateKey)), alg: 'ES256', use: 'sig', kid: `ec-${actual}` };

const provider = new Provider(issuer, {
  clients: [clientId, 'other-app'].map((id) => ({
    client_id: id,
    client_secret: id === clientId ? clientSecret : 'other-app-secret',
    redirect_uris: [`${issuer}/cb`],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  })),
  jwks: { keys: [rsaJwk, ecJwk] },
  cookies: { keys: [`cookie-key-${actual}-${Math.random()}`] },
  scopes: ['openid', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  ttl: {
    IdToken: idTokenTtl,
    AccessToken: 600,
    AuthorizationCode: 60,
    Interaction: 600,
    Session: 600,
    Grant: 600,
  },
  async findAccount(ctx, id) {
    const account = ACCOUNTS[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, ...account };
      },
    };
  },
});
provider.on('server_error', (ctx, err) => console.error('provider server_error', err));

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer, port: actual, pid: process.pid })}\n`);

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
