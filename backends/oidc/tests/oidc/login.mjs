// Obtains an ID token from a provider started by provider.mjs through the provider's own
// authorization-code flow, as a browser and a relying party would: the authorization
// request (with PKCE S256, state and nonce), the devInteractions login form, the consent
// form, the redirect to the client's redirect_uri with the code, and the token request
// (client_secret_basic). Prints the ID token on stdout.
//
//   node login.mjs --issuer http://127.0.0.1:N --user alice [--client-id keystation]
//                  [--client-secret keystation-secret] [--nonce N] [--scope "openid email groups"]
//
// Nothing here shortcuts the provider: every step is an HTTP request to its endpoints,
// with its cookies carried between them.

import { createHash, randomBytes } from 'node:crypto';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const issuer = arg('issuer');
const user = arg('user', 'alice');
const clientId = arg('client-id', 'keystation');
const clientSecret = arg('client-secret', 'keystation-secret');
const scope = arg('scope', 'openid email groups');
const nonce = arg('nonce', randomBytes(16).toString('base64url'));
if (!issuer) {
  console.error('usage: node login.mjs --issuer URL --user NAME');
  process.exit(2);
}
const redirectUri = `${issuer}/cb`;

// A minimal cookie jar: every cookie the provider sets is sent back to it (one host; the
// provider scopes its cookies by path, which the jar honours).
const jar = new Map();
function remember(response) {
  for (const line of response.headers.getSetCookie()) {
    const [pair, ...attributes] = line.split(';').map((s) => s.trim());
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    const pathAttr = attributes.find((a) => a.toLowerCase().startsWith('path='));
    const path = pathAttr ? pathAttr.slice(5) : '/';
    const expired = attributes.some((a) => /^expires=thu, 01 jan 1970/i.test(a))
      || attributes.some((a) => /^max-age=0$/i.test(a));
    const key = `${name};${path}`;
    if (expired || value === '') jar.delete(key);
    else jar.set(key, { name, value, path });
  }
}
function cookieHeader(url) {
  const { pathname } = new URL(url);
  return [...jar.values()]
    .filter((c) => pathname.startsWith(c.path))
    .map((c) => `${c.name}=${c.value}`)
    .join('; ');
}

async function request(url, init = {}) {
  const headers = { ...(init.headers || {}) };
  const cookie = cookieHeader(url);
  if (cookie) headers.cookie = cookie;
  const response = await fetch(url, { ...init, headers, redirect: 'manual' });
  remember(response);
  return response;
}

// Follows redirects by hand (cookies between hops) until a page is served or the
// provider redirects to the client's redirect_uri.
async function follow(url, init) {
  let response = await request(url, init);
  for (let hops = 0; hops < 10; hops += 1) {
    if (response.status < 300 || response.status >= 400) return { response, url };
    const next = new URL(response.headers.get('location'), url).toString();
    if (next.startsWith(redirectUri)) return { redirect: next };
    url = next;
    response = await request(url);
  }
  throw new Error('too many redirects');
}

function formAction(html, base) {
  const match = html.match(/<form[^>]*action="([^"]+)"/);
  if (!match) throw new Error(`no form in the page:\n${html}`);
  return new URL(match[1].replace(/&amp;/g, '&'), base).toString();
}

async function submit(page, fields) {
  const html = await page.response.text();
  const action = formAction(html, page.url);
  return follow(action, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
}

const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();

const verifier = randomBytes(32).toString('base64url');
const challenge = createHash('sha256').update(verifier).digest('base64url');
const state = randomBytes(16).toString('base64url');
const authorize = new URL(discovery.authorization_endpoint);
authorize.search = new URLSearchParams({
  client_id: clientId,
  response_type: 'code',
  scope,
  redirect_uri: redirectUri,
  state,
  nonce,
  code_challenge: challenge,
  code_challenge_method: 'S256',
  prompt: 'login consent',
}).toString();

let step = await follow(authorize.toString());
for (let rounds = 0; !step.redirect && rounds < 4; rounds += 1) {
  if (step.response.status !== 200) {
    throw new Error(`provider answered ${step.response.status}: ${await step.response.text()}`);
  }
  // The login page has a login field; the consent page only its prompt.
  const html = await step.response.clone().text();
  if (/name="login"/.test(html)) {
    step = await submit(step, { prompt: 'login', login: user, password: 'any' });
  } else if (/name="prompt" value="consent"/.test(html)) {
    step = await submit(step, { prompt: 'consent' });
  } else {
    throw new Error(`unexpected page:\n${html}`);
  }
}
if (!step.redirect) throw new Error('the provider never redirected back to the client');

const back = new URL(step.redirect).searchParams;
if (back.get('error')) throw new Error(`authorization failed: ${back.get('error')} ${back.get('error_description')}`);
if (back.get('state') !== state) throw new Error('state mismatch');
const code = back.get('code');

const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64');
const tokenResponse = await fetch(discovery.token_endpoint, {
  method: 'POST',
  headers: {
    'content-type': 'application/x-www-form-urlencoded',
    authorization: `Basic ${basic}`,
  },
  body: new URLSearchParams({
    grant_type: 'authorization_code',
    code,
    redirect_uri: redirectUri,
    code_verifier: verifier,
  }).toString(),
});
const tokens = await tokenResponse.json();
if (!tokenResponse.ok || !tokens.id_token) {
  throw new Error(`token request failed (${tokenResponse.status}): ${JSON.stringify(tokens)}`);
}
process.stdout.write(`${tokens.id_token}\n`);
