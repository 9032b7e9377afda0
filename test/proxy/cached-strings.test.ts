// What the proxy's long-lived caches keep of the requests that filled them: their own strings only.
// The HTTP/1 parser cuts header names and values from one string of the whole head, and V8 makes
// such a cut a view that keeps that string alive (core/detached-string.ts). Each test fills a cache
// from 600 requests whose heads carry an 8 KB cookie, and measures the heap after garbage
// collection: keeping the heads would read above 8 KB an entry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { settledHeap } from '../helpers/leak-baseline.ts';
import { compileRouteConfig } from '../../src/proxy/routing/route-config.ts';
import { Issues } from '../../src/proxy/config/reader.ts';
import { decodePeerHeader } from '../../src/proxy/telemetry/peer-metadata.ts';
import { CounterFamily } from '../../src/proxy/telemetry/metric-families.ts';

const ENTRIES = 600;
const MAX_PER_ENTRY = 2048;

/** Header `name` of request i, cut from its head as the parser cuts it. */
function headerOf(i: number, name: string, value: string): string {
  const head = `GET / HTTP/1.1\r\n${name}: ${value}\r\ncookie: session=${'c'.repeat(8192)}${i}\r\n`;
  const at = head.indexOf(`${name}: `) + name.length + 2;
  return head.slice(at, head.indexOf('\r\n', at));
}

async function bytesPerEntry(fill: (i: number) => void): Promise<number> {
  const before = await settledHeap();
  for (let i = 0; i < ENTRIES; i++) fill(i);
  return ((await settledHeap()) - before) / ENTRIES;
}

test("the route table's virtual host cache keeps each Host it has seen, not the head it came in", async (t) => {
  const table = compileRouteConfig({ name: 'r', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c' } }] }] }, 'rds', new Issues());
  const bytes = await bytesPerEntry((i) => assert.equal(table.findVirtualHost(headerOf(i, 'host', `tenant-${i}.reviews.default.svc.cluster.local:9080`))?.name, 'vh'));
  t.diagnostic(`${Math.round(bytes)} bytes per cached Host`);
  assert.ok(bytes < MAX_PER_ENTRY, `${Math.round(bytes)} bytes per cached Host`);
});

test('the peer metadata cache keeps each header value it decoded (or failed to), not its head', async (t) => {
  const bytes = await bytesPerEntry((i) => void decodePeerHeader(headerOf(i, 'x-envoy-peer-metadata', `ChQKBE5BTUUSDBoKcmV2aWV3cy12${i}`)));
  t.diagnostic(`${Math.round(bytes)} bytes per cached peer`);
  assert.ok(bytes < MAX_PER_ENTRY, `${Math.round(bytes)} bytes per cached peer`);
});

test('a metric series keeps its own label text, not the heads its label values came from', async (t) => {
  const family = new CounterFamily('istio_requests_total', 'requests');
  const bytes = await bytesPerEntry((i) => family.child({ reporter: 'destination', destination_service: headerOf(i, 'host', `tenant-${i}.reviews.default.svc.cluster.local`), request_protocol: 'http' }).inc());
  t.diagnostic(`${Math.round(bytes)} bytes per series`);
  assert.ok(bytes < MAX_PER_ENTRY, `${Math.round(bytes)} bytes per series`);
});
