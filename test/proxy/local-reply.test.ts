// HCM local_reply_config: mappers (filters on status, response flags and headers; status rewrite,
// body, headers) and body formats (text / JSON with %LOCAL_REPLY_BODY%), for HTTP and gRPC.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { test } from 'node:test';
import fs from 'node:fs';
import path from 'node:path';
import { configure, deadPort, httpListener, request, routeConfig, startRuntime, startTestRuntime, staticCluster } from './harness.ts';
import { tempDir } from '../helpers/temp-dir.ts';

// As Envoy's local reply modification docs write it (header_filter, status_code_filter, override).
const LOCAL_REPLY_CONFIG = {
  mappers: [
    {
      filter: { and_filter: { filters: [{ status_code_filter: { comparison: { op: 'EQ', value: { default_value: 400, runtime_key: 'key_b' } } } }, { header_filter: { header: { name: 'test-header', present_match: true } } }] } },
      headers_to_add: [{ header: { key: 'foo', value: 'bar' }, append: false }],
      status_code: 401,
      body: { inline_string: 'not allowed' },
    },
    {
      filter: { response_flag_filter: { flags: ['NR'] } },
      body_format_override: { json_format: { level: 'TRACE', user_agent: '%REQ(USER-AGENT)%', code: '%RESPONSE_CODE%', response_body: '%LOCAL_REPLY_BODY%' } },
    },
    {
      filter: { response_flag_filter: { flags: ['UH'] } },
      status_code: 403,
      body: { inline_string: 'nobody home' },
    },
    {
      filter: { status_code_filter: { comparison: { op: 'EQ', value: { default_value: 403, runtime_key: 'k' } } } },
      status_code: 426,
      body: { inline_string: 'upgrade refused' },
    },
  ],
  body_format: { text_format: '%LOCAL_REPLY_BODY% %RESPONSE_CODE% %REQ(:path)%\n' },
};

test('local_reply_config: mappers rewrite status, body and headers; body_format renders text or JSON; gRPC gets the mapped status', async (t) => {
  const h = await startRuntime();
  const dead = await deadPort();
  t.after(() => h.close());
  const routes = routeConfig('r', [
    { match: { prefix: '/bad' }, direct_response: { status: 400, body: { inline_string: 'bad request' } } },
    { match: { prefix: '/dead' }, route: { cluster: 'dead' } },
    { match: { prefix: '/empty' }, route: { cluster: 'empty' } },
  ]);
  await configure(h, {
    clusters: [staticCluster('dead', [dead]), { ...staticCluster('empty', []), http2_protocol_options: {} }],
    listeners: [httpListener('l', routes, { local_reply_config: LOCAL_REPLY_CONFIG }), httpListener('plain', routes)],
  });
  const port = h.port('l');

  // First mapper: 400 with test-header → 401, its body and header, then body_format.
  let r = await request(port, { path: '/bad', headers: { 'test-header': 'x' } });
  assert.equal(r.status, 401);
  assert.equal(r.headers.foo, 'bar');
  assert.equal(r.headers['content-type'], 'text/plain');
  assert.equal(r.body, 'not allowed 401 /bad\n');
  // Same status without the header: no mapper, body_format only.
  r = await request(port, { path: '/bad' });
  assert.equal(r.status, 400);
  assert.equal(r.headers.foo, undefined);
  assert.equal(r.body, 'bad request 400 /bad\n');

  // NR: the override's JSON format (single commands keep their type).
  r = await request(port, { path: '/nowhere', headers: { 'user-agent': 'probe/1' } });
  assert.equal(r.status, 404);
  assert.equal(r.headers['content-type'], 'application/json');
  assert.deepEqual(JSON.parse(r.body), { level: 'TRACE', user_agent: 'probe/1', code: 404, response_body: '' });

  // UF: no mapper matches; the router's body goes through body_format.
  r = await request(port, { path: '/dead' });
  assert.equal(r.status, 503);
  assert.match(r.body, /^upstream connect error or disconnect\/reset before headers\. .* 503 \/dead\n$/);
  assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body));

  // UH → 403: the rewritten status is what gRPC clients see as grpc-status (7 PERMISSION_DENIED).
  const session = http2.connect(`http://127.0.0.1:${port}`);
  t.after(() => session.close());
  const grpc = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
    const s = session.request({ ':method': 'POST', ':path': '/empty/svc.S/M', 'content-type': 'application/grpc', te: 'trailers' });
    let head: http2.IncomingHttpHeaders = {};
    s.on('response', (hd) => (head = hd));
    s.on('trailers', (tr) => (head = { ...head, ...tr }));
    s.on('end', () => resolve(head));
    s.on('error', reject);
    s.resume();
    s.end();
  });
  assert.equal(grpc[':status'], 200);
  assert.equal(grpc['grpc-status'], '7');
  assert.equal(decodeURIComponent(String(grpc['grpc-message'])), 'nobody home 403 /empty/svc.S/M\n');

  // A refused upgrade (tunnels answer on the raw socket) goes through the mappers too.
  const sock = net.connect(port, '127.0.0.1');
  t.after(() => sock.destroy());
  const raw = await new Promise<string>((resolve, reject) => {
    let text = '';
    sock.on('data', (c: Buffer) => (text += c));
    sock.on('end', () => resolve(text));
    sock.on('error', reject);
    sock.write('GET /bad HTTP/1.1\r\nhost: a\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n');
  });
  assert.match(raw, /^HTTP\/1\.1 426 /);
  assert.match(raw, /\r\n\r\nupgrade refused 426 \/bad\n$/);

  // An HCM without local_reply_config keeps Envoy's default replies.
  r = await request(h.port('plain'), { path: '/bad', headers: { 'test-header': 'x' } });
  assert.equal(r.status, 400);
  assert.equal(r.body, 'bad request');

  // omit_empty_values: a missing request header leaves its JSON key out, and prints nothing in text.
  await configure(h, {
    listeners: [
      httpListener('omit-json', routes, { local_reply_config: { body_format: { json_format: { ua: '%REQ(USER-AGENT)%', code: '%RESPONSE_CODE%' }, omit_empty_values: true } } }),
      httpListener('omit-text', routes, { local_reply_config: { body_format: { text_format: '[%REQ(X-MISSING)%] %RESPONSE_CODE%', omit_empty_values: true } } }),
    ],
  });
  r = await request(h.port('omit-json'), { path: '/bad' });
  assert.deepEqual(JSON.parse(r.body), { code: 400 });
  r = await request(h.port('omit-text'), { path: '/bad' });
  assert.equal(r.body, '[] 400');
});

