// Pods in network namespaces: addresses on a machine-local bridge, pod-to-pod connectivity, no
// way out of the machine, the sidecar user, DNS through the captured resolver, `rig exec`, and
// nothing left behind — after a normal stop and after a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { cleanupNetnsLeftovers, removeNetns } from '../../src/local/netns/index.ts';
import { RIG_MAIN, runRig } from '../helpers/cli.ts';
import { leftovers, podNetwork, rootSkipReason, startAgent, startProbeServer, testPrefix } from './helpers.ts';

const skip = rootSkipReason();
const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const OUTSIDE = '203.0.113.9';

test('pods get addresses on the bridge, reach each other, and nothing outside the machine', { skip }, async (t) => {
  const net = await podNetwork(t, 'net');
  const a = await net.createPod('a', { iptables: false });
  const b = await net.createPod('b', { iptables: false });
  assert.match(net.subnet, /^198\.1[89]\.\d+\.0\/24$/);
  assert.notEqual(a.address, b.address);
  assert.equal(a.netns, `${testPrefix('net')}-a-0`);

  const addr = await net.execInPod(a, 'ip', ['-o', '-4', 'addr', 'show', 'dev', 'eth0']);
  assert.match(addr.stdout, new RegExp(`inet ${a.address.replace(/\./g, '\\.')}/24`));
  const routes = (await net.execInPod(a, 'ip', ['-4', 'route'])).stdout.trim().split('\n');
  assert.deepEqual(routes.map((r) => r.split(' ').slice(0, 3).join(' ')).sort(), [`${net.subnet} dev eth0`, `default via ${net.gateway}`].sort());

  await startProbeServer(t, net, b, [9000]);
  const client = await startAgent(t, net, a);
  const r = await client.connect(b.address, 9000);
  assert.equal(r.reply?.remote, a.address, 'pod to pod over the bridge, no NAT');
  assert.deepEqual(await client.connect(OUTSIDE, 80), { ok: false, code: 'ENETUNREACH', reply: undefined });

  await net.destroy();
  assert.deepEqual(leftovers(testPrefix('net'), net.bridge), []);
});

