import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import http from 'node:http';
import net from 'node:net';
import { H1Parser, H1ParseError, type H1Head } from './h1-parser.ts';

interface Msg {
  head: H1Head;
  body: string;
  trailers: string[] | undefined;
  ended: boolean;
}

interface Run {
  msgs: Msg[];
  interim: number[];
  error?: string;
  remainder?: string;
}

const LIMITS = { maxHeaderBytes: 8192, maxHeaders: 100 };

function parser(kind: 'request' | 'response', out: Run, limits = LIMITS): H1Parser {
  return new H1Parser(kind, limits, {
    onHead: (head) => void out.msgs.push({ head, body: '', trailers: undefined, ended: false }),
    onBody: (chunk) => {
      out.msgs[out.msgs.length - 1].body += chunk.toString('latin1');
    },
    onEnd: (trailers) => {
      const m = out.msgs[out.msgs.length - 1];
      m.trailers = trailers;
      m.ended = true;
    },
    onInformational: (head) => void out.interim.push(head.status),
  });
}

/** Parses input given in pieces; `eof` calls finish() at the end. */
function parse(kind: 'request' | 'response', pieces: string[], opts: { eof?: boolean; setup?: (p: H1Parser) => void; limits?: typeof LIMITS } = {}): Run {
  const out: Run = { msgs: [], interim: [] };
  const p = parser(kind, out, opts.limits);
  opts.setup?.(p);
  try {
    for (const piece of pieces) p.execute(Buffer.from(piece, 'latin1'));
    if (opts.eof) p.finish();
  } catch (err) {
    if (!(err instanceof H1ParseError)) throw err;
    out.error = err.code;
  }
  const r = p.takeRemainder();
  if (r) out.remainder = r.toString('latin1');
  return out;
}

const req = (s: string, opts?: Parameters<typeof parse>[2]): Run => parse('request', [s], opts);
const res = (s: string, opts?: Parameters<typeof parse>[2]): Run => parse('response', [s], opts);

test('simple GET with headers keeps names case and trims values', () => {
  const r = req('GET /a?b=1 HTTP/1.1\r\nHost: x \r\nX-Foo:\tbar baz\t\r\nEmpty:\r\n\r\n');
  assert.equal(r.error, undefined);
  assert.equal(r.msgs.length, 1);
  const h = r.msgs[0].head;
  assert.equal(h.method, 'GET');
  assert.equal(h.target, '/a?b=1');
  assert.equal(h.versionMinor, 1);
  assert.deepEqual(h.rawHeaders, ['Host', 'x', 'X-Foo', 'bar baz', 'Empty', '']);
  assert.equal(h.keepAlive, true);
  assert.equal(h.bodyKind, 'none');
  assert.equal(r.msgs[0].ended, true);
});

test('content-length body, pipelined requests', () => {
  const r = req('POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /n HTTP/1.1\r\n\r\n');
  assert.equal(r.msgs.length, 2);
  assert.equal(r.msgs[0].head.bodyKind, 'length');
  assert.equal(r.msgs[0].head.contentLength, 5);
  assert.equal(r.msgs[0].body, 'hello');
  assert.equal(r.msgs[1].head.target, '/n');
  assert.equal(r.msgs[1].ended, true);
});

test('chunked body with extensions and trailers', () => {
  const r = req('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n6 ; x\r\n world\r\n0\r\nX-T: 1\r\nY: two \r\n\r\n');
  assert.equal(r.error, undefined);
  assert.equal(r.msgs[0].head.bodyKind, 'chunked');
  assert.equal(r.msgs[0].body, 'hello world');
  assert.deepEqual(r.msgs[0].trailers, ['X-T', '1', 'Y', 'two']);
  const plain = req('POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n');
  assert.equal(plain.msgs[0].ended, true);
  assert.equal(plain.msgs[0].trailers, undefined);
});

test('keep-alive from version and Connection', () => {
  assert.equal(req('GET / HTTP/1.1\r\nConnection: close\r\n\r\n').msgs[0].head.keepAlive, false);
  assert.equal(req('GET / HTTP/1.1\r\nConnection: foo, Close\r\n\r\n').msgs[0].head.keepAlive, false);
  assert.equal(req('GET / HTTP/1.0\r\n\r\n').msgs[0].head.keepAlive, false);
  const ka10 = req('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n').msgs[0].head;
  assert.equal(ka10.keepAlive, true);
  assert.equal(ka10.versionMinor, 0);
});

test('upgrade and CONNECT stop the parser and keep the rest', () => {
  const u = req('GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nRAWBYTES');
  assert.equal(u.msgs[0].head.upgrade, true);
  assert.equal(u.remainder, 'RAWBYTES');
  const c = req('CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n\x16\x03');
  assert.equal(c.msgs[0].head.upgrade, true);
  assert.equal(c.msgs[0].head.target, 'a:443');
  assert.equal(c.remainder, '\x16\x03');
  // Upgrade without Connection: upgrade is a plain request.
  assert.equal(req('GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n').msgs[0].head.upgrade, false);
});

