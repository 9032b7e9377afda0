// details: the book's details (Bookinfo's Ruby service). GET /details/<id>, GET /health.
import { productId, sendJson, serve } from './lib/server.ts';

export function bookDetails(id: number): Record<string, unknown> {
  return {
    id,
    author: 'William Shakespeare',
    year: 1595,
    type: 'paperback',
    pages: 200,
    publisher: 'PublisherA',
    language: 'English',
    'ISBN-10': '1234567890',
    'ISBN-13': '123-1234567890',
  };
}

serve('details', (req, res, url) => {
  if (url.pathname === '/health') return sendJson(res, 200, { status: 'Details is healthy' });
  const p = productId(url.pathname, 'details');
  if (p.matched && req.method === 'GET') {
    if (p.id === undefined) return sendJson(res, 400, { error: 'please provide numeric product id' });
    return sendJson(res, 200, bookDetails(p.id));
  }
  sendJson(res, 404, { error: `unsupported path ${url.pathname}` });
});
