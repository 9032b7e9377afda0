import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NDS_TYPE_URL, packNameTable, unpackNameTable } from './dns-nds.ts';
import type { NameTable } from './dns-name-table.ts';

test('a name table survives the NDS wire format (Istio NameTable)', () => {
  const t: NameTable = {
    table: {
      'reviews.default.svc.cluster.local': { ips: ['10.96.0.12'], registry: 'Kubernetes', shortname: 'reviews', namespace: 'default' },
      'api.example.com': { ips: ['240.240.0.1', '2001:2::1'], registry: 'External' },
      'empty.example.com': { ips: [] },
    },
  };
  const any = packNameTable(t);
  assert.equal(any.type_url, NDS_TYPE_URL);
  // Field 1 (the map) of a NameTable, length-delimited: the bytes are Istio's wire format.
  assert.equal(any.value[0], (1 << 3) | 2);
  assert.deepEqual(unpackNameTable(any), t);
});

test('a wrong type or an invalid table is refused', () => {
  assert.throws(() => unpackNameTable({ type_url: 'type.googleapis.com/envoy.config.listener.v3.Listener', value: new Uint8Array() }), /expected a/);
  assert.throws(() => packNameTable({ table: { 'x.com': { ips: ['nope'] } } }), /not an IP address/);
});
