// reviews: two reviews of the book (Bookinfo's Java service), in three versions chosen by env:
// v1 (ENABLE_RATINGS=false) shows no stars; v2 (STAR_COLOR=black) and v3 (STAR_COLOR=red) call
// ratings and show its stars. GET /reviews/<id>, GET /health.
// The call to ratings times out after 10 s for black stars and 2.5 s otherwise, as in Bookinfo
// (Istio's fault-injection task relies on that difference).
import os from 'node:os';
import { propagatedHeaders } from './lib/propagation.ts';
import { productId, sendJson, serve } from './lib/server.ts';
import { getJson, serviceUrl } from './lib/upstream.ts';

const ratingsEnabled = process.env.ENABLE_RATINGS === 'true';
const starColor = process.env.STAR_COLOR ?? 'black';
const ratingsTimeoutMs = starColor === 'black' ? 10_000 : 2_500;
const podName = process.env.POD_NAME ?? process.env.HOSTNAME ?? os.hostname();
const clusterName = process.env.CLUSTER_NAME ?? 'null';

const REVIEWS = [
  { reviewer: 'Reviewer1', text: 'An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!' },
  { reviewer: 'Reviewer2', text: 'Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.' },
];

async function fetchRatings(id: number, headers: Record<string, string>): Promise<Record<string, number> | undefined> {
  try {
    const res = await getJson(`${serviceUrl('ratings')}/ratings/${id}`, headers, ratingsTimeoutMs);
    if (res.status !== 200) {
      process.stderr.write(`error: unable to contact ratings: status ${res.status}\n`);
      return undefined;
    }
    return (res.body as { ratings?: Record<string, number> }).ratings;
  } catch (err) {
    process.stderr.write(`error: unable to contact ratings: ${(err as Error).message}\n`);
    return undefined;
  }
}

serve('reviews', async (req, res, url) => {
  if (url.pathname === '/health') return sendJson(res, 200, { status: 'Reviews is healthy' });
  const p = productId(url.pathname, 'reviews');
  if (!p.matched || req.method !== 'GET') return sendJson(res, 404, { error: `unsupported path ${url.pathname}` });
  if (p.id === undefined) return sendJson(res, 400, { error: 'please provide numeric product id' });
  const ratings = ratingsEnabled ? await fetchRatings(p.id, propagatedHeaders(req.headers)) : undefined;
  const reviews = REVIEWS.map((r) => {
    if (!ratingsEnabled) return { ...r };
    if (!ratings) return { ...r, rating: { error: 'Ratings service is currently unavailable' } };
    const stars = ratings[r.reviewer];
    return stars === undefined ? { ...r } : { ...r, rating: { stars, color: starColor } };
  });
  sendJson(res, 200, { id: String(p.id), podname: podName, clustername: clusterName, reviews });
});
