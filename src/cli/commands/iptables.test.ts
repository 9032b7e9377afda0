import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runRig } from '../../../test/helpers/cli.ts';

test('rig iptables --dry-run prints the rules as iptables-restore input, changing nothing', async () => {
  const r = await runRig(['iptables', '--dry-run', '-m', 'REDIRECT', '-p', '15101', '-z', '15106', '-u', '1500', '-g', '1501', '-b', '9080', '--redirect-dns', '--dns-servers', '10.96.0.10,fd00::10', '--dns-port', '15153', '--ipv6']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^# iptables-restore --noflush\n\*nat\n/);
  assert.match(r.stdout, /# ip6tables-restore --noflush/);
  assert.match(r.stdout, /-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15101/);
  assert.match(r.stdout, /-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15106/);
  assert.match(r.stdout, /-A ISTIO_INBOUND -p tcp -m tcp --dport 9080 -j ISTIO_IN_REDIRECT/);
  assert.match(r.stdout, /--uid-owner 1500 -j RETURN/);
  assert.match(r.stdout, /--gid-owner 1501 -j RETURN/);
  assert.match(r.stdout, /--dport 53 -d 10\.96\.0\.10\/32 -j REDIRECT --to-ports 15153/);
  assert.match(r.stdout, /--dport 53 -d fd00::10\/128 -j REDIRECT --to-ports 15153/);
  assert.match(r.stdout, /-s ::6\/128 -o lo -j RETURN/);
});

test('rig iptables rejects bad flags with the flag named', async () => {
  for (const [args, re] of [
    [['-p', 'abc'], /--envoy-port: "abc" is not a port/],
    [['-x', '10.0.0.0/99'], /--exclude-outbound-ip-ranges: "10.0.0.0\/99" has an invalid prefix length/],
    [['-u', 'istio'], /--proxy-uid: "istio" is not a numeric user\/group id/],
    [['--iptables-backend', 'ebpf'], /--iptables-backend: "ebpf" is not one of nft, legacy/],
    [['-m', 'TPROXY'], /"TPROXY" is not supported; only REDIRECT/],
  ] as const) {
    const r = await runRig(['iptables', '--dry-run', ...args]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, re);
  }
});
