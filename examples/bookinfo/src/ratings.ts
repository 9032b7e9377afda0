// ratings: per-reviewer star ratings (Bookinfo's Node service). GET /ratings/<id>,
// POST /ratings/<id> with {"Reviewer1": n, ...} to change them, GET /health.
import { productId, readBody, sendJson, serve } from './lib/server.ts';

const DEFAULT_RATINGS = { Reviewer1: 5, Reviewer2: 4 };
const posted = new Map<number, Record<string, number>>();

serve('ratings', async (req, res, url) => {
  if (url.pathname === '/health') return sendJson(res, 200, { status: 'Ratings is healthy' });
  const p = productId(url.pathname, 'ratings');
  if (!p.matched) return sendJson(res, 404, { error: `unsupported path ${url.pathname}` });
  if (p.id === undefined) return sendJson(res, 400, { error: 'please provide numeric product ID' });
  if (req.method === 'GET') return sendJson(res, 200, { id: p.id, ratings: posted.get(p.id) ?? DEFAULT_RATINGS });
  if (req.method === 'POST') {
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req));
    } catch {
      return sendJson(res, 400, { error: 'please provide valid ratings JSON' });
    }
    const valid =
      typeof body === 'object' && body !== null && Object.values(body).every((v) => Number.isInteger(v) && v >= 1 && v <= 5);
    if (!valid) return sendJson(res, 400, { error: 'ratings must be an object of reviewer: 1..5' });
    posted.set(p.id, body as Record<string, number>);
    return sendJson(res, 200, { id: p.id, ratings: body });
  }
  sendJson(res, 405, { error: `method ${req.method} not allowed` });
});
