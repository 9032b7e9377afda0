// The Bookinfo services on their own (no mesh): the Bookinfo contract, graceful degradation,
// login, header propagation, and outbound calls through HTTP_PROXY in absolute form (how the
// apps reach their sidecar in explicit mode).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, stopProcess } from '../helpers/cli.ts';
import { freePort } from '../../src/local/ports.ts';

const SRC = path.join(REPO_ROOT, 'examples/bookinfo/src');
const children: ChildProcess[] = [];

async function startApp(file: string, env: Record<string, string>): Promise<number> {
  const port = await freePort();
  const child = spawn(process.execPath, [file], { cwd: SRC, env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), BOOKINFO_ACCESS_LOG: 'off', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => String(d).includes('listening') && resolve());
    child.once('exit', (code) => reject(new Error(`${file} exited with ${code}`)));
  });
  return port;
}

interface Seen {
  url: string;
  headers: http.IncomingHttpHeaders;
}

/** A stand-in for a sidecar's outbound port: records absolute-form requests and forwards them to `routes[host:port]`. */
async function startRecordingProxy(routes: Record<string, number>): Promise<{ port: number; seen: Seen[]; server: http.Server }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    const target = new URL(req.url ?? '/');
    const port = routes[target.host];
    if (!port) {
      res.writeHead(502).end();
      return;
    }
    const up = http.request({ host: '127.0.0.1', port, path: target.pathname + target.search, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.writeHead(502).end());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, seen, server };
}

function get(port: number, p: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method, headers, agent: false }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

after(async () => {
  await Promise.all(children.map((c) => stopProcess(c)));
});

describe('bookinfo services behind a recording HTTP proxy', () => {
  let productpage = 0;
  let proxy: Awaited<ReturnType<typeof startRecordingProxy>>;
  const routes: Record<string, number> = {};

  before(async () => {
    proxy = await startRecordingProxy(routes);
    const viaProxy = { HTTP_PROXY: `http://127.0.0.1:${proxy.port}` };
    routes['ratings:9080'] = await startApp('ratings.ts', {});
    routes['details:9080'] = await startApp('details.ts', {});
    routes['reviews:9080'] = await startApp('reviews.ts', { ...viaProxy, ENABLE_RATINGS: 'true', STAR_COLOR: 'black', POD_NAME: 'reviews-v2-0' });
    productpage = await startApp('productpage.ts', viaProxy);
  });
  after(() => proxy.server.close());

  it('renders the product page with details, black stars and the workload that answered', async () => {
    const res = await get(productpage, '/productpage');
    assert.equal(res.status, 200);
    assert.match(res.body, /Book Details/);
    assert.match(res.body, /ISBN-10:<\/dt><dd>1234567890/);
    assert.match(res.body, /data-stars="5" data-color="black"/);
    assert.match(res.body, /Reviews served by: <b class="workload">reviews-v2<\/b>/);
    // The apps called each other by service name through the proxy, in absolute form.
    const urls = proxy.seen.map((s) => s.url);
    assert.ok(urls.includes('http://details:9080/details/0'), urls.join(' '));
    assert.ok(urls.includes('http://reviews:9080/reviews/0'));
    assert.ok(urls.includes('http://ratings:9080/ratings/0'));
  });

  it('logs jason in with a session cookie and sends end-user and the tracing headers on to reviews and ratings', async () => {
    const login = await get(productpage, '/login', { 'content-type': 'application/x-www-form-urlencoded' }, 'POST', 'username=jason&passwd=jason');
    assert.equal(login.status, 302);
    const cookie = String(login.headers['set-cookie']).split(';')[0];
    proxy.seen.length = 0;
    const trace = {
      cookie,
      'x-request-id': 'req-1',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      'x-b3-traceid': '463ac35c9f6413ad48485a3953bb6124',
      'x-b3-spanid': 'a2fb4a1d1a96d312',
      'x-b3-sampled': '1',
      'end-user': 'mallory',
    };
    const page = await get(productpage, '/productpage', trace);
    assert.match(page.body, /jason <a href="\/logout">sign out/);
    const toRatings = proxy.seen.find((s) => s.url.startsWith('http://ratings:9080/'));
    const toReviews = proxy.seen.find((s) => s.url.startsWith('http://reviews:9080/'));
    for (const seen of [toReviews, toRatings]) {
      assert.ok(seen);
      // The end-user comes from the session, never from what the client claimed.
      assert.equal(seen.headers['end-user'], 'jason');
      for (const h of ['x-request-id', 'traceparent', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-sampled'] as const) assert.equal(seen.headers[h], trace[h], h);
    }
    const logout = await get(productpage, '/logout', { cookie });
    assert.match(String(logout.headers['set-cookie']), /Max-Age=0/);
  });

  it('serves the JSON APIs', async () => {
    const products = JSON.parse((await get(productpage, '/api/v1/products')).body) as { id: number; title: string }[];
    assert.equal(products[0].title, 'The Comedy of Errors');
    const details = JSON.parse((await get(productpage, '/api/v1/products/0')).body) as Record<string, unknown>;
    assert.equal(details.author, 'William Shakespeare');
    const ratings = JSON.parse((await get(productpage, '/api/v1/products/0/ratings')).body) as { ratings: Record<string, number> };
    assert.deepEqual(ratings.ratings, { Reviewer1: 5, Reviewer2: 4 });
    const reviews = JSON.parse((await get(productpage, '/api/v1/products/0/reviews')).body) as { podname: string; reviews: unknown[] };
    assert.equal(reviews.podname, 'reviews-v2-0');
    assert.equal((await get(productpage, '/api/v1/products/x')).status, 400);
    assert.deepEqual(JSON.parse((await get(productpage, '/health')).body), { status: 'Product page is healthy' });
  });

  it('degrades gracefully when ratings, then details and reviews, are unavailable', async () => {
    const saved = { ...routes };
    try {
      delete routes['ratings:9080'];
      const noRatings = await get(productpage, '/productpage');
      assert.match(noRatings.body, /Ratings service is currently unavailable/);
      delete routes['details:9080'];
      delete routes['reviews:9080'];
      const page = await get(productpage, '/productpage');
      assert.equal(page.status, 200);
      assert.match(page.body, /Sorry, product details are currently unavailable for this book\./);
      assert.match(page.body, /Sorry, product reviews are currently unavailable for this book\./);
      // reviews is tried twice, as Bookinfo's productpage does.
      assert.equal(proxy.seen.filter((s) => s.url === 'http://reviews:9080/reviews/0').length >= 2, true);
    } finally {
      Object.assign(routes, saved);
    }
  });
});

describe('reviews v1', () => {
  it('shows no stars and never calls ratings', async () => {
    const port = await startApp('reviews.ts', { ENABLE_RATINGS: 'false', RATINGS_HOSTNAME: '127.0.0.1', RATINGS_SERVICE_PORT: '1', POD_NAME: 'reviews-v1-0' });
    const body = JSON.parse((await get(port, '/reviews/0')).body) as { reviews: { rating?: unknown }[] };
    assert.equal(body.reviews.length, 2);
    assert.ok(body.reviews.every((r) => r.rating === undefined));
  });
});
