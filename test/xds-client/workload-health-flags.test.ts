// `rig proxy --workload-group / --workload-entry / --readiness-probe` → node metadata
// AUTO_REGISTER_GROUP, WORKLOAD_ENTRY and PROXY_CONFIG.readinessProbe (CONTRACTS §3): from a WorkloadGroup file, a probe file or inline
// JSON; bad probes are refused with every problem and where it is.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Command } from 'commander';
import { checkMessage, type EnvoyJson } from '../../src/envoy/index.ts';
import { addXdsOptions, bootstrapFromOptions, type XdsCliOptions } from '../../src/proxy/bootstrap/flags.ts';
import { runRig } from '../helpers/cli.ts';
import { tempDir } from '../helpers/temp-dir.ts';

function metadata(args: string[]): Record<string, unknown> {
  const cmd = addXdsOptions(new Command('proxy').exitOverride());
  cmd.parse(['--xds-address', '127.0.0.1:15010', '--namespace', 'vms', '--workload-name', 'vm-1', '--interception', 'redirect', ...args], { from: 'user' });
  const b = bootstrapFromOptions(cmd.opts<XdsCliOptions>());
  assert.deepEqual(checkMessage('envoy.config.bootstrap.v3.Bootstrap', b), []);
  return (b.node as EnvoyJson).metadata as Record<string, unknown>;
}

const GROUP = `apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: { name: vm-app, namespace: vms }
spec:
  template: { serviceAccount: vm-app }
  probe:
    periodSeconds: 5
    exec: { command: [test, -f, /tmp/ready] }
`;

test('a WorkloadGroup file gives the probe and the group (picked among manifests); inline JSON and --workload-group work too', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'group.yaml');
  fs.writeFileSync(file, GROUP);
  const md = metadata(['--readiness-probe', file]);
  assert.equal(md.AUTO_REGISTER_GROUP, 'vm-app');
  assert.deepEqual(md.PROXY_CONFIG, { readinessProbe: { periodSeconds: 5, exec: { command: ['test', '-f', '/tmp/ready'] } } });
  // Manifests with a Service and two groups: --workload-group picks one.
  const many = path.join(dir, 'mesh.yaml');
  fs.writeFileSync(many, `apiVersion: v1\nkind: Service\nmetadata: { name: vm-app, namespace: vms }\nspec: { ports: [{ port: 80 }] }\n---\n${GROUP}---\n${GROUP.replace('name: vm-app', 'name: other').replace('periodSeconds: 5', 'periodSeconds: 7')}`);
  const other = metadata(['--readiness-probe', many, '--workload-group', 'other']);
  assert.deepEqual([other.AUTO_REGISTER_GROUP, (other.PROXY_CONFIG as { readinessProbe: { periodSeconds: number } }).readinessProbe.periodSeconds], ['other', 7]);
  assert.throws(() => metadata(['--readiness-probe', many]), /several WorkloadGroups \(vm-app, other\): name one with --workload-group/);
  assert.throws(() => metadata(['--readiness-probe', file, '--workload-group', 'third']), /no WorkloadGroup third \(it has vm-app\)/);
  const inline = metadata(['--workload-group', 'vm-app', '--readiness-probe', '{"tcpSocket":{"port":8080}}']);
  assert.deepEqual([inline.AUTO_REGISTER_GROUP, inline.PROXY_CONFIG], ['vm-app', { readinessProbe: { tcpSocket: { port: 8080 } } }]);
  const bare = path.join(dir, 'probe.yaml');
  fs.writeFileSync(bare, 'httpGet: { port: 8080, path: /ready }\n');
  assert.deepEqual(metadata(['--workload-group', 'vm-app', '--readiness-probe', bare]).PROXY_CONFIG, { readinessProbe: { httpGet: { port: 8080, path: '/ready' } } });
  // Standing for an existing WorkloadEntry: the WorkloadGroup file then only gives the probe.
  const entry = metadata(['--workload-entry', 'vm-1', '--readiness-probe', file]);
  assert.deepEqual([entry.WORKLOAD_ENTRY, entry.AUTO_REGISTER_GROUP, entry.PROXY_CONFIG !== undefined], ['vm-1', undefined, true]);
  const plain = metadata(['--workload-group', 'vm-app']);
  assert.equal(plain.AUTO_REGISTER_GROUP, 'vm-app');
  assert.equal(plain.PROXY_CONFIG, undefined);
});

