// Without REDIRECT (the redirect case runs as root in test/interception/iptables-capture.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { getOriginalDst, originalDstAvailable, originalDstUnavailableReason } from './original-dst.ts';

const skip = process.platform !== 'linux' ? 'SO_ORIGINAL_DST is Linux-only' : originalDstAvailable() ? undefined : `addon not built: ${originalDstUnavailableReason()}`;

test('a connection that was not redirected has no other original destination', { skip }, async (t) => {
  const seen: ReturnType<typeof getOriginalDst>[] = [];
  const server = net.createServer((s) => {
    seen.push(getOriginalDst(s));
    s.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve, reject) => net.connect(port, '127.0.0.1').on('close', () => resolve()).on('error', reject).resume());
  // Untracked (no conntrack in this namespace): undefined; tracked: its own destination.
  assert.equal(seen.length, 1);
  if (seen[0] !== undefined) assert.deepEqual(seen[0], { address: '127.0.0.1', port });
});

test('sockets without a descriptor give undefined, not an exception', { skip }, () => {
  const s = new net.Socket();
  assert.equal(getOriginalDst(s), undefined);
  s.destroy();
});

test('availability is reported with a reason', () => {
  assert.equal(typeof originalDstAvailable(), 'boolean');
  assert.equal(originalDstUnavailableReason() === undefined, originalDstAvailable());
});
