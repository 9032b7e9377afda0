import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { H2Response } from '../../src/proxy/http/h2-server-stream.ts';

type After = { after(fn: () => unknown): void };

/** A client's request to a server whose one response `write` makes through H2Response (both closed when the test ends). */
async function requestTo(t: After, write: (res: H2Response) => void): Promise<http2.ClientHttp2Stream> {
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.on('error', () => {});
    write(new H2Response(stream));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  t.after(async () => {
    client.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return client.request({ ':path': '/' });
}

/** One response written by `write` through H2Response, as a client sees its head. */
async function responseHead(t: After, write: (res: H2Response) => void): Promise<http2.IncomingHttpHeaders | undefined> {
  const req = await requestTo(t, write);
  let head: http2.IncomingHttpHeaders | undefined;
  req.once('response', (h) => (head = h));
  req.on('error', () => {});
  req.resume();
  await new Promise((resolve) => req.once('close', resolve));
  return head;
}

test('writeHead lower-cases and trims names; a name met again after that keeps the last value, as an object would', async (t) => {
  const head = (await responseHead(t, (res) => {
    res.writeHead(203, { 'X-Dup': 'first', ' x-other ': 'o', 'x-dup': 'second', 'set-cookie': ['a=1', 'b=2'], connection: 'close' });
    res.end();
  }))!;
  assert.equal(head[':status'], 203);
  assert.equal(head['x-dup'], 'second');
  assert.equal(head['x-other'], 'o');
  assert.deepEqual(head['set-cookie'], ['a=1', 'b=2']);
  assert.equal(head.connection, undefined);
  assert.ok(head.date, 'node adds a date header');
});

test('writeHead refuses a pseudo-header and a name that is not a token', async (t) => {
  const errors: string[] = [];
  const head = await responseHead(t, (res) => {
    const bads: Record<string, string>[] = [{ ':path': '/x' }, { 'bad name': 'v' }, { 'b@d': 'v' }];
    for (const bad of bads) {
      try {
        res.writeHead(200, bad);
      } catch (e) {
        errors.push((e as { code: string }).code);
      }
    }
    if (!res.stream.destroyed) res.end();
  });
  assert.deepEqual(errors, ['ERR_HTTP2_PSEUDOHEADER_NOT_ALLOWED', 'ERR_INVALID_HTTP_TOKEN', 'ERR_INVALID_HTTP_TOKEN']);
  assert.equal(head, undefined, 'the stream was reset after the invalid token');
});

/** One response written by `write`, as a client sees its end: trailers and the stream's RST code. */
async function responseEnd(t: After, write: (res: H2Response) => void): Promise<{ body: string; trailers: http2.IncomingHttpHeaders | undefined; rstCode: number | undefined }> {
  const req = await requestTo(t, write);
  let body = '';
  let trailers: http2.IncomingHttpHeaders | undefined;
  req.on('data', (c: Buffer) => (body += c.toString()));
  req.once('trailers', (h) => (trailers = h));
  req.on('error', () => {});
  await new Promise((resolve) => req.once('close', resolve));
  return { body, trailers, rstCode: req.rstCode };
}

test('trailers: sent when expected before the head; added to a head that did not expect them, the stream is reset', async (t) => {
  const expected = await responseEnd(t, (res) => {
    res.expectTrailers();
    res.writeHead(200, {});
    res.write(Buffer.from('body'));
    res.addTrailers({ 'X-Sum': 'abc' });
    res.end();
  });
  assert.equal(expected.body, 'body');
  assert.equal(expected.trailers?.['x-sum'], 'abc');
  assert.equal(expected.rstCode, http2.constants.NGHTTP2_NO_ERROR);

  const late = await responseEnd(t, (res) => {
    res.writeHead(200, {});
    res.write(Buffer.from('body'));
    res.addTrailers({ 'x-sum': 'abc' });
    res.end();
  });
  assert.equal(late.trailers, undefined);
  assert.equal(late.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR, 'never a response that looks complete without its trailers');

  const plain = await responseEnd(t, (res) => {
    res.writeHead(200, {});
    res.addTrailers({});
    res.end(Buffer.from('plain'));
  });
  assert.deepEqual(plain, { body: 'plain', trailers: undefined, rstCode: http2.constants.NGHTTP2_NO_ERROR });
});

test('reset() ends a response mid-body with RST_STREAM INTERNAL_ERROR, not END_STREAM', async (t) => {
  const reset = await responseEnd(t, (res) => {
    res.writeHead(200, {});
    res.write(Buffer.from('start'));
    setImmediate(() => res.reset());
  });
  assert.equal(reset.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR);
});
