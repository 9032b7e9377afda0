// One probe attempt of each kind against real servers and real commands: exec (exit status, no
// shell, timeout), tcpSocket, httpGet through the application port of explicit mode, grpc health
// (SERVING / NOT_SERVING); each failure says why.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { listenLocal } from '../../../test/helpers/listen.ts';
import { startGrpcServer } from '../../../test/helpers/grpc-server.ts';
import { tempDir } from '../../../test/helpers/temp-dir.ts';
import { probeOnce } from './workload-probe.ts';

async function closedPort(): Promise<number> {
  const s = net.createServer();
  const port = await listenLocal(s);
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('exec: exit status 0 passes, another fails with the status and output', async (t) => {
  const file = path.join(tempDir(t), 'healthy');
  assert.deepEqual(await probeOnce({ exec: { command: ['test', '-f', file] } }, {}, 5000), { healthy: false, message: `command "test -f ${file}" exited with status 1` });
  fs.writeFileSync(file, '');
  assert.deepEqual(await probeOnce({ exec: { command: ['test', '-f', file] } }, {}, 5000), { healthy: true, message: '' });
  const r = await probeOnce({ exec: { command: ['sh', '-c', 'echo not ready >&2; exit 3'] } }, {}, 5000);
  assert.deepEqual(r, { healthy: false, message: 'command "sh -c echo not ready >&2; exit 3" exited with status 3: not ready' });
});

test('exec: no shell runs unless named; a missing program and a timeout fail', async (t) => {
  const dir = tempDir(t);
  // As a shell line this would create the file; run as a program name it does not exist.
  const marker = path.join(dir, 'made-by-a-shell');
  const viaShell = await probeOnce({ exec: { command: [`touch ${marker}`] } }, {}, 5000);
  assert.equal(viaShell.healthy, false);
  assert.match(viaShell.message, /cannot run "touch .*": spawn .* ENOENT/);
  assert.equal(fs.existsSync(marker), false);
  const slow = await probeOnce({ exec: { command: ['sleep', '30'] } }, {}, 300);
  assert.deepEqual(slow, { healthy: false, message: 'command "sleep 30" timed out after 0.3s' });
});

test('tcpSocket: an open port passes, a closed one fails', async (t) => {
  const port = await listenLocal(net.createServer((c) => c.end()), t);
  assert.deepEqual(await probeOnce({ tcpSocket: { port } }, {}, 5000), { healthy: true, message: '' });
  const closed = await closedPort();
  const r = await probeOnce({ tcpSocket: { port: closed } }, {}, 5000);
  assert.equal(r.healthy, false);
  assert.match(r.message, new RegExp(`connect 127.0.0.1:${closed}: .*ECONNREFUSED`));
});

test('httpGet in explicit mode probes the application port behind the workload port, with the given headers', async (t) => {
  const seen: http.IncomingHttpHeaders[] = [];
  const app = http.createServer((req, res) => {
    seen.push(req.headers);
    res.writeHead(req.url === '/healthz' ? 204 : 503).end();
  });
  const appPort = await listenLocal(app, t);
  const target = { appPorts: { '9080': appPort } };
  assert.deepEqual(await probeOnce({ httpGet: { port: 9080, path: '/healthz', httpHeaders: [{ name: 'Host', value: 'vm.example' }, { name: 'x-probe', value: 'yes' }] } }, target, 5000), { healthy: true, message: '' });
  assert.equal(seen[0].host, 'vm.example');
  assert.equal(seen[0]['x-probe'], 'yes');
  assert.equal(seen[0]['user-agent'], 'istio-probe/1.0');
  assert.deepEqual(await probeOnce({ httpGet: { port: 9080, path: '/other' } }, target, 5000), { healthy: false, message: `GET http://127.0.0.1:${appPort}/other: status 503, not 200-399` });
});

test('httpGet: a server that does not answer in time fails', async (t) => {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => sockets.push(s));
  t.after(() => sockets.forEach((s) => s.destroy()));
  const port = await listenLocal(server, t);
  const r = await probeOnce({ httpGet: { port } }, {}, 200);
  assert.equal(r.healthy, false);
  assert.match(r.message, /timed out after 0.2s/);
});

test('grpc: grpc.health.v1 Check answers SERVING for the service, NOT_SERVING otherwise', async (t) => {
  const decode = (b: Buffer) => {
    const r = protobuf.Reader.create(b);
    let service = '';
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag >>> 3 === 1) service = r.string();
      else r.skipType(tag & 7);
    }
    return service;
  };
  const encode = (status: number) => Buffer.from(protobuf.Writer.create().uint32(8).int32(status).finish());
  const port = await startGrpcServer(
    t,
    { Check: { path: '/grpc.health.v1.Health/Check', requestStream: false, responseStream: false, requestSerialize: (s: string) => Buffer.from(s), requestDeserialize: decode, responseSerialize: encode, responseDeserialize: () => 0 } } as unknown as grpc.ServiceDefinition,
    { Check: (call: grpc.ServerUnaryCall<string, number>, cb: grpc.sendUnaryData<number>) => cb(null, call.request === 'ready' ? 1 : 2) } as unknown as grpc.UntypedServiceImplementation,
  );
  assert.deepEqual(await probeOnce({ grpc: { port, service: 'ready' } }, {}, 5000), { healthy: true, message: '' });
  assert.deepEqual(await probeOnce({ grpc: { port, service: 'busy' } }, {}, 5000), { healthy: false, message: `grpc.health.v1.Health/Check on 127.0.0.1:${port} for "busy": status 2, not SERVING` });
  assert.equal((await probeOnce({ grpc: { port: await closedPort() } }, {}, 5000)).healthy, false);
});

test('exec runs in the agent\'s own environment unless the runtime gives the application\'s', async () => {
  const probe = { exec: { command: ['sh', '-c', 'test "$RIG_PROBE_ENV_TEST" = app'] } };
  assert.equal(process.env.RIG_PROBE_ENV_TEST, undefined);
  assert.equal((await probeOnce(probe, {}, 5000)).healthy, false);
  assert.deepEqual(await probeOnce(probe, { execEnv: { PATH: process.env.PATH, RIG_PROBE_ENV_TEST: 'app' } }, 5000), { healthy: true, message: '' });
});
