// The DNS proxy over real UDP and TCP sockets on loopback, with a real upstream resolver
// (a dns-packet server on 127.0.0.1) and a dead one.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import type { Packet } from 'dns-packet';
import { startDnsProxy, type DnsProxy } from './dns-server.ts';
import type { NameTable } from './dns-name-table.ts';

const TABLE: NameTable = {
  table: {
    'reviews.default.svc.cluster.local': { ips: ['10.96.0.12'], registry: 'Kubernetes', shortname: 'reviews', namespace: 'default' },
    'api.example.com': { ips: ['240.240.0.1', '2001:2::1'], registry: 'External' },
  },
};
const SEARCH = ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'];

function query(name: string, type: 'A' | 'AAAA' | 'TXT' = 'A'): Buffer {
  return dnsPacket.encode({ type: 'query', id: Math.floor(Math.random() * 65535), flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, class: 'IN', name }] });
}

function udpAsk(port: number, msg: Buffer): Promise<Packet> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => (s.close(), reject(new Error('no UDP answer'))), 5000);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(dnsPacket.decode(m));
    });
    s.send(msg, port, '127.0.0.1');
  });
}

function tcpAsk(port: number, msg: Buffer): Promise<Packet> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    s.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(msg.length);
      s.write(Buffer.concat([len, msg]));
    });
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        s.destroy();
        resolve(dnsPacket.streamDecode(buf) as Packet);
      }
    });
    s.on('error', reject);
  });
}

const rcode = (p: Packet) => (p as Packet & { rcode: string }).rcode;
const data = (p: Packet) => (p.answers ?? []).map((a) => (a as { data: unknown }).data);

/** A real upstream resolver on loopback (UDP and TCP, one port) answering `external.test`. */
async function fakeUpstream(t: TestContext): Promise<{ port: number; seen: string[] }> {
  const seen: string[] = [];
  const answer = (m: Buffer) => {
    const q = dnsPacket.decode(m);
    const name = q.questions![0].name;
    seen.push(name);
    const known = name === 'external.test';
    return dnsPacket.encode({ id: q.id, type: 'response', flags: known ? 0 : 3, questions: q.questions, answers: known ? [{ name, type: 'A', class: 'IN', ttl: 60, data: '192.0.2.10' }] : [] });
  };
  // UDP and TCP on one port: retry when the TCP side of the picked port is taken.
  for (let attempt = 0; ; attempt++) {
    const udp = dgram.createSocket('udp4');
    udp.on('message', (m, r) => udp.send(answer(m), r.port, r.address));
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
    const port = udp.address().port;
    const tcp = net.createServer((s) => s.on('data', (d: Buffer) => s.end(dnsPacket.streamEncode(dnsPacket.decode(answer(d.subarray(2)))))));
    const ok = await new Promise<boolean>((r) => {
      tcp.once('error', () => r(false));
      tcp.listen(port, '127.0.0.1', () => r(true));
    });
    if (!ok && attempt < 10) {
      udp.close();
      continue;
    }
    t.after(() => {
      udp.close();
      tcp.close();
    });
    return { port, seen };
  }
}

/** A loopback port with nothing on it (UDP and TCP): an unreachable upstream. */
async function deadPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function proxy(t: TestContext, upstreamPort: number): Promise<DnsProxy> {
  const p = await startDnsProxy({ port: 0, bind: '127.0.0.1', table: TABLE, upstream: [{ address: '127.0.0.1', port: upstreamPort }], namespace: 'default', searchDomains: SEARCH, upstreamTimeoutMs: 1000 });
  t.after(() => p.close());
  return p;
}

