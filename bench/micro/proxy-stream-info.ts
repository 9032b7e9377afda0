// Micro-benchmark of one request's StreamInfo (not part of the tests):
//   node bench/micro/proxy-stream-info.ts [--n 3000000]
// Creates the record and fills it in the order the HTTP path does (constructor, route, upstream
// attempt, response, finish), then reads it as telemetry does. Compares the record created with
// every field present (one hidden class, one allocation) against the record grown field by field
// (a map transition per new field and a growing out-of-object property store).
import { parseArgs } from 'node:util';
import { newStreamInfo, type StreamInfo } from '../../src/proxy/stream-info.ts';

const { values } = parseArgs({ options: { n: { type: 'string', default: '3000000' } } });
const n = Number(values.n);

/** The record as it was before: only the always-set fields, the rest added on the way. */
function grownStreamInfo(direction: StreamInfo['direction'], protocol: string): StreamInfo {
  return { startTime: Date.now(), startMonotonic: performance.now(), direction, protocol, responseCode: 0, responseFlags: 0, bytesReceived: 0, bytesSent: 0, mtls: false };
}

let sink = 0;
function request(make: typeof newStreamInfo, i: number): void {
  const info = make('inbound', 'HTTP/1.1');
  info.downstreamRemoteAddress = '127.0.0.1:40000';
  info.downstreamLocalAddress = '127.0.0.1:15006';
  info.requestedServerName = undefined;
  info.mtls = false;
  info.isGrpc = false;
  info.method = 'GET';
  info.path = '/';
  info.authority = 'reviews:9080';
  info.scheme = 'http';
  info.userAgent = 'wrk';
  info.forwardedFor = undefined;
  info.bytesReceived = 0;
  info.requestId = 'a1b2';
  info.routeName = 'default';
  info.upstreamCluster = 'outbound|9080||reviews';
  info.upstreamHost = '127.0.0.1:9080';
  info.upstreamServiceTimeMs = 0.3;
  info.responseCodeDetails = 'via_upstream';
  info.responseCode = 200;
  info.bytesSent += 1024;
  info.durationMs = performance.now() - info.startMonotonic;
  sink += info.responseCode + info.bytesSent + (info.upstreamCluster!.length & i) + (info.durationMs > 1e9 ? 1 : 0);
}

function nsPer(make: typeof newStreamInfo): number {
  for (let i = 0; i < 200_000; i++) request(make, i);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) request(make, i);
  return Number(process.hrtime.bigint() - t0) / n;
}

// Alternate to even out JIT and GC effects; report the best of three.
const best = { full: Infinity, grown: Infinity };
for (let r = 0; r < 3; r++) {
  best.full = Math.min(best.full, nsPer(newStreamInfo));
  best.grown = Math.min(best.grown, nsPer(grownStreamInfo));
}
console.log(`StreamInfo, every field declared up front: ${best.full.toFixed(1)} ns/request`);
console.log(`StreamInfo, grown field by field:          ${best.grown.toFixed(1)} ns/request`);
if (sink === 42) console.log('');
