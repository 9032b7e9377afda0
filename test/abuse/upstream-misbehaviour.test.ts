// Upstream misbehaviour against the real proxy: a raw TCP upstream answers each path with broken
// or hostile bytes (invalid status line, garbage, invalid header, CL+TE, a flood of 1xx, a reset
// mid-body, a body without length on a keep-alive connection, silence). Each gets Envoy's status
// and flag or a reset of the downstream stream, never a crash; after a burst of every case the
// proxy still serves, no stream or upstream request is left active, and fds and heap are back at
// their baseline. An HTTP/2 upstream that refuses a stream, resets one mid-body (any code, NO_ERROR
// included; UR), dies mid-body (UC), ends one short of its content-length (UPE) or sends GOAWAY
// gives 503 UR or a cut response, and the cluster keeps serving.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { configure, httpListener, routeConfig, startRuntime, startTestRuntime, staticCluster, type Harness } from '../proxy/harness.ts';
import { formatResponseFlags } from '../../src/proxy/response-flags.ts';
import { assertBackToBaseline, leakBaseline } from '../helpers/leak-baseline.ts';

/** What the raw upstream does once it has read a request head for `path`. */
type Behaviour = (s: net.Socket, query: string) => void;

/** Upstream connections waiting to be reset once their response head reached the client, by query. */
const pendingResets = new Map<string, () => void>();

async function resetWhenReady(query: string): Promise<void> {
  for (let i = 0; i < 500 && !pendingResets.has(query); i++) await new Promise((r) => setTimeout(r, 5));
  pendingResets.get(query)?.();
  pendingResets.delete(query);
}

let resetIds = 0;
/** A /reset-mid-body path with a query of its own (the client names which upstream to reset). */
const resetPath = (): string => `/reset-mid-body?${++resetIds}`;

const BODY_5K = 'b'.repeat(5000);

const BEHAVIOURS: Record<string, Behaviour> = {
  '/bad-status': (s) => s.write('HTTP/1.1 2OO OK\r\ncontent-length: 0\r\n\r\n'),
  '/garbage': (s) => s.write('SSH-2.0-OpenSSH_9.6\r\n\r\n'),
  '/bad-header': (s) => s.write('HTTP/1.1 200 OK\r\nx\x01y: z\r\ncontent-length: 0\r\n\r\n'),
  '/cl-te': (s) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n'),
  '/1xx-flood': (s) => s.write('HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n'.repeat(2000) + 'HTTP/1.1 102 Processing\r\n\r\n'.repeat(500) + 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'),
  // The proxy strips Expect: a 100 Continue is unsolicited (undici refuses it; Envoy would drop it).
  '/unsolicited-100': (s) => s.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'),
  '/1xx-endless': (s) => {
    const t = setInterval(() => s.write('HTTP/1.1 102 Processing\r\n\r\n'), 10);
    s.once('close', () => clearInterval(t));
  },
  // The RST waits until the client saw the response head: a RST arriving before the proxy read
  // the head would discard it in the kernel (a reset before headers, another case).
  '/reset-mid-body': (s, query) => {
    s.write('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n' + 'x'.repeat(1000));
    pendingResets.set(query, () => s.resetAndDestroy());
  },
  // No content-length, no chunking, "keep-alive": the body ends only when the upstream closes.
  '/no-length': (s) => {
    s.write('HTTP/1.1 200 OK\r\nconnection: keep-alive\r\ncontent-type: text/plain\r\n\r\n' + BODY_5K.slice(0, 2000));
    setTimeout(() => s.end(BODY_5K.slice(2000)), 30);
  },
  '/never': () => undefined,
  '/never-try': () => undefined,
  '/stall-mid-body': (s) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n' + 'x'.repeat(100)),
};

/** Statuses each case may get in a concurrent burst. */
const BURST_STATUS: Record<string, number[]> = {
  '/bad-status': [502],
  '/garbage': [502],
  '/bad-header': [502],
  '/cl-te': [502],
  '/unsolicited-100': [502],
  '/1xx-flood': [200],
  '/1xx-endless': [504],
  '/reset-mid-body': [200],
  '/no-length': [200],
  '/never': [504],
  // Twelve at once retrying exceed the default max_retries (3): the refused ones end with their
  // per-try timeout (504 UT,UO), or 503 UO when the breaker fills between decision and retry.
  '/never-try': [504, 503],
  '/stall-mid-body': [200],
};

interface RawUpstream {
  port: number;
  /** Requests seen per path. */
  seen: Map<string, number>;
  /** Upstream connections currently open. */
  open: Set<net.Socket>;
  close(): Promise<void>;
}

async function startRawUpstream(): Promise<RawUpstream> {
  const seen = new Map<string, number>();
  const open = new Set<net.Socket>();
  const server = net.createServer((s) => {
    open.add(s);
    s.on('close', () => open.delete(s));
    s.on('error', () => undefined);
    let buf = '';
    const onData = (c: Buffer): void => {
      buf += c.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [path, query = ''] = (/^[A-Z]+ (\S+)/.exec(buf)?.[1] ?? '').split('?');
      buf = buf.slice(end + 4);
      seen.set(path, (seen.get(path) ?? 0) + 1);
      const b = BEHAVIOURS[path];
      if (b) b(s, query);
      else s.write('HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nfine');
    };
    s.on('data', onData);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    open,
    close: () =>
      new Promise<void>((r) => {
        for (const s of open) s.destroy();
        server.close(() => r());
      }),
  };
}

interface Got {
  status: number;
  body: string;
  /** The response ended cleanly (false: the connection was reset or closed mid-response). */
  complete: boolean;
  headers: http.IncomingHttpHeaders;
}

function get(port: number, path: string, agent: http.Agent | false = false): Promise<Got> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      if (path.startsWith('/reset-mid-body?')) void resetWhenReady(path.slice(path.indexOf('?') + 1));
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), complete: res.complete, headers: res.headers }));
      res.on('aborted', () => undefined);
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), complete: false, headers: res.headers }));
    });
    req.on('error', () => resolve({ status: 0, body: '', complete: false, headers: {} }));
  });
}