for (const [transport, ask] of [
  ['UDP', udpAsk],
  ['TCP', tcpAsk],
] as const) {
  test(`mesh names are answered locally over ${transport}: FQDN, short name, name.namespace, search expansion`, async (t) => {
    const up = await fakeUpstream(t);
    const p = await proxy(t, up.port);
    for (const name of ['reviews.default.svc.cluster.local', 'reviews', 'reviews.default', 'reviews.default.default.svc.cluster.local']) {
      const r = await ask(p.port, query(name));
      assert.equal(rcode(r), 'NOERROR', name);
      assert.deepEqual(data(r), ['10.96.0.12'], name);
      assert.equal(r.answers![0].name, name);
      assert.ok((r.flags ?? 0) & dnsPacket.AUTHORITATIVE_ANSWER, 'authoritative');
    }
    assert.deepEqual(data(await ask(p.port, query('api.example.com'))), ['240.240.0.1']);
    assert.deepEqual(data(await ask(p.port, query('api.example.com', 'AAAA'))), ['2001:2::1']);
    // A mesh name without IPv6 addresses: NODATA, not forwarded.
    const aaaa = await ask(p.port, query('reviews', 'AAAA'));
    assert.deepEqual([rcode(aaaa), data(aaaa)], ['NOERROR', []]);
    assert.deepEqual(up.seen, [], 'nothing was forwarded');
    assert.equal(p.stats.answeredLocally, 7);
  });

  test(`other names are forwarded upstream over ${transport}`, async (t) => {
    const up = await fakeUpstream(t);
    const p = await proxy(t, up.port);
    const r = await ask(p.port, query('external.test'));
    assert.deepEqual([rcode(r), data(r)], ['NOERROR', ['192.0.2.10']]);
    const nx = await ask(p.port, query('nope.test'));
    assert.equal(rcode(nx), 'NXDOMAIN');
    // Non-address queries for mesh names go upstream too (as Istio's agent does).
    await ask(p.port, query('reviews', 'TXT'));
    assert.deepEqual(up.seen, ['external.test', 'nope.test', 'reviews']);
  });

  test(`an unreachable upstream gives SERVFAIL over ${transport}, and the proxy keeps serving`, async (t) => {
    const p = await proxy(t, await deadPort());
    const r = await ask(p.port, query('external.test'));
    assert.equal(rcode(r), 'SERVFAIL');
    assert.equal(p.stats.upstreamFailures, 1);
    assert.deepEqual(data(await ask(p.port, query('reviews'))), ['10.96.0.12']);
  });
}

test('update() swaps the table; a bad table is refused and the good one kept', async (t) => {
  const p = await proxy(t, await deadPort());
  p.update({ table: { 'new.default.svc.cluster.local': { ips: ['10.96.9.9'], registry: 'Kubernetes', shortname: 'new', namespace: 'default' } } });
  assert.deepEqual(data(await udpAsk(p.port, query('new'))), ['10.96.9.9']);
  assert.equal(rcode(await udpAsk(p.port, query('reviews'))), 'SERVFAIL', 'reviews is gone: forwarded to the dead upstream');
  assert.throws(() => p.update({ table: { 'x.com': { ips: ['not-an-ip'] } } }), /not an IP address/);
  assert.deepEqual(data(await udpAsk(p.port, query('new'))), ['10.96.9.9']);
});

test('malformed queries get FORMERR (or are dropped when too short), never a crash', async (t) => {
  const p = await proxy(t, await deadPort());
  const garbage = Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff]);
  const r = await udpAsk(p.port, garbage);
  assert.equal(r.id, 0x1234);
  assert.equal(rcode(r), 'FORMERR');
  const s = dgram.createSocket('udp4');
  s.send(Buffer.from([1, 2, 3]), p.port, '127.0.0.1', () => s.close());
  assert.deepEqual(data(await udpAsk(p.port, query('reviews'))), ['10.96.0.12']);
  assert.equal(p.stats.malformed, 2);
});

test('a port already in use is a clear error', async (t) => {
  const p = await proxy(t, await deadPort());
  await assert.rejects(startDnsProxy({ port: p.port, table: TABLE, upstream: [] }), /DNS proxy: 127\.0\.0\.1:\d+ is already in use/);
});

test('EDNS: an OPT record is echoed; answers too large for UDP are truncated so the client retries over TCP', async (t) => {
  const many = { table: { 'big.default.svc.cluster.local': { ips: Array.from({ length: 20 }, (_, i) => `10.97.0.${i + 1}`) } } };
  const p = await startDnsProxy({ port: 0, table: many, upstream: [] });
  t.after(() => p.close());
  const ask = (edns: number | undefined) =>
    dnsPacket.encode({
      type: 'query',
      id: 9,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type: 'A', class: 'IN', name: 'big.default.svc.cluster.local' }],
      additionals: edns ? [{ type: 'OPT', name: '.', udpPayloadSize: edns, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] } as dnsPacket.Answer] : [],
    });
  // 20 A records (~1 KB: dns-packet does not compress names): over the 512 bytes of plain DNS...
  const plain = await udpAsk(p.port, ask(undefined));
  assert.ok((plain.flags ?? 0) & dnsPacket.TRUNCATED_RESPONSE);
  assert.equal(plain.answers?.length, 0);
  // ...within an EDNS client's 1232, and complete over TCP.
  const edns = await udpAsk(p.port, ask(1232));
  assert.equal(edns.answers?.length, 20);
  assert.equal(edns.additionals?.[0]?.type, 'OPT');
  assert.equal((await tcpAsk(p.port, ask(undefined))).answers?.length, 20);
});
