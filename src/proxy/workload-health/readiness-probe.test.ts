// The readiness probe in the agent's node metadata (PROXY_CONFIG.readinessProbe): accepted in
// Istio's shape (also as a JSON string), refused with every problem named by its field.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReadinessProbeError, readinessProbeErrors, readinessProbeOf } from './readiness-probe.ts';

test('a probe in PROXY_CONFIG is read as Istio writes it; none without one', () => {
  const probe = { periodSeconds: 2, httpGet: { path: '/ready', port: 8080, httpHeaders: [{ name: 'x', value: 'y' }] } };
  assert.deepEqual(readinessProbeOf({ PROXY_CONFIG: { readinessProbe: probe } }), probe);
  assert.deepEqual(readinessProbeOf({ PROXY_CONFIG: JSON.stringify({ readinessProbe: probe }) }), probe);
  assert.equal(readinessProbeOf({ PROXY_CONFIG: { concurrency: 2 } }), undefined);
  assert.equal(readinessProbeOf({}), undefined);
});

test('every problem of a bad probe is named', () => {
  assert.deepEqual(readinessProbeErrors({ periodSeconds: -1, timeoutSecond: 1, exec: { command: [] }, tcpSocket: { port: 0 } }), [
    'timeoutSecond: unknown field (known: initialDelaySeconds, timeoutSeconds, periodSeconds, successThreshold, failureThreshold, httpGet, tcpSocket, exec, grpc)',
    'periodSeconds: -1 is not a whole number of seconds (0 or more)',
    'only one of tcpSocket, exec may be set',
    'tcpSocket.port: 0 is not a port (1-65535)',
    'exec.command: must be a non-empty list of strings (the program, then its arguments; no shell unless you name one, e.g. [sh, -c, "..."])',
  ]);
  assert.deepEqual(readinessProbeErrors({ httpGet: { port: 80, path: 'ready', scheme: 'FTP' } }), ['httpGet.scheme: "FTP" must be HTTP or HTTPS', 'httpGet.path: "ready" must start with /']);
  assert.deepEqual(readinessProbeErrors({}), ['needs one of httpGet, tcpSocket, exec or grpc']);
  assert.throws(() => readinessProbeOf({ PROXY_CONFIG: { readinessProbe: { grpc: {} } } }), (e: Error) => e instanceof ReadinessProbeError && e.message === 'PROXY_CONFIG.readinessProbe: grpc.port: undefined is not a port (1-65535)');
});
