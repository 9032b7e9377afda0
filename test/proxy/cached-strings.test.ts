// What the proxy's long-lived caches keep of the requests that filled them: their own strings only.
// The HTTP/1 parser cuts header names and values from one string of the whole head, and V8 makes
// such a cut a view that keeps that string alive (core/detached-string.ts). Each test fills a cache
// from 600 requests whose heads carry an 8 KB cookie: keeping the heads would read above 8 KB an
// entry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { heapBytesPerItem, moduleUrl } from '../helpers/heap-per-item.ts';

const src = (p: string) => moduleUrl(path.join(import.meta.dirname, '../../src', p));
const ENTRIES = 600;
const MAX_PER_ENTRY = 2048;

/** A script helper: request i's head, and a header's value cut from it as the parser cuts it. */
const HEADS = `
  const head = (i, name, value) => 'GET / HTTP/1.1\\r\\n' + name + ': ' + value + '\\r\\ncookie: session=' + 'c'.repeat(8192) + i + '\\r\\n';
  const cut = (h, name) => h.slice(h.indexOf(name + ': ') + name.length + 2, h.indexOf('\\r\\n', h.indexOf(name + ': ')));
`;

function perEntry(prelude: string, fill: string): number {
  return heapBytesPerItem(prelude + HEADS, `const ENTRIES = ${ENTRIES};\n${fill}`);
}

test("the route table's virtual host cache keeps each Host it has seen, not the head it came in", (t) => {
  const bytes = perEntry(
    `import { compileRouteConfig } from ${src('proxy/routing/route-config.ts')};
     import { Issues } from ${src('proxy/config/reader.ts')};
     const table = compileRouteConfig({ name: 'r', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c' } }] }] }, 'rds', new Issues());`,
    `for (let i = 0; i < ENTRIES; i++) {
       const h = head(i, 'host', 'tenant-' + i + '.reviews.default.svc.cluster.local:9080');
       if (table.findVirtualHost(cut(h, 'host'))?.name !== 'vh') throw new Error('no virtual host');
     }
     return { kept: table, items: ENTRIES };`,
  );
  t.diagnostic(`${Math.round(bytes)} bytes per cached Host`);
  assert.ok(bytes < MAX_PER_ENTRY, `${Math.round(bytes)} bytes per cached Host`);
});

test('the peer metadata cache keeps each header value it decoded (or failed to), not its head', (t) => {
  const bytes = perEntry(
    `import { decodePeerHeader } from ${src('proxy/telemetry/peer-metadata.ts')};`,
    `for (let i = 0; i < ENTRIES; i++) decodePeerHeader(cut(head(i, 'x-envoy-peer-metadata', 'ChQKBE5BTUUSDBoKcmV2aWV3cy12' + i), 'x-envoy-peer-metadata'));
     return { kept: decodePeerHeader, items: ENTRIES };`,
  );
  t.diagnostic(`${Math.round(bytes)} bytes per cached peer`);
  assert.ok(bytes < MAX_PER_ENTRY, `${Math.round(bytes)} bytes per cached peer`);
});

test('a metric series keeps its own label text, not the heads its label values came from', (t) => {
  const bytes = perEntry(
    `import { CounterFamily } from ${src('proxy/telemetry/metric-families.ts')};
     const family = new CounterFamily('istio_requests_total', 'requests');`,
    `for (let i = 0; i < ENTRIES; i++) {
       const h = head(i, 'host', 'tenant-' + i + '.reviews.default.svc.cluster.local');
       family.child({ reporter: 'destination', destination_service: cut(h, 'host'), request_protocol: 'http' }).inc();
     }
     return { kept: family, items: ENTRIES };`,
  );
  t.diagnostic(`${Math.round(bytes)} bytes per series`);
  assert.ok(bytes < MAX_PER_ENTRY, `${Math.round(bytes)} bytes per series`);
});
