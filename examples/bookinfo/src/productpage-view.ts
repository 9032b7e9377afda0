// productpage's HTML: the index, and the product page with the book's details and its reviews.
// Each part that could not be fetched shows an error message in its place.
import { escapeHtml } from './lib/html.ts';

export interface Product {
  id: number;
  title: string;
  descriptionHtml: string;
}

export interface Review {
  reviewer: string;
  text: string;
  rating?: { stars?: number; color?: string; error?: string };
}

export interface ProductView {
  product: Product;
  user?: string;
  details: { ok: true; body: Record<string, unknown> } | { ok: false; error: string };
  reviews: { ok: true; podname?: string; reviews: Review[] } | { ok: false; error: string };
}

const STYLE = `
body { font-family: system-ui, sans-serif; margin: 0; color: #222; }
nav { background: #2c3e50; color: #fff; padding: .6em 1.2em; display: flex; justify-content: space-between; align-items: center; }
nav a, nav button { color: #fff; }
main { padding: 1em 2em; }
.columns { display: flex; gap: 3em; flex-wrap: wrap; }
.columns > section { flex: 1; min-width: 18em; }
.error { color: #c0392b; }
blockquote { border-left: 4px solid #ccc; margin: 1em 0; padding: .2em 1em; }
.stars { font-size: 1.3em; }
dl { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; }
dt { font-weight: bold; }
.served-by { color: #555; font-size: .9em; }
form.login { display: inline-flex; gap: .4em; }
`;

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/bookinfo.css"></head>
<body>${body}</body>
</html>
`;
}

export const STYLESHEET = STYLE;

export function renderIndex(): string {
  return page(
    'Simple Bookstore App',
    `<main><h1>Hello! This is a simple bookstore application consisting of three services as shown below</h1>
<p>productpage calls details and reviews; reviews v2 and v3 call ratings.</p>
<p>Click on one of the links below to auto generate a request to the backend as a real user or a tester</p>
<p><a href="/productpage?u=normal">Normal user</a></p>
<p><a href="/productpage?u=test">Test user</a></p></main>`,
  );
}

function renderUser(user: string | undefined): string {
  if (user) return `<span>${escapeHtml(user)} <a href="/logout">sign out</a></span>`;
  return `<form class="login" method="post" action="/login">
<input name="username" placeholder="User Name" aria-label="User Name">
<input name="passwd" type="password" placeholder="Password" aria-label="Password">
<button type="submit">Sign in</button></form>`;
}

function renderDetails(d: ProductView['details']): string {
  if (!d.ok) return `<h4 class="error">Error fetching product details!</h4><p class="error">${escapeHtml(d.error)}</p>`;
  const fields: [string, string][] = [
    ['Type', 'type'],
    ['Pages', 'pages'],
    ['Publisher', 'publisher'],
    ['Language', 'language'],
    ['ISBN-10', 'ISBN-10'],
    ['ISBN-13', 'ISBN-13'],
  ];
  const rows = fields
    .filter(([, key]) => d.body[key] !== undefined)
    .map(([label, key]) => `<dt>${escapeHtml(label)}:</dt><dd>${escapeHtml(d.body[key])}</dd>`)
    .join('\n');
  return `<h4>Book Details</h4><dl>\n${rows}\n</dl>`;
}

function renderStars(rating: Review['rating']): string {
  if (!rating) return '';
  if (rating.error) return `<p class="error">${escapeHtml(rating.error)}</p>`;
  const stars = Math.max(0, Math.min(5, Number(rating.stars ?? 0)));
  const color = rating.color === 'red' ? 'red' : 'black';
  return `<p class="stars" style="color:${color}" data-stars="${stars}" data-color="${color}" aria-label="${stars} ${color} stars">${'★'.repeat(stars)}${'☆'.repeat(5 - stars)}</p>`;
}

/** `reviews-v2-0` → `reviews-v2`: the workload that answered, named as the mesh names it. */
export function workloadOf(podname: string): string {
  const m = /^(.*-v\d+)(?:-.*)?$/.exec(podname);
  return m ? m[1] : podname;
}

function renderReviews(r: ProductView['reviews']): string {
  if (!r.ok) return `<h4 class="error">Error fetching product reviews!</h4><p class="error">${escapeHtml(r.error)}</p>`;
  const items = r.reviews
    .map((rev) => `<blockquote><p>${escapeHtml(rev.text)}</p><small>${escapeHtml(rev.reviewer)}</small>${renderStars(rev.rating)}</blockquote>`)
    .join('\n');
  const servedBy = r.podname
    ? `<p class="served-by">Reviews served by: <b class="workload">${escapeHtml(workloadOf(r.podname))}</b> (${escapeHtml(r.podname)})</p>`
    : '';
  return `<h4>Book Reviews</h4>\n${items}\n${servedBy}`;
}

export function renderProductPage(v: ProductView): string {
  return page(
    v.product.title,
    `<nav><a href="/">BookInfo Sample</a>${renderUser(v.user)}</nav>
<main><h2>${escapeHtml(v.product.title)}</h2>
<p>${v.product.descriptionHtml}</p>
<div class="columns"><section id="details">${renderDetails(v.details)}</section>
<section id="reviews">${renderReviews(v.reviews)}</section></div></main>`,
  );
}
