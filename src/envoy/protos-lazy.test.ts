// The Envoy types load by package on first use (a proxy carries the types of the features its
// config uses), and a proxy drops them between config changes (3.5 MB of heap for the benchmark's
// static bootstrap); decoding and checking behave as with every type loaded. One process per test
// file: these tests see the root from its first use, in order.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { LISTENER_TYPE, checkMessage, decodeMessage, encodeMessage, envoyRoot, packAny, unpackAny } from './index.ts';
import { messageType, releaseEnvoyTypes, releaseEnvoyTypesWhenIdle, rootWith } from './protos.ts';

const JWT = 'envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication';
const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };
const loaded = (name: string) => rootWith('google.protobuf.Struct').lookup(name) !== null;

const listener = (httpFilter: object) => ({
  name: 'in',
  address: { socket_address: { address: '127.0.0.1', port_value: 8080 } },
  filter_chains: [
    {
      filters: [
        {
          name: 'envoy.filters.network.http_connection_manager',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
            stat_prefix: 'in',
            rds: { route_config_name: 'r', config_source: { ads: {} } },
            http_filters: [httpFilter],
          },
        },
      ],
    },
  ],
});

test('types load by package: a listener does not load the JWT filter types until a config names them', () => {
  assert.deepEqual(checkMessage('envoy.config.listener.v3.Listener', listener(ROUTER)), []);
  assert.ok(loaded('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager'));
  assert.equal(loaded(JWT), false);

  // Decoding an Any of a type not loaded yet (as an xDS response does) loads it first: the bytes
  // come from another process.
  const jwt = { name: 'envoy.filters.http.jwt_authn', typed_config: { '@type': `type.googleapis.com/${JWT}`, providers: { p: { issuer: 'https://issuer', local_jwks: { inline_string: '{"keys":[]}' } } } } };
  const script = `import { packAny } from ${JSON.stringify(new URL('./index.ts', import.meta.url).href)};
    process.stdout.write(Buffer.from(packAny(${JSON.stringify(LISTENER_TYPE)}, ${JSON.stringify(listener(jwt))}).value).toString('base64'));`;
  const bytes = Buffer.from(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }), 'base64');
  assert.equal(loaded(JWT), false);
  assert.deepEqual(unpackAny({ type_url: LISTENER_TYPE, value: bytes }), listener(jwt));
  assert.ok(loaded(JWT));
  assert.deepEqual(unpackAny(packAny(LISTENER_TYPE, listener(jwt))), listener(jwt));
});

test('an unknown type is still an error once every file is loaded', () => {
  const bad = { name: 'x', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.nope.v3.Nope' } };
  const issues = checkMessage('envoy.config.listener.v3.Listener', listener(bad));
  assert.match(issues.map((i) => i.message).join('\n'), /unknown or unsupported type/);
  assert.ok(envoyRoot().lookup('envoy.extensions.filters.http.rbac.v3.RBAC'));
});

function fullGc(): void {
  v8.setFlagsFromString('--expose-gc');
  try {
    (vm.runInNewContext('gc') as () => void)();
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
}

const current = () => rootWith('google.protobuf.Struct');

test('released types are garbage, and the next use loads and decodes as before', async () => {
  const bytes = packAny(LISTENER_TYPE, listener(ROUTER));
  assert.deepEqual(unpackAny(bytes), listener(ROUTER));
  const old = new WeakRef(current().lookupType(HCM));

  releaseEnvoyTypes();
  // Collected only by a GC after this turn: the WeakRef keeps its target until the turn ends.
  await new Promise((r) => setImmediate(r));
  fullGc();
  assert.equal(old.deref(), undefined, 'something still holds the released types');
  assert.equal(loaded(HCM), false);

  assert.deepEqual(unpackAny(bytes), listener(ROUTER));
  assert.ok(loaded(HCM));
  assert.deepEqual(checkMessage('envoy.config.listener.v3.Listener', { ...listener(ROUTER), bogus: 1 }).map((i) => i.path), ['bogus']);
});

test('releaseEnvoyTypesWhenIdle keeps types in use and drops them once idle', async () => {
  assert.deepEqual(unpackAny(packAny(LISTENER_TYPE, listener(ROUTER))), listener(ROUTER));
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
