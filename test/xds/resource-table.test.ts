import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveResourceName } from '../../src/api/index.ts';
import { humanDuration, resourceTable } from '../../src/xds/debug/resource-table.ts';

test("AGE reads as kubectl's: exact while young, coarser with age", () => {
  const s = 1000;
  const m = 60 * s;
  const h = 60 * m;
  const d = 24 * h;
  const cases: [number, string][] = [
    [-5 * s, '<invalid>'],
    [-1 * s, '0s'],
    [0, '0s'],
    [119 * s, '119s'],
    [2 * m, '2m'],
    [9 * m + 59 * s, '9m59s'],
    [10 * m + 30 * s, '10m'],
    [179 * m, '179m'],
    [3 * h, '3h'],
    [7 * h + 5 * m, '7h5m'],
    [47 * h, '47h'],
    [2 * d, '2d'],
    [7 * d + 23 * h, '7d23h'],
    [8 * d, '8d'],
    [729 * d, '729d'],
    [2 * 365 * d + 3 * d, '2y3d'],
    [9 * 365 * d, '9y'],
  ];
  for (const [ms, want] of cases) assert.equal(humanDuration(ms), want, `${ms} ms`);
});

test('rig get tables end with AGE; a resource without a creation time reads <unknown>', () => {
  const now = Date.parse('2026-11-27T12:00:00Z');
  const out = resourceTable(
    'VirtualService',
    [
      { kind: 'VirtualService', metadata: { name: 'reviews', namespace: 'default', creationTimestamp: '2026-11-27T11:55:30.000Z' }, spec: { hosts: ['reviews'] } },
      { kind: 'VirtualService', metadata: { name: 'old', namespace: 'default' }, spec: { hosts: ['ratings'] } },
    ],
    false,
    now,
  );
  assert.match(out, /^NAME +GATEWAYS +HOSTS +AGE\nreviews +reviews +4m30s\nold +ratings +<unknown>\n$/);
});

test("rig get listenersets / backendtlspolicies: the CRDs' printer columns (ListenerSet ACCEPTED and PROGRAMMED from its status, BackendTLSPolicy none), short names lset and btlspolicy", () => {
  const now = Date.parse('2026-11-27T12:00:00Z');
  const created = '2026-11-27T11:59:00.000Z';
  const conditions = (accepted: string, programmed: string) => ({ conditions: [{ type: 'Accepted', status: accepted }, { type: 'Programmed', status: programmed }] });
  const sets = resourceTable(
    'ListenerSet',
    [
      { kind: 'ListenerSet', metadata: { name: 'extra', namespace: 'team', creationTimestamp: created }, status: conditions('True', 'False') },
      { kind: 'ListenerSet', metadata: { name: 'refused', namespace: 'other', creationTimestamp: created }, status: conditions('False', 'False') },
    ],
    true,
    now,
  );
  assert.match(sets, /^NAMESPACE +NAME +ACCEPTED +PROGRAMMED +AGE\nteam +extra +True +False +60s\nother +refused +False +False +60s\n$/);
  const policies = resourceTable('BackendTLSPolicy', [{ kind: 'BackendTLSPolicy', metadata: { name: 'tls', namespace: 'default', creationTimestamp: created }, spec: { targetRefs: [{ group: '', kind: 'Service', name: 'web' }] }, status: { ancestors: [] } }], false, now);
  assert.match(policies, /^NAME +AGE\ntls +60s\n$/);
  assert.equal(resolveResourceName('lset'), 'ListenerSet');
  assert.equal(resolveResourceName('btlspolicy'), 'BackendTLSPolicy');
});