test('bad probes and groups are refused, each problem named', (t) => {
  const dir = tempDir(t);
  const other = path.join(dir, 'other-ns.yaml');
  fs.writeFileSync(other, GROUP.replace('namespace: vms', 'namespace: prod').replace('exec: { command: [test, -f, /tmp/ready] }', 'exec: { command: [] }'));
  assert.throws(() => metadata(['--readiness-probe', other]), (e: Error) => {
    assert.match(e.message, /WorkloadGroup vm-app is in namespace prod, the proxy in vms \(set --namespace prod\)/);
    assert.match(e.message, /spec\.probe: exec\.command: must be a non-empty list of strings/);
    return true;
  });
  // Without a group or entry the probe is the auto-registered workload's own readiness (a `rig up` replica).
  const plain = metadata(['--readiness-probe', '{"httpGet":{"port":8080}}']);
  assert.deepEqual([plain.PROXY_CONFIG, plain.AUTO_REGISTER_GROUP, plain.WORKLOAD_ENTRY], [{ readinessProbe: { httpGet: { port: 8080 } } }, undefined, undefined]);
  assert.throws(() => metadata(['--workload-group', 'vm-app', '--readiness-probe', '{"httpGet":{"port":0},"periodSeconds":"5"}']), (e: Error) => {
    assert.match(e.message, /--readiness-probe: probe: periodSeconds: "5" is not a whole number of seconds/);
    assert.match(e.message, /--readiness-probe: probe: httpGet\.port: 0 is not a port/);
    return true;
  });
  assert.throws(() => metadata(['--workload-group', 'vm-app', '--readiness-probe', path.join(dir, 'missing.yaml')]), /--readiness-probe: cannot read .*missing\.yaml: ENOENT/);
  assert.throws(() => metadata(['--workload-group', 'Bad_Name']), /--workload-group: invalid name "Bad_Name"/);
  assert.throws(() => metadata(['--workload-group', 'vm-app', '--workload-entry', 'vm-1']), /--workload-group and --workload-entry exclude each other/);
});

test('rig proxy -c refuses a bootstrap whose PROXY_CONFIG.readinessProbe is bad, before listening', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'bootstrap.yaml');
  fs.writeFileSync(file, 'node: { id: sidecar~10.0.0.1~vm-1.vms~vms.svc.cluster.local, metadata: { PROXY_CONFIG: { readinessProbe: { exec: { command: [] }, tcpSocket: { port: 80 } } } } }\nadmin: { address: { socket_address: { address: 127.0.0.1, port_value: 0 } } }\n');
  const r = await runRig(['proxy', '-c', file, '--admin-port', '0', '--ready-port', '0', '--stats-port', '0']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /node metadata PROXY_CONFIG\.readinessProbe: only one of tcpSocket, exec may be set; exec\.command: must be a non-empty list/);
});

test('rig proxy refuses a --workload-pid-file in a missing directory and a bad --probe-env-file, before listening', async (t) => {
  const dir = tempDir(t);
  const common = ['proxy', '--xds-address', '127.0.0.1:1', '--workload-name', 'vm-1', '--readiness-probe', '{"tcpSocket":{"port":8080}}', '--admin-port', '0', '--ready-port', '0', '--stats-port', '0'];
  const pid = await runRig([...common, '--workload-pid-file', path.join(dir, 'gone', 'app.pid')]);
  assert.notEqual(pid.code, 0);
  assert.match(pid.stderr, /--workload-pid-file .*app\.pid: directory .*gone does not exist/);
  const env = path.join(dir, 'env.json');
  fs.writeFileSync(env, '{"PATH": 1}');
  const bad = await runRig([...common, '--probe-env-file', env]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--probe-env-file .*env\.json: values must be strings \(PATH is not\)/);
});