test('local_reply_config errors name their paths', async (t) => {
  const h = await startRuntime();
  t.after(() => h.close());
  const cfg = { mappers: [{ status_code: 700 }], body_format: { text_format_source: { filename: '/nonexistent/rig-format' } } };
  await assert.rejects(configure(h, { listeners: [httpListener('l', routeConfig('r', []), { local_reply_config: cfg })] }), (e: Error) => {
    assert.match(e.message, /local_reply_config\.mappers\[0\]\.filter.*needs a filter/);
    assert.match(e.message, /local_reply_config\.mappers\[0\]\.status_code.*between 200 and 599/);
    assert.match(e.message, /local_reply_config\.body_format\.text_format_source\.filename: cannot read/);
    return true;
  });
  const both = { body_format: { text_format: 'a', json_format: { a: 'b' } } };
  await assert.rejects(configure(h, { listeners: [httpListener('l', routeConfig('r', []), { local_reply_config: both })] }), /local_reply_config\.body_format.*alternatives/);
});

test('local reply bodies and formats come from any DataSource: a file, or inline bytes', async (t) => {
  const dir = tempDir(t);
  fs.writeFileSync(path.join(dir, 'format.txt'), 'from a file: %RESPONSE_CODE% %LOCAL_REPLY_BODY%');
  fs.writeFileSync(path.join(dir, 'body.txt'), 'mapped body');
  const h = await startTestRuntime(t);
  const cfg = {
    mappers: [{ filter: { status_code_filter: { comparison: { op: 'EQ', value: { default_value: 404, runtime_key: 'k' } } } }, body: { filename: path.join(dir, 'body.txt') } }],
    body_format: { text_format_source: { filename: path.join(dir, 'format.txt') } },
  };
  const bytes = { body_format: { text_format_source: { inline_bytes: Buffer.from('bytes %RESPONSE_CODE%').toString('base64') } } };
  await configure(h, { listeners: [httpListener('file', routeConfig('r', []), { local_reply_config: cfg }), httpListener('bytes', routeConfig('r', []), { local_reply_config: bytes })] });
  assert.equal((await request(h.port('file'))).body, 'from a file: 404 mapped body');
  assert.equal((await request(h.port('bytes'))).body, 'bytes 404');
});
