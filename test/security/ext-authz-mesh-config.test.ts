// MeshConfig extensionProviders envoyExtAuthzHttp / envoyExtAuthzGrpc: Istio's fields accepted,
// mistakes refused with the field path and what to do; the task's mesh config (Istio's `istio`
// ConfigMap with data.mesh) loads.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { loadMeshConfig, parseMeshConfig } from '../../src/model/mesh-config.ts';
import { REPO_ROOT } from '../helpers/cli.ts';

function errorsOf(provider: Record<string, unknown>): string {
  try {
    parseMeshConfig({ extensionProviders: [{ name: 'p', ...provider }] });
    return '';
  } catch (e) {
    return (e as Error).message;
  }
}

test('envoyExtAuthzHttp / envoyExtAuthzGrpc: every Istio field accepted, mistakes named with their path', () => {
  const http = {
    service: 'foo/ext-authz.foo.svc.cluster.local',
    port: 8000,
    timeout: '0.5s',
    pathPrefix: '/check',
    failOpen: true,
    clearRouteCache: true,
    statusOnError: '503',
    includeRequestHeadersInCheck: ['x-ext-authz', 'x-b3-*'],
    includeHeadersInCheck: ['x-old'],
    includeAdditionalHeadersInCheck: { 'x-a': '1' },
    includeRequestBodyInCheck: { maxRequestBytes: 4096, allowPartialMessage: true, packAsBytes: false },
    headersToUpstreamOnAllow: ['x-user'],
    headersToDownstreamOnDeny: ['*-reason'],
    headersToDownstreamOnAllow: ['set-cookie'],
  };
  assert.equal(errorsOf({ envoyExtAuthzHttp: http }), '');
  assert.equal(errorsOf({ envoyExtAuthzGrpc: { service: 'ext-authz', port: '9000', timeout: '2s', failOpen: false, clearRouteCache: false, statusOnError: '403', includeRequestBodyInCheck: { maxRequestBytes: 10 } } }), '');
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ envoyExtAuthzHttp: { port: 8000 } }, /extensionProviders\[0\]\.envoyExtAuthzHttp\.service: required/],
    [{ envoyExtAuthzGrpc: { service: 's', port: 70000 } }, /envoyExtAuthzGrpc\.port: required, a port number/],
    [{ envoyExtAuthzHttp: { service: 's', port: 1, pathPrefix: 'check' } }, /pathPrefix: must begin with "\/"/],
    [{ envoyExtAuthzHttp: { service: 's', port: 1, statusOnError: '299' } }, /statusOnError: "299" is not a supported HTTP status/],
    [{ envoyExtAuthzHttp: { service: 's', port: 1, headersToUpstreamOnAllow: ['*'] } }, /headersToUpstreamOnAllow: a single wildcard/],
    [{ envoyExtAuthzHttp: { service: 's', port: 1, timeout: 'soon' } }, /timeout: invalid duration "soon"/],
    [{ envoyExtAuthzHttp: { service: 's', port: 1, includeRequestBodyInCheck: { allowPartialMessage: true } } }, /includeRequestBodyInCheck\.maxRequestBytes: required/],
    [{ envoyExtAuthzGrpc: { service: 's', port: 1, pathPrefix: '/x' } }, /envoyExtAuthzGrpc\.pathPrefix: unknown field/],
    [{ envoyExtAuthzHttp: { service: 's', port: 1, failOpen: 'yes' } }, /failOpen: expected true or false/],
  ];
  for (const [p, re] of cases) assert.match(errorsOf(p), re);
});

test("the External Authorization task's mesh config (Istio's istio ConfigMap) loads both providers", async () => {
  const mesh = await loadMeshConfig(path.join(REPO_ROOT, 'examples/bookinfo/tasks/ext-authz/mesh-config.yaml'));
  assert.deepEqual(mesh.extensionProviders.map((p) => p.name), ['sample-ext-authz-grpc', 'sample-ext-authz-http']);
});
