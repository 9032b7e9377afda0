// `rig iptables` in a pod namespace with real connections: outbound capture to 15001 with the
// original destination (SO_ORIGINAL_DST through the addon), inbound capture to 15006, the proxy
// UID's connections left alone, loopback / own-pod-IP handling, exclusions, idempotence and an
// exact cleanup, on both iptables backends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { RIG_MAIN } from '../helpers/cli.ts';
import { execInNetns, removeNetns } from '../../src/local/netns/index.ts';
import { originalDstAvailable } from '../../src/proxy/listener/original-dst.ts';
import { leftovers, PROBE, podNetwork, rootSkipReason, startAgent, startProbeServer, testPrefix } from './helpers.ts';

const skip = rootSkipReason() ?? (originalDstAvailable() ? undefined : 'the native addon is not built (npm run build:native)');
const OUTSIDE = '203.0.113.9'; // TEST-NET-3: no pod, no route out of the pod

async function rig(netns: string, args: string[]): Promise<string> {
  const r = await execInNetns(netns, process.execPath, ['src/cli/main.ts', 'iptables', ...args], { cwd: new URL('../..', import.meta.url).pathname });
  assert.equal(r.code, 0, `rig iptables ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

async function save(netns: string, backend: string): Promise<string> {
  const r = await execInNetns(netns, `iptables-${backend}-save`, []);
  return r.stdout
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .map((l) => l.replace(/\[\d+:\d+\]$/, '[0:0]'))
    .join('\n');
}

for (const backend of ['nft', 'legacy']) {
  test(`rig iptables captures real connections (iptables-${backend})`, { skip }, async (t) => {
    const tag = backend === 'nft' ? 'n' : 'l';
    const net = await podNetwork(t, `cap${tag}`);
    const pod = await net.createPod('app', { iptables: false });
    const peer = await net.createPod('peer', { iptables: false });
    const probe = await execInNetns(pod.netns, `iptables-${backend}-restore`, ['--noflush', '--test'], { input: '*nat\nCOMMIT\n' });
    if (probe.code !== 0) {
      t.skip(`iptables-${backend} does not work with this kernel: ${probe.stderr.trim()}`);
      return;
    }
    // The "proxy" listens on the capture ports; the "app" serves 8080; 15021 is excluded inbound.
    await startProbeServer(t, net, pod, [15001, 15006, 8080, 15021]);
    await startProbeServer(t, net, peer, [9000, 9001]);

    const flags = ['--iptables-backend', backend, '-d', '15021', '--exclude-outbound-ports', '9001'];
    assert.match(await rig(pod.netns, flags), new RegExp(`applied \\(iptables-${backend}\\)`));
    const first = await save(pod.netns, backend);
    await rig(pod.netns, flags); // idempotent: same rules, not twice
    assert.equal(await save(pod.netns, backend), first);
    assert.equal(first.split('\n').filter((l) => l === '-A OUTPUT -p tcp -j ISTIO_OUTPUT').length, 1);

    const app = await startAgent(t, net, pod);
    const proxy = await startAgent(t, net, pod, 1337);
    const peerApp = await startAgent(t, net, peer);

    // Outbound from the app to anywhere: captured, with the original destination. (In the pod,
    // a connection no rule rewrote reports its own destination, as conntrack does; the peer has
    // no NAT rules, so no conntrack and no original destination: null.)
    let r = await app.connect(OUTSIDE, 80);
    assert.deepEqual(r.reply?.orig, { address: OUTSIDE, port: 80 });
    assert.equal(r.reply?.port, 15001);
    // Service VIPs: a ClusterIP-like address and an auto-allocated ServiceEntry VIP (class E).
    for (const vip of ['10.96.0.12', '240.240.0.1']) {
      r = await app.connect(vip, 9080);
      assert.deepEqual([r.reply?.port, r.reply?.orig], [15001, { address: vip, port: 9080 }], vip);
    }
    r = await app.connect(peer.address, 9000);
    assert.deepEqual([r.reply?.port, r.reply?.orig], [15001, { address: peer.address, port: 9000 }]);
    // Excluded outbound port: straight to the peer.
    r = await app.connect(peer.address, 9001);
    assert.deepEqual([r.reply?.port, r.reply?.orig], [9001, null]);

    // The proxy's own connections are not captured (no loop): they reach the peer itself...
    r = await proxy.connect(peer.address, 9000);
    assert.deepEqual([r.reply?.port, r.reply?.orig], [9000, null]);
    // ...or, to an address outside the pod network, fail (nothing leaves the machine).
    r = await proxy.connect(OUTSIDE, 80);
    assert.deepEqual([r.ok, r.code], [false, 'ENETUNREACH']);

    // Inbound from another pod: captured to 15006 with the original destination...
    r = await peerApp.connect(pod.address, 8080);
    assert.deepEqual([r.reply?.port, r.reply?.orig], [15006, { address: pod.address, port: 8080 }]);
    // ...except the excluded inbound port.
    r = await peerApp.connect(pod.address, 15021);
    assert.deepEqual([r.reply?.port, r.reply?.orig], [15021, { address: pod.address, port: 15021 }]);

    // The app calling its own pod address or localhost: not captured (Istio's loopback rules).
    r = await app.connect(pod.address, 8080);
    assert.deepEqual([r.reply?.port, r.reply?.orig], [8080, { address: pod.address, port: 8080 }]);
    r = await app.connect('127.0.0.1', 8080);
    assert.deepEqual([r.reply?.port, r.reply?.orig], [8080, { address: '127.0.0.1', port: 8080 }]);
    // The proxy calling its own pod address: sent through inbound handling (15006).
    r = await proxy.connect(pod.address, 8080);
    assert.deepEqual([r.reply?.port, r.reply?.orig], [15006, { address: pod.address, port: 8080 }]);

    // Cleanup removes exactly what was added: back to the namespace's rules before.
    assert.match(await rig(pod.netns, ['--cleanup', '--iptables-backend', backend]), /removed/);
    const after = (await save(pod.netns, 'nft')) + (await save(pod.netns, 'legacy'));
    assert.doesNotMatch(after, /ISTIO_/);
    assert.match(after, /-A OUTPUT ! -d \S+ -m addrtype ! --dst-type LOCAL -j REJECT/, 'the pod egress rule (not ours to remove) stays');
    r = await app.connect(peer.address, 9000);
    assert.deepEqual([r.reply?.port, r.reply?.orig], [9000, null]);
    assert.match(await rig(pod.netns, ['--cleanup', '--iptables-backend', backend]), /no capture rules/);

    await net.destroy();
    assert.deepEqual(leftovers(testPrefix(`cap${tag}`), net.bridge), []);
  });
}

test('rig iptables as an unprivileged user fails with a clear message', { skip: rootSkipReason() }, async () => {
  // An unprivileged user cannot read or change any rules, so this is safe in the host namespace.
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = execFile('setpriv', ['--reuid=1337', '--regid=1337', '--clear-groups', '--', process.execPath, RIG_MAIN, 'iptables', '--iptables-backend', 'nft'], (err, _out, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
      );
      child.stdin?.end();
    });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /iptables-nft-save failed.*(Permission denied|not permitted)/s);
});

test('IPv6: ip6tables capture and the original destination (IP6T_SO_ORIGINAL_DST)', { skip }, async (t) => {
  const netns = `${testPrefix('v6')}-0`;
  t.after(() => removeNetns(netns));
  const sh = async (cmd: string) => {
    const r = await execInNetns(netns, 'sh', ['-c', cmd]);
    assert.equal(r.code, 0, `${cmd}: ${r.stderr}`);
    return r.stdout;
  };
  execFileSync('ip', ['netns', 'add', netns]);
  // An on-link IPv6 route (on a veth pair inside the namespace) so that connections reach OUTPUT.
  await sh('ip link set lo up && ip link add v0 type veth peer name v1 && ip link set v0 up && ip link set v1 up && ip -6 addr add fd00:5::1/64 dev v0 nodad && ip -6 route add fd00:99::/64 dev v0');
  await rig(netns, ['--ipv6', '-b', '']);
  assert.match(await sh('ip6tables-save -t nat'), /-A ISTIO_OUTPUT -d ::1\/128 -j RETURN/);
  const server = spawn('ip', ['netns', 'exec', netns, process.execPath, PROBE, 'listen', '15001', '::'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => server.kill('SIGKILL'));
  await new Promise((r) => server.stdout.once('data', r));
  const client = await execInNetns(netns, process.execPath, ['-e', "require('net').connect({host:'fd00:99::7',port:443}).setEncoding('utf8').on('data',(d)=>process.stdout.write(d))"]);
  const reply = JSON.parse(client.stdout) as { port: number; orig: unknown };
  assert.deepEqual([reply.port, reply.orig], [15001, { address: 'fd00:99::7', port: 443 }]);
  await rig(netns, ['--cleanup']);
  assert.doesNotMatch(await sh('ip6tables-save; iptables-save'), /ISTIO_/);
});
