// One probe attempt of each kind against real servers: tcpSocket, grpc health (SERVING / NOT_SERVING),
// httpGet in explicit mode (the application's own port), and failures on closed ports.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { runProbe } from './workload-prober.ts';
import type { WorkloadInstance } from './service-registry.ts';

const workload: WorkloadInstance = { key: 'vm-1', name: 'vm', namespace: 'ns', labels: {}, serviceAccount: 'sa', address: '127.0.0.1', namedPorts: {}, ports: [], tlsMode: 'disabled', locality: '', weight: 1, group: 'vm' };

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('tcpSocket: open port passes, closed port fails', async (t) => {
  const s = net.createServer((c) => c.end());
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => s.close(() => r())));
  assert.equal(await runProbe({ tcpSocket: { port: (s.address() as net.AddressInfo).port } }, workload), true);
  assert.equal(await runProbe({ tcpSocket: { port: await closedPort() } }, workload), false);
});

test('httpGet in explicit mode probes the application port behind the workload port', async (t) => {
  const app = http.createServer((req, res) => res.writeHead(req.url === '/healthz' ? 204 : 500).end());
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => app.close(() => r())));
  const appPort = (app.address() as net.AddressInfo).port;
  assert.equal(await runProbe({ httpGet: { port: 9080, path: '/healthz' } }, { ...workload, appPorts: { '9080': appPort } }), true);
  assert.equal(await runProbe({ httpGet: { port: 9080, path: '/other' } }, { ...workload, appPorts: { '9080': appPort } }), false);
});

test('grpc: grpc.health.v1 Check answers SERVING for the service, NOT_SERVING otherwise', async (t) => {
  const server = new grpc.Server();
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
  server.addService(
    { Check: { path: '/grpc.health.v1.Health/Check', requestStream: false, responseStream: false, requestSerialize: (s: string) => Buffer.from(s), requestDeserialize: decode, responseSerialize: encode, responseDeserialize: () => 0 } } as unknown as grpc.ServiceDefinition,
    { Check: (call: grpc.ServerUnaryCall<string, number>, cb: grpc.sendUnaryData<number>) => cb(null, call.request === 'ready' ? 1 : 2) } as unknown as grpc.UntypedServiceImplementation,
  );
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  t.after(() => server.forceShutdown());
  assert.equal(await runProbe({ grpc: { port, service: 'ready' } }, workload), true);
  assert.equal(await runProbe({ grpc: { port, service: 'busy' } }, workload), false);
  assert.equal(await runProbe({ grpc: { port: await closedPort() }, timeoutSeconds: 1 }, workload), false);
});