test('responses: length, chunked, until-close, no-body statuses, HEAD, 1xx, 101, CONNECT', () => {
  const a = res('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi');
  assert.equal(a.msgs[0].head.status, 200);
  assert.equal(a.msgs[0].head.reason, 'OK');
  assert.equal(a.msgs[0].body, 'hi');
  const b = res('HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
  assert.equal(b.msgs[0].body, 'abc');
  assert.equal(b.msgs[0].ended, true);
  const c = parse('response', ['HTTP/1.1 200 OK\r\n\r\nsome', ' more'], { eof: true });
  assert.equal(c.msgs[0].head.bodyKind, 'until-close');
  assert.equal(c.msgs[0].head.keepAlive, false);
  assert.equal(c.msgs[0].body, 'some more');
  assert.equal(c.msgs[0].ended, true);
  for (const s of [204, 304]) {
    const r = res(`HTTP/1.1 ${s} X\r\nContent-Length: 10\r\n\r\n`);
    assert.equal(r.msgs[0].head.bodyKind, 'none');
    assert.equal(r.msgs[0].ended, true);
  }
  const head = res('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', { setup: (p) => p.expectNoBody() });
  assert.equal(head.msgs.length, 2);
  assert.equal(head.msgs[0].head.bodyKind, 'none');
  assert.equal(head.msgs[0].head.contentLength, 10);
  const interim = res('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
  assert.deepEqual(interim.interim, [100, 103]);
  assert.equal(interim.msgs.length, 1);
  assert.equal(interim.msgs[0].head.status, 200);
  const sw = res('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nframes');
  assert.equal(sw.msgs[0].head.upgrade, true);
  assert.equal(sw.remainder, 'frames');
  const conn = res('HTTP/1.1 200 Connection established\r\n\r\ntunnel', { setup: (p) => p.expectConnect() });
  assert.equal(conn.msgs[0].head.upgrade, true);
  assert.equal(conn.remainder, 'tunnel');
  const noReason = res('HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n');
  assert.equal(noReason.msgs[0].head.reason, '');
});

test('smuggling vectors and malformed input are rejected with a code', () => {
  const cases: [string, string][] = [
    ['POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n', 'CL_AND_TE'],
    ['POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n', 'INVALID_CONTENT_LENGTH'],
    ['POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n', 'INVALID_CONTENT_LENGTH'],
    ['POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n', 'INVALID_CONTENT_LENGTH'],
    ['POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n', 'INVALID_CONTENT_LENGTH'],
    ['POST / HTTP/1.1\r\nContent-Length: \r\n\r\n', 'INVALID_CONTENT_LENGTH'],
    ['POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', 'INVALID_TRANSFER_ENCODING'],
    ['POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n', 'INVALID_TRANSFER_ENCODING'],
    ['POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n', 'INVALID_TRANSFER_ENCODING'],
    ['POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n', 'INVALID_CHUNK'],
    ['POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\n', 'INVALID_CHUNK'],
    ['POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\r\n', 'INVALID_CHUNK'],
    ['POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello', 'INVALID_CHUNK'],
    ['POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n', 'INVALID_CHUNK'],
    ['POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n', 'INVALID_CHUNK'],
    ['GET / HTTP/1.1\r\nX: a\r\n  folded\r\n\r\n', 'INVALID_HEADER'],
    ['GET / HTTP/1.1\r\nX : a\r\n\r\n', 'INVALID_HEADER'],
    ['GET / HTTP/1.1\r\nX(y): a\r\n\r\n', 'INVALID_HEADER'],
    ['GET / HTTP/1.1\r\n: a\r\n\r\n', 'INVALID_HEADER'],
    ['GET / HTTP/1.1\r\nnocolon\r\n\r\n', 'INVALID_HEADER'],
    ['GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n', 'INVALID_HEADER'],
    ['GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n', 'INVALID_HEADER'],
    ['GET / HTTP/1.1\r\nX: a\rb\r\n\r\n', 'INVALID_HEADER'],
    ['GET / HTTP/1.1\r\nX: a\nY: b\r\n\r\n', 'INVALID_LINE_ENDING'],
    ['GET / HTTP/1.1\nHost: a\n\n', 'INVALID_LINE_ENDING'],
    ['GET / HTTP/1.1\r\nHost: a\n', 'INVALID_LINE_ENDING'],
    ['G(T / HTTP/1.1\r\n\r\n', 'INVALID_METHOD'],
    [' GET / HTTP/1.1\r\n\r\n', 'INVALID_METHOD'],
    ['GET /a b HTTP/1.1\r\n\r\n', 'INVALID_TARGET'],
    ['GET /a\x01 HTTP/1.1\r\n\r\n', 'INVALID_TARGET'],
    ['GET / HTTP/2.0\r\n\r\n', 'INVALID_VERSION'],
    ['GET / HTTP/1.2\r\n\r\n', 'INVALID_VERSION'],
    ['GET / http/1.1\r\n\r\n', 'INVALID_VERSION'],
    ['GET /\r\n\r\n', 'INVALID_TARGET'],
  ];
  for (const [input, code] of cases) assert.equal(req(input).error, code, JSON.stringify(input));
  const resCases: [string, string][] = [
    ['HTTP/1.1 20 OK\r\n\r\n', 'INVALID_STATUS'],
    ['HTTP/1.1 2000 OK\r\n\r\n', 'INVALID_STATUS'],
    ['HTTP/1.1 099 X\r\n\r\n', 'INVALID_STATUS'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n', 'CL_AND_TE'],
    ['HTTP/1.1 200 O\x00K\r\n\r\n', 'INVALID_STATUS'],
    ['HTTP/2 200\r\n\r\n', 'INVALID_VERSION'],
  ];
  for (const [input, code] of resCases) assert.equal(res(input).error, code, JSON.stringify(input));
  // Identical repeats are one value (RFC 9110 §8.6).
  const same = req('POST / HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 2, 2\r\n\r\nok');
  assert.equal(same.error, undefined);
  assert.equal(same.msgs[0].body, 'ok');
});

test('limits: head bytes and header count, also when the head arrives in pieces', () => {
  const limits = { maxHeaderBytes: 64, maxHeaders: 2 };
  assert.equal(req(`GET / HTTP/1.1\r\nX: ${'a'.repeat(60)}\r\n\r\n`, { limits }).error, 'HEADERS_TOO_LARGE');
  assert.equal(parse('request', ['GET / HTTP/1.1\r\n', `X: ${'a'.repeat(60)}`], { limits }).error, 'HEADERS_TOO_LARGE');
  assert.equal(req('GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n', { limits }).error, 'TOO_MANY_HEADERS');
  assert.equal(req('GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n', { limits }).error, undefined);
  const trailers = `POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: ${'t'.repeat(70)}\r\n\r\n`;
  assert.equal(req(trailers, { limits }).error, 'HEADERS_TOO_LARGE');
});

test('EOF: mid-message is an error, between messages is not', () => {
  assert.equal(parse('request', ['GET / HTTP/1.1\r\nHost'], { eof: true }).error, 'UNEXPECTED_EOF');
  assert.equal(parse('request', ['POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nab'], { eof: true }).error, 'UNEXPECTED_EOF');
  assert.equal(parse('request', ['GET / HTTP/1.1\r\n\r\n'], { eof: true }).error, undefined);
  assert.equal(parse('response', ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na'], { eof: true }).error, 'UNEXPECTED_EOF');
});

test('pause holds pipelined requests until resume', () => {
  const out: Run = { msgs: [], interim: [] };
  const p: H1Parser = new H1Parser('request', LIMITS, {
    onHead: (head) => void out.msgs.push({ head, body: '', trailers: undefined, ended: false }),
    onBody: (c) => {
      out.msgs[out.msgs.length - 1].body += c.toString();
    },
    onEnd: () => {
      out.msgs[out.msgs.length - 1].ended = true;
      p.pause();
    },
  });
  p.execute(Buffer.from('GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nab'));
  assert.equal(out.msgs.length, 1);
  assert.equal(p.paused, true);
  p.execute(Buffer.from('cGET /3 HTTP/1.1\r\n\r\n'));
  assert.equal(out.msgs.length, 1);
  p.resume();
  assert.equal(out.msgs.length, 2);
  assert.equal(out.msgs[1].body, 'abc');
  p.resume();
  assert.equal(out.msgs.length, 3);
  assert.equal(out.msgs[2].head.target, '/3');
});

// The corpus for the split property: every message kind the codec meets.
const REQUESTS = [
  'GET /a HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n',
  '\r\nPOST /b HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world',
  'PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;e=1\r\nabcd\r\n2\r\nef\r\n0\r\nTr: v\r\n\r\n',
  'GET /d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
  'OPTIONS * HTTP/1.1\r\n\r\n',
];

function summary(r: Run): unknown {
  return { msgs: r.msgs, interim: r.interim, error: r.error, remainder: r.remainder };
}

test('property: splitting the input anywhere gives the same result', () => {
  const inputs = [
    ['request', REQUESTS.join('')],
    ['request', REQUESTS[0] + 'GET /ws HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\nrest of it'],
    ['request', 'POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n'],
    ['request', 'GET / HTTP/1.1\r\nX: a\nGET / HTTP/1.1\r\n\r\n'],
    ['response', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n'],
  ] as const;
  for (const [kind, input] of inputs) {
    const whole = summary(parse(kind, [input]));
    for (let i = 0; i <= input.length; i++) {
      assert.deepEqual(summary(parse(kind, [input.slice(0, i), input.slice(i)])), whole, `${kind} split at ${i}`);
    }
  }
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 400 }), { maxLength: 12 }), fc.boolean(), (cuts, bodies) => {
      const input = bodies ? REQUESTS.join('') : REQUESTS.slice(0, 2).join('') + 'GET /x HTTP/1.1\r\nBad Name: v\r\n\r\n';
      const points = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((a, b) => a - b);
      const pieces: string[] = [];
      let last = 0;
      for (const c of points) {
        pieces.push(input.slice(last, c));
        last = c;
      }
      pieces.push(input.slice(last));
      assert.deepEqual(summary(parse('request', pieces)), summary(parse('request', [input])));
    }),
    { numRuns: 300 },
  );
});

test('property: arbitrary header values round-trip or are rejected, never crash', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary-ascii', maxLength: 40 }), (value) => {
      const r = req(`GET / HTTP/1.1\r\nX: ${value}\r\n\r\n`);
      if (r.error === undefined) {
        assert.equal(r.msgs[0].head.rawHeaders[1], value.replace(/^[ \t]+|[ \t]+$/g, ''));
        for (const ch of value) assert.ok(ch === '\t' || (ch >= ' ' && ch !== '\x7f'), `accepted 0x${ch.charCodeAt(0).toString(16)}`);
      } else assert.match(r.error, /^(INVALID_HEADER|INVALID_LINE_ENDING|HEADERS_TOO_LARGE)$/);
    }),
  );
});