function stat(h: Harness, name: string): number {
  return h.rt.stats.all().find((s) => s.name === name)?.value ?? 0;
}

async function setup(t: { after(fn: () => unknown): void }) {
  const up = await startRawUpstream();
  const h = await startTestRuntime(t, [up]);
  await configure(h, {
    clusters: [staticCluster('raw', [up.port])],
    listeners: [
      httpListener(
        'l',
        routeConfig('r', [
          { match: { prefix: '/never-try' }, route: { cluster: 'raw', timeout: '5s', retry_policy: { retry_on: '5xx,reset', num_retries: 1, per_try_timeout: '0.15s', retry_back_off: { base_interval: '0.001s' } } } },
          { match: { prefix: '/stall-mid-body' }, route: { cluster: 'raw', timeout: '0.6s', retry_policy: { retry_on: '5xx', num_retries: 1, per_try_timeout: '0.15s' } } },
          { match: { prefix: '/' }, route: { cluster: 'raw', timeout: '0.3s' } },
        ]),
      ),
    ],
  });
  return { h, up, port: h.port('l') };
}

const flags = (h: Harness): string => formatResponseFlags(h.streams.at(-1)!.responseFlags);

test('each upstream misbehaviour gets Envoy\'s status and flag, or a reset of the downstream stream', async (t) => {
  const { h, up, port } = await setup(t);
  const PROTOCOL_ERROR = 'upstream connect error or disconnect/reset before headers. reset reason: protocol error';

  for (const path of ['/bad-status', '/garbage', '/bad-header', '/cl-te', '/unsolicited-100']) {
    const r = await get(port, path);
    assert.equal(r.status, 502, `${path}: ${r.body}`);
    assert.equal(r.body, PROTOCOL_ERROR, path);
    assert.equal(flags(h), 'UPE', path);
    assert.equal(h.streams.at(-1)!.responseCodeDetails, 'upstream_reset_before_response_started{protocol_error}', path);
  }

  // 2000 × 103 and 500 × 102 before the final response: the final response gets through, the 1xx do not.
  let r = await get(port, '/1xx-flood');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'ok');
  assert.equal(flags(h), '-');

  // 1xx forever never count as a response: the route timeout ends it (504 UT) and the upstream connection is closed.
  r = await get(port, '/1xx-endless');
  assert.equal(r.status, 504);
  assert.equal(flags(h), 'UT');

  // Reset after the headers: the status already went out, so the downstream response is cut (UC).
  const resetsBefore = stat(h, 'cluster.raw.upstream_rq_rx_reset');
  r = await get(port, resetPath());
  assert.equal(r.status, 200);
  assert.equal(r.complete, false, 'the downstream response must not look complete');
  assert.ok(r.body.length < 100000);
  assert.equal(flags(h), 'UC');
  assert.equal(stat(h, 'cluster.raw.upstream_rq_rx_reset'), resetsBefore + 1);

  // A body delimited by the upstream's close: relayed whole on a downstream keep-alive connection
  // (re-framed), and that upstream connection is never reused.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  r = await get(port, '/no-length', agent);
  assert.equal(r.status, 200);
  assert.equal(r.complete, true);
  assert.equal(r.body, BODY_5K);
  r = await get(port, '/no-length', agent);
  assert.equal(r.body, BODY_5K, 'the same downstream connection carries the next request');
  assert.equal((await get(port, '/fine', agent)).body, 'fine');

  // Silence: the route timeout (504 UT), and the per-try timeout retried once then 504 UT.
  r = await get(port, '/never');
  assert.equal(r.status, 504);
  assert.equal(r.body, 'upstream request timeout');
  assert.equal(flags(h), 'UT');
  const triesBefore = up.seen.get('/never-try') ?? 0;
  r = await get(port, '/never-try');
  assert.equal(r.status, 504);
  assert.match(flags(h), /UT/);
  assert.equal((up.seen.get('/never-try') ?? 0) - triesBefore, 2, 'one try and one retry');
  assert.ok(stat(h, 'cluster.raw.upstream_rq_per_try_timeout') >= 2);

  // Headers then silence: Envoy ignores the per-try timeout once the response started
  // (UpstreamRequest::onPerTryTimeout), uncounted; the route timeout cuts the response (UT).
  const perTryBefore = stat(h, 'cluster.raw.upstream_rq_per_try_timeout');
  const timeoutsBefore = stat(h, 'cluster.raw.upstream_rq_timeout');
  r = await get(port, '/stall-mid-body');
  assert.equal(r.status, 200);
  assert.equal(r.complete, false);
  assert.equal(flags(h), 'UT');
  assert.equal(stat(h, 'cluster.raw.upstream_rq_per_try_timeout'), perTryBefore, 'the per-try timeout is not counted');
  assert.equal(stat(h, 'cluster.raw.upstream_rq_timeout'), timeoutsBefore + 1, 'the route timeout ended it');

  // Abandoned upstream connections are closed, not left to the upstream.
  for (let i = 0; i < 100 && up.open.size > 1; i++) await new Promise((res) => setTimeout(res, 20));
  assert.ok(up.open.size <= 1, `${up.open.size} upstream connections still open`);
});

