// A small stand-in for httpbin (Istio's samples/httpbin) for the Gateway API tasks on one machine:
// /headers, /get and /anything echo the request's headers as httpbin does, /status/<code> answers
// that code, /delay/<seconds> waits (at most 10 s) first, /ip gives the caller's address.
// Each request is logged ("GET /headers 200"), so a mirrored copy shows in `rig logs`.
import http from 'node:http';

const port = Number(process.env.PORT ?? 8080);
const host = process.env.HOST ?? '127.0.0.1';

function headersObject(req: http.IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i].replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
    out[name] = out[name] === undefined ? req.rawHeaders[i + 1] : `${out[name]},${req.rawHeaders[i + 1]}`;
  }
  return out;
}

function answer(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: unknown): void {
  const text = body === undefined ? '' : `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
  console.log(`${req.method} ${req.url} ${status}`);
}

http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const status = /^\/status\/(\d{3})$/.exec(url.pathname);
  const delay = /^\/delay\/(\d+(?:\.\d+)?)$/.exec(url.pathname);
  if (url.pathname === '/headers') answer(req, res, 200, { headers: headersObject(req) });
  else if (url.pathname === '/get' || url.pathname.startsWith('/anything')) {
    answer(req, res, 200, { args: Object.fromEntries(url.searchParams), headers: headersObject(req), method: req.method, origin: req.socket.remoteAddress, url: url.href });
  } else if (url.pathname === '/ip') answer(req, res, 200, { origin: req.socket.remoteAddress });
  else if (status) answer(req, res, Number(status[1]), undefined);
  else if (delay) setTimeout(() => answer(req, res, 200, { headers: headersObject(req) }), Math.min(Number(delay[1]), 10) * 1000);
  else answer(req, res, 404, { error: 'not found' });
}).listen(port, host, () => console.log(`httpbin listening on ${host}:${port}`));
