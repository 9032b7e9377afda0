// A proxy drops the Envoy types between config changes (3.5 MB of heap for the benchmark's static
// bootstrap): after a release nothing may keep the old types alive, and the next use loads them
// again with the same behaviour. One process per test file: these tests see the root from its
// first use.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { LISTENER_TYPE, checkMessage, decodeMessage, encodeMessage, packAny, unpackAny } from './index.ts';
import { messageType, releaseEnvoyTypes, releaseEnvoyTypesWhenIdle, rootWith } from './protos.ts';

const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const listener = {
  name: 'in',
  address: { socket_address: { address: '127.0.0.1', port_value: 8080 } },
  filter_chains: [
    {
      filters: [
        {
          name: 'envoy.filters.network.http_connection_manager',
          typed_config: {
            '@type': `type.googleapis.com/${HCM}`,
            stat_prefix: 'in',
            route_config: { name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c', timeout: '1.5s' } }] }] },
            http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
          },
        },
      ],
    },
  ],
};

function fullGc(): void {
  v8.setFlagsFromString('--expose-gc');
  try {
    (vm.runInNewContext('gc') as () => void)();
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
}

const current = () => rootWith('google.protobuf.Struct');
const loaded = (name: string) => current().lookup(name) !== null;

test('released types are garbage, and the next use loads and decodes as before', async () => {
  const bytes = packAny(LISTENER_TYPE, listener);
  assert.deepEqual(unpackAny(bytes), listener);
  const old = new WeakRef(current().lookupType(HCM));

  releaseEnvoyTypes();
  // Collected only by a GC after this turn: the WeakRef keeps its target until the turn ends.
  await new Promise((r) => setImmediate(r));
  fullGc();
  assert.equal(old.deref(), undefined, 'something still holds the released types');
  assert.equal(loaded(HCM), false);

  assert.deepEqual(unpackAny(bytes), listener);
  assert.ok(loaded(HCM));
  assert.deepEqual(checkMessage(LISTENER_TYPE.slice(LISTENER_TYPE.lastIndexOf('/') + 1), { ...listener, bogus: 1 }).map((i) => i.path), ['bogus']);
});

test('releaseEnvoyTypesWhenIdle keeps types in use and drops them once idle', async () => {
  assert.deepEqual(unpackAny(packAny(LISTENER_TYPE, listener)), listener);
  // Peer metadata is decoded per connection: a Struct is no use of the Envoy types.
  const peer = encodeMessage('google.protobuf.Struct', { app: 'ratings' });
  let released = 0;
  const stop = releaseEnvoyTypesWhenIdle(200, () => released++);
  try {
    const r = current();
    for (let i = 0; i < 6; i++) {
      await new Promise((res) => setTimeout(res, 50));
      assert.equal(current(), r, 'released while in use');
      assert.ok(messageType(HCM));
    }
    assert.equal(released, 0);
    for (let i = 0; i < 8; i++) {
      await new Promise((res) => setTimeout(res, 50));
      assert.deepEqual(decodeMessage('google.protobuf.Struct', peer), { app: 'ratings' });
    }
    assert.equal(released, 1);
    assert.equal(loaded(HCM), false);
  } finally {
    stop();
  }
});