// === against node's own parser (llhttp, through node:http's server) ===

interface Seen {
  method?: string;
  url?: string;
  rawHeaders?: string[];
  body?: string;
  error?: string;
}

/** What node's HTTP server makes of each message (one connection per message). */
async function nodeSees(messages: string[]): Promise<Seen[]> {
  const bySocket = new Map<unknown, Seen>();
  const server = http.createServer({ requireHostHeader: false }, (req, res) => {
    const seen = bySocket.get(req.socket)!;
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      Object.assign(seen, { method: req.method, url: req.url, rawHeaders: req.rawHeaders, body });
      res.end();
    });
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
    bySocket.get(socket)!.error = err.code;
    socket.destroy();
  });
  server.on('connection', (s) => bySocket.set(s, pending.shift()!));
  const pending: Seen[] = [];
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const results: Seen[] = [];
  try {
    for (const m of messages) {
      const seen: Seen = {};
      pending.push(seen);
      results.push(seen);
      await new Promise<void>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => s.end(m, 'latin1'));
        s.on('data', () => undefined);
        s.on('error', () => undefined);
        s.on('close', () => resolve());
      });
    }
  } finally {
    server.close();
  }
  return results;
}

const VALID = [
  'GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Multi: 1\r\nx-multi: 2\r\nX-Ows:  \t padded \t \r\n\r\n',
  'POST /p HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody',
  'POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n',
  'GET http://example.com:8080/abs?q HTTP/1.1\r\nHost: example.com:8080\r\n\r\n',
  'OPTIONS * HTTP/1.1\r\n\r\n',
  'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
  'PATCH /obs HTTP/1.1\r\nX-Latin: caf\xe9 \xff\r\nEmpty:\r\n\r\n',
  'DELETE /%7Euser/a%20b HTTP/1.1\r\n\r\n',
];

