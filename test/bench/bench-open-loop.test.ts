// The benchmark's open-loop generator (bench/load) against a real HTTP/1.1 server: every due
// request is sent and recorded, sends rotate over the connections, and the response framings a
// proxy may produce (Content-Length, chunked, Connection: close) and error statuses are handled.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { runOpenLoop, type OpenLoopConfig, type OpenLoopMessage, type OpenLoopProcessResult } from '../../bench/load/open-loop.ts';

const BODY = Buffer.alloc(1024, 'x');

async function server(t: { after: (fn: () => unknown) => void }) {
  const perSocket = new Map<net.Socket, number>();
  const srv = http.createServer((req, res) => {
    perSocket.set(req.socket, (perSocket.get(req.socket) ?? 0) + 1);
    if (req.url === '/chunked') {
      res.write(BODY.subarray(0, 100));
      res.end(BODY.subarray(100));
    } else if (req.url === '/close') {
      res.writeHead(200, { 'content-length': BODY.length, connection: 'close' });
      res.end(BODY);
    } else if (req.url === '/fail') {
      res.writeHead(500, { 'content-length': 0 });
      res.end();
    } else {
      res.writeHead(200, { 'content-length': BODY.length });
      res.end(BODY);
    }
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => srv.close(r)));
  srv.keepAliveTimeout = 60_000;
  return { port: (srv.address() as net.AddressInfo).port, perSocket };
}

async function load(port: number, path: string): Promise<{ result: OpenLoopProcessResult; messages: string[] }> {
  const cfg: OpenLoopConfig = {
    protocol: 'h1',
    host: '127.0.0.1',
    port,
    path,
    authority: `127.0.0.1:${port}`,
    rate: 400,
    connections: 4,
    startAtEpochMs: Date.now() + 50,
    phaseMs: 0,
    warmupMs: 50, // 20 requests
    durationMs: 250, // 100 requests
    timing: 'clock',
  };
  const messages: string[] = [];
  let result: OpenLoopProcessResult | undefined;
  await runOpenLoop(cfg, (m: OpenLoopMessage) => {
    messages.push(m.type);
    if (m.type === 'result') result = m.result;
  });
  assert.ok(result, 'a result was emitted');
  return { result, messages };
}

test('every due request is sent once, recorded after the warm-up, over all connections in turn', async (t) => {
  const { port, perSocket } = await server(t);
  const { result, messages } = await load(port, '/');
  assert.deepEqual(messages, ['measuring', 'ended', 'result']);
  assert.equal(result.scheduled, 100);
  assert.equal(result.latencies.length, 100);
  assert.equal(result.serviceTimes.length, 100);
  assert.equal(result.errors, 0);
  assert.equal(result.unfinished, 0);
  for (let i = 0; i < 100; i++) assert.ok(result.latencies[i] >= result.serviceTimes[i] - 0.001, 'latency counts from the due time, not the write');
  const counts = [...perSocket.values()];
  assert.equal(counts.length, 4);
  assert.equal(counts.reduce((a, b) => a + b, 0), 120);
  for (const c of counts) assert.equal(c, 30, 'request k goes to connection k mod 4');
});

test('chunked responses and Connection: close are followed to their end', async (t) => {
  const { port } = await server(t);
  for (const path of ['/chunked', '/close']) {
    const { result } = await load(port, path);
    assert.equal(result.latencies.length, 100, `${path}: ${JSON.stringify({ ...result, latencies: result.latencies.length, serviceTimes: undefined })}`);
    assert.equal(result.errors, 0, path);
  }
});

test('non-2xx answers are errors, counted by kind, not latencies', async (t) => {
  const { port } = await server(t);
  const { result } = await load(port, '/fail');
  assert.equal(result.latencies.length, 0);
  assert.equal(result.errors, 100);
  assert.deepEqual(result.errorKinds, { 'status 500': 100 });
});
