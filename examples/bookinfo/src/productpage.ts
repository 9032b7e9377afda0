// productpage: the front end (Bookinfo's Python service). It calls details and reviews (and
// ratings for its JSON API), forwarding the tracing headers and, for a logged-in user, the
// `end-user` header. Routes: /, /productpage, /login (POST username+passwd), /logout, /health,
// /static/*, /api/v1/products[/<id>[/reviews|/ratings]].
// Timeouts as in Bookinfo: 3 s per call; reviews is tried twice (so a reviews call fails
// after at most ~6 s, which Istio's fault-injection task relies on).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { propagatedHeaders } from './lib/propagation.ts';
import { readBody, sendJson, serve } from './lib/server.ts';
import { clearedSessionCookie, sessionCookie, sessionUser } from './lib/session.ts';
import { getJson, serviceUrl } from './lib/upstream.ts';
import { renderIndex, renderProductPage, STYLESHEET, type Product, type ProductView, type Review } from './productpage-view.ts';

const CALL_TIMEOUT_MS = 3000;
const REVIEWS_ATTEMPTS = 2;

const PRODUCTS: Product[] = [
  {
    id: 0,
    title: 'The Comedy of Errors',
    descriptionHtml:
      '<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>: The Comedy of Errors is one of <b>William Shakespeare\'s</b> early plays. It is his shortest and one of his most farcical comedies, with a major part of the humour coming from slapstick and mistaken identity, in addition to puns and word play.',
  },
];

interface Fetched {
  status: number;
  body: Record<string, unknown>;
}

function forwardHeaders(req: IncomingMessage): Record<string, string> {
  const headers = propagatedHeaders(req.headers);
  delete headers['end-user'];
  const user = sessionUser(req.headers.cookie);
  if (user) headers['end-user'] = user;
  return headers;
}

async function fetchPart(url: string, headers: Record<string, string>, attempts: number, unavailable: string): Promise<Fetched> {
  let status = 500;
  for (let i = 0; i < attempts; i++) {
    try {
      const res = await getJson(url, headers, CALL_TIMEOUT_MS);
      if (res.status === 200 && typeof res.body === 'object' && res.body !== null) return { status: 200, body: res.body as Record<string, unknown> };
      status = res.status || 500;
    } catch (err) {
      process.stderr.write(`error: ${url}: ${(err as Error).message}\n`);
      status = 500;
    }
  }
  return { status, body: { error: unavailable } };
}

const getDetails = (id: number, h: Record<string, string>) =>
  fetchPart(`${serviceUrl('details')}/details/${id}`, h, 1, 'Sorry, product details are currently unavailable for this book.');
const getReviews = (id: number, h: Record<string, string>) =>
  fetchPart(`${serviceUrl('reviews')}/reviews/${id}`, h, REVIEWS_ATTEMPTS, 'Sorry, product reviews are currently unavailable for this book.');
const getRatings = (id: number, h: Record<string, string>) =>
  fetchPart(`${serviceUrl('ratings')}/ratings/${id}`, h, 1, 'Sorry, product ratings are currently unavailable for this book.');

async function productPage(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const product = PRODUCTS[0];
  const headers = forwardHeaders(req);
  const [details, reviews] = await Promise.all([getDetails(product.id, headers), getReviews(product.id, headers)]);
  const view: ProductView = {
    product,
    user: sessionUser(req.headers.cookie),
    details: details.status === 200 ? { ok: true, body: details.body } : { ok: false, error: String(details.body.error) },
    reviews:
      reviews.status === 200
        ? { ok: true, podname: reviews.body.podname as string | undefined, reviews: (reviews.body.reviews as Review[] | undefined) ?? [] }
        : { ok: false, error: String(reviews.body.error) },
  };
  const html = renderProductPage(view);
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(html) });
  res.end(html);
}

function redirect(res: ServerResponse, location: string, cookie?: string): void {
  res.writeHead(302, { location, ...(cookie ? { 'set-cookie': cookie } : {}), 'content-length': 0 });
  res.end();
}

async function api(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  if (path === '/api/v1/products') return sendJson(res, 200, PRODUCTS);
  const m = /^\/api\/v1\/products\/([^/]+)(?:\/(reviews|ratings))?$/.exec(path);
  if (!m) return sendJson(res, 404, { error: `unsupported path ${path}` });
  if (!/^\d+$/.test(m[1])) return sendJson(res, 400, { error: 'please provide numeric product id' });
  const id = Number(m[1]);
  const headers = forwardHeaders(req);
  const part = m[2] === 'reviews' ? await getReviews(id, headers) : m[2] === 'ratings' ? await getRatings(id, headers) : await getDetails(id, headers);
  sendJson(res, part.status, part.body);
}

serve('productpage', async (req, res, url) => {
  const path = url.pathname;
  if (path === '/health') return sendJson(res, 200, { status: 'Product page is healthy' });
  if (path === '/' || path === '/index.html') {
    const html = renderIndex();
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    return void res.end(html);
  }
  if (path === '/productpage' && req.method === 'GET') return productPage(req, res);
  if (path === '/login' && req.method === 'POST') {
    const form = new URLSearchParams(await readBody(req));
    const user = form.get('username')?.trim();
    if (!user) return redirect(res, '/productpage');
    return redirect(res, '/productpage', sessionCookie(user));
  }
  if (path === '/logout') return redirect(res, '/productpage', clearedSessionCookie());
  if (path === '/static/bookinfo.css') {
    res.writeHead(200, { 'content-type': 'text/css; charset=utf-8', 'cache-control': 'max-age=3600' });
    return void res.end(STYLESHEET);
  }
  if (path.startsWith('/api/v1/products') && req.method === 'GET') return api(req, res, path);
  sendJson(res, 404, { error: `unsupported path ${path}` });
});