test('an upstream reset mid-body resets the HTTP/2 downstream stream, not the session', async (t) => {
  const { h, port } = await setup(t);
  const c = http2.connect(`http://127.0.0.1:${port}`);
  t.after(() => c.close());
  const outcome = await new Promise<{ status: number; code: number }>((resolve) => {
    const path = resetPath();
    const s = c.request({ ':path': path });
    let status = 0;
    s.on('response', (hd) => {
      status = Number(hd[':status']);
      void resetWhenReady(path.slice(path.indexOf('?') + 1));
    });
    s.resume();
    s.on('close', () => resolve({ status, code: s.rstCode }));
    s.on('error', () => undefined);
  });
  assert.equal(outcome.status, 200);
  assert.notEqual(outcome.code, http2.constants.NGHTTP2_NO_ERROR, 'the stream is reset');
  assert.equal(flags(h), 'UC');
  const ok = await new Promise<number>((resolve) => {
    const s = c.request({ ':path': '/fine' });
    s.on('response', (hd) => resolve(Number(hd[':status'])));
    s.resume();
  });
  assert.equal(ok, 200, 'the session carries on');
});

test('a burst of every upstream misbehaviour leaves no stream, upstream request, fd or heap behind', async (t) => {
  const { h, up, port } = await setup(t);
  const paths = Object.keys(BEHAVIOURS);
  const pathFor = (p: string): string => (p === '/reset-mid-body' ? resetPath() : p);
  for (const p of paths) await get(port, pathFor(p)); // warm-up: lazy pools, first-use allocations
  const base = await leakBaseline();
  const jobs = paths.flatMap((p) => Array.from({ length: 12 }, () => p));
  let next = 0;
  const wrong: string[] = [];
  await Promise.all(
    Array.from({ length: 12 }, async () => {
      while (next < jobs.length) {
        const p = jobs[next++];
        const st = (await get(port, pathFor(p))).status;
        if (!BURST_STATUS[p].includes(st)) wrong.push(`${p} → ${st}`);
      }
    }),
  );
  assert.deepEqual(wrong, []);
  assert.equal((await get(port, '/fine')).body, 'fine', 'the proxy still serves');
  const host = h.rt.ctx.clusters.get('raw')!.hosts()[0];
  for (let i = 0; i < 100 && (stat(h, 'http.l.downstream_rq_active') !== 0 || host.activeRequests !== 0 || up.open.size > 2); i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(stat(h, 'http.l.downstream_rq_active'), 0, 'no stream left active');
  assert.equal(host.activeRequests, 0, 'no upstream request left active');
  assert.equal(stat(h, 'cluster.raw.upstream_rq_active'), 0);
  assert.ok(up.open.size <= 2, `${up.open.size} upstream connections left open`);
  await assertBackToBaseline(base, { maxHeapGrowth: 16 * 1024 * 1024, after: `${jobs.length} misbehaving responses` });
});

test('an HTTP/2 upstream that refuses, resets mid-body, ends short or sends GOAWAY: 503 UR or a cut response, and the next request still works', async (t) => {
  const server = http2.createServer();
  server.on('stream', (s, hd) => {
    s.on('error', () => undefined);
    const path = hd[':path'];
    if (path === '/refuse') s.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    else if (path === '/reset-mid-body' || path === '/reset-no-error') {
      // waitForTrailers: without it close() sends END_STREAM first (then no RST_STREAM at all).
      s.respond({ ':status': 200, 'content-length': '100000' }, { waitForTrailers: true });
      const code = path === '/reset-mid-body' ? http2.constants.NGHTTP2_INTERNAL_ERROR : http2.constants.NGHTTP2_NO_ERROR;
      s.write('x'.repeat(1000), () => setTimeout(() => s.close(code), 50));
    } else if (path === '/drop-mid-body') {
      s.respond({ ':status': 200 });
      s.write('x'.repeat(1000), () => setTimeout(() => s.session?.socket.destroy(), 50));
    } else if (path === '/short-body') {
      s.respond({ ':status': 200, 'content-length': '100000' });
      s.write('x'.repeat(1000), () => setTimeout(() => s.end(), 50));
    } else if (path === '/goaway') {
      s.respond({ ':status': 200 });
      s.end('bye');
      s.session?.goaway(http2.constants.NGHTTP2_NO_ERROR);
    } else {
      s.respond({ ':status': 200 });
      s.end('fine');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const h = await startRuntime();
  t.after(async () => {
    h.close();
    await new Promise<void>((r) => server.close(() => r()));
  });
  await configure(h, {
    clusters: [staticCluster('h2', [(server.address() as AddressInfo).port], { http2_protocol_options: {} })],
    listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'h2', timeout: '2s' } }]))],
  });
  const port = h.port('l');
  let r = await get(port, '/refuse');
  assert.equal(r.status, 503);
  assert.match(r.body, /reset before headers. reset reason: remote refused stream reset/);
  // An upstream RST_STREAM is Envoy's remote reset (UR); UC is a connection that ended.
  assert.equal(flags(h), 'UR');
  // The stream reset after a committed head: the downstream response is cut; the head was relayed
  // (200), so the reset can only show as an incomplete body. The connection lives on: UR, not UC.
  for (const path of ['/reset-mid-body', '/reset-no-error']) {
    const resets = stat(h, 'cluster.h2.upstream_rq_rx_reset');
    r = await get(port, path);
    assert.equal(r.status, 200, path);
    assert.equal(r.complete, false, path);
    assert.equal(r.body.length, 1000, path);
    assert.equal(flags(h), 'UR', path);
    assert.equal(h.streams.at(-1)!.responseCodeDetails, 'upstream_reset_after_response_started{remote_reset}', path);
    assert.equal(stat(h, 'cluster.h2.upstream_rq_rx_reset'), resets + 1, path);
  }
  // The upstream connection dies mid-body: that is UC (connection termination), not a stream reset.
  r = await get(port, '/drop-mid-body');
  assert.equal(r.status, 200);
  assert.equal(r.complete, false);
  assert.equal(flags(h), 'UC');
  assert.equal(h.streams.at(-1)!.responseCodeDetails, 'upstream_reset_after_response_started{connection_termination}');
  // END_STREAM short of content-length: a malformed response (RFC 9113 §8.1.1), Envoy's codec's
  // protocol error (UPE), cut downstream too.
  r = await get(port, '/short-body');
  assert.equal(r.status, 200);
  assert.equal(r.complete, false);
  assert.equal(r.body.length, 1000);
  assert.equal(flags(h), 'UPE');
  assert.equal(h.streams.at(-1)!.responseCodeDetails, 'upstream_reset_after_response_started{protocol_error}');
  r = await get(port, '/goaway');
  assert.equal(r.body, 'bye');
  for (let i = 0; i < 3; i++) assert.equal((await get(port, '/fine')).body, 'fine', 'new requests after GOAWAY go over a new session');
  assert.equal(stat(h, 'http.l.downstream_rq_active'), 0);
});