test('the sidecar runs as UID 1337 and answers the pod\'s DNS (UDP and TCP, captured from resolv.conf)', { skip }, async (t) => {
  const net = await podNetwork(t, 'dns');
  const pod = await net.createPod('productpage', { namespace: 'default' });
  const resolv = (await net.execInPod(pod, 'cat', ['/etc/resolv.conf'])).stdout;
  assert.match(resolv, new RegExp(`nameserver ${net.gateway.replace(/\./g, '\\.')}`));
  assert.match(resolv, /search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local/);

  const table = {
    table: {
      'reviews.default.svc.cluster.local': { ips: ['10.96.0.12'], registry: 'Kubernetes', shortname: 'reviews', namespace: 'default' },
      'api.example.com': { ips: ['240.240.0.1'], registry: 'External' },
    },
  };
  const sidecar = net.spawnInPod(pod, process.execPath, [path.join(FIXTURES, 'dns-proxy.ts'), '15053', JSON.stringify(table), 'default'], { uid: 1337 });
  t.after(() => sidecar.kill('SIGKILL'));
  const first = await readline.createInterface({ input: sidecar.stdout! })[Symbol.asyncIterator]().next();
  assert.equal(first.value, 'ready');
  const owner = await net.execInPod(pod, 'ps', ['-o', 'uid=', '-p', String(sidecar.pid)]).catch(() => undefined);
  if (owner?.code === 0) assert.equal(owner.stdout.trim(), '1337');

  // glibc's resolver (UDP), through the search path: short name, name.namespace, ServiceEntry host.
  const getent = (name: string) => net.execInPod(pod, 'getent', ['ahostsv4', name]);
  for (const [name, ip] of [
    ['reviews', '10.96.0.12'],
    ['reviews.default', '10.96.0.12'],
    ['reviews.default.svc.cluster.local', '10.96.0.12'],
    ['api.example.com', '240.240.0.1'],
  ]) {
    const r = await getent(name);
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^${ip.replace(/\./g, '\\.')}\\s`), name);
  }
  // An unknown name is forwarded; no upstream is reachable from a pod: a clean failure.
  assert.equal((await getent('nothing.invalid')).code, 2);

  // TCP DNS to the resolv.conf nameserver is captured too.
  const tcp = await net.execInPod(pod, process.execPath, [path.join(FIXTURES, 'dns-ask.ts'), net.gateway, 'reviews.default.svc.cluster.local']);
  assert.deepEqual(JSON.parse(tcp.stdout), { rcode: 'NOERROR', answers: ['10.96.0.12'] });

  await net.destroy();
  assert.deepEqual(leftovers(testPrefix('dns'), net.bridge), []);
});

test('rig exec runs a command in a pod namespace and passes its exit code through', { skip }, async (t) => {
  const net = await podNetwork(t, 'exec');
  const pod = await net.createPod('productpage-v1');
  const prefix = ['exec', '--prefix', testPrefix('exec')];
  const ip = await runRig([...prefix, 'productpage-v1', '--', 'ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
  assert.equal(ip.code, 0, ip.stderr);
  assert.match(ip.stdout, new RegExp(`inet ${pod.address.replace(/\./g, '\\.')}/`));
  assert.equal((await runRig([...prefix, 'productpage-v1', '--', 'sh', '-c', 'exit 7'])).code, 7);
  assert.equal((await runRig([...prefix, '-u', '1337', 'productpage-v1', '--', 'id', '-u'])).stdout.trim(), '1337');
  const missing = await runRig([...prefix, 'reviews-v1', '--', 'true']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, new RegExp(`no pod ${testPrefix('exec')}-reviews-v1-0: running pods are ${testPrefix('exec')}-productpage-v1-0`));
});

test('leftovers of a crashed run are removed by prefix', { skip }, async (t) => {
  const prefix = testPrefix('crash');
  const child = spawn(process.execPath, [path.join(FIXTURES, 'crash-network.ts'), prefix], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(async () => {
    child.kill('SIGKILL');
    await cleanupNetnsLeftovers({ nsPrefix: prefix, force: true });
  });
  const line = await readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]().next();
  const bridge = String(line.value).split(' ')[1];
  assert.match(bridge, /^rigb\d+$/);
  // While the creator runs, a non-forced cleanup leaves its network alone.
  assert.deepEqual(await cleanupNetnsLeftovers({ nsPrefix: prefix }), { namespaces: [], links: [] });
  assert.equal(leftovers(prefix, bridge).length, 8); // 2 namespaces, 2 /etc/netns dirs, the bridge, 2 host veths, the reservation
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const report = await cleanupNetnsLeftovers({ nsPrefix: prefix });
  assert.deepEqual(report.namespaces.sort(), [`${prefix}-a-0`, `${prefix}-b-0`]);
  assert.ok(report.links.includes(bridge));
  assert.deepEqual(leftovers(prefix, bridge), []);
});

test('without root, pods fail with an error naming the explicit mode', { skip }, async () => {
  const script = `import('${path.join(path.dirname(RIG_MAIN), '../local/netns/index.ts')}').then((m) => m.createPodNetwork()).catch((e) => { console.log(e.message); })`;
  const out = await new Promise<string>((resolve) =>
    execFile('setpriv', ['--reuid=1337', '--regid=1337', '--clear-groups', '--', process.execPath, '-e', script], (_e, stdout) => resolve(stdout)),
  );
  assert.match(out, /need root.*explicit proxy mode/s);
});

test('a namespace left by an earlier run is reported, not reused', { skip }, async (t) => {
  const net = await podNetwork(t, 'dup');
  const stale = `${testPrefix('dup')}-web-0`;
  execFileSync('ip', ['netns', 'add', stale]);
  t.after(() => removeNetns(stale));
  await assert.rejects(net.createPod('web'), new RegExp(`${stale} already exists .*rig down --force`));
  assert.equal(net.pods.length, 0);
  assert.equal((await net.createPod('web', { replica: 1 })).netns, `${testPrefix('dup')}-web-1`);
});

test('pods created concurrently get distinct replicas, addresses and interfaces', { skip }, async (t) => {
  const net = await podNetwork(t, 'par');
  const pods = await Promise.all([net.createPod('w', { iptables: false }), net.createPod('w', { iptables: false }), net.createPod('w', { iptables: false })]);
  assert.deepEqual(pods.map((p) => p.replica).sort(), [0, 1, 2]);
  assert.equal(new Set(pods.map((p) => p.address)).size, 3);
  await net.deletePod(pods[1]);
  const again = await net.createPod('w', { iptables: false });
  assert.deepEqual([again.replica, again.address], [1, pods[1].address], 'a freed replica number and address are reused');
  await net.destroy();
  assert.deepEqual(leftovers(testPrefix('par'), net.bridge), []);
});