const INVALID = [
  'POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
  'GET / HTTP/1.1\r\nBad Name: v\r\n\r\n',
  'GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n',
  'GET /a b HTTP/1.1\r\n\r\n',
  'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
  'GET / HTTP/1.1\nHost: x\n\n',
  'GET / HTTP/1.1\r\nHost : x\r\n\r\n',
];

test('agrees with node\'s parser: the same heads and bodies for valid messages, a refusal for invalid ones', async () => {
  const node = await nodeSees([...VALID, ...INVALID]);
  VALID.forEach((m, i) => {
    const ours = req(m, { eof: true });
    assert.equal(ours.error, undefined, m);
    assert.equal(node[i].error, undefined, m);
    const h = ours.msgs[0].head;
    assert.deepEqual({ method: h.method, url: h.target, rawHeaders: h.rawHeaders, body: ours.msgs[0].body }, { method: node[i].method, url: node[i].url, rawHeaders: node[i].rawHeaders, body: node[i].body }, m);
  });
  INVALID.forEach((m, j) => {
    const i = VALID.length + j;
    assert.notEqual(req(m, { eof: true }).error, undefined, m);
    assert.notEqual(node[i].error, undefined, `node accepted ${JSON.stringify(m)}: ${JSON.stringify(node[i])}`);
  });
});
