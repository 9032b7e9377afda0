// Replays the abuse corpus (test/abuse/corpus/*.txt, format in corpus.ts) against the real proxy
// over raw sockets: each attack gets the right status or a close and never reaches the upstream
// beyond what the case allows; after a burst of every attack the proxy still serves, and its open
// file descriptors and heap are back at their baseline.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadCorpus, meets, replay, type AttackCase } from './corpus.ts';
import { configure, httpListener, request, routeConfig, startTestRuntime, startUpstream, staticCluster } from '../proxy/harness.ts';
import { assertBackToBaseline, leakBaseline } from '../helpers/leak-baseline.ts';

const CORPUS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'corpus');

test('every attack in the corpus gets its status or a close; a burst leaves fds and heap at baseline', async (t) => {
  const cases = loadCorpus(CORPUS);
  assert.ok(cases.length >= 20, 'the corpus is there');
  const up = await startUpstream('up');
  const h = await startTestRuntime(t, [up]);
  await configure(h, { clusters: [staticCluster('up', [up.port])], listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up' } }], ['a']))] });
  const port = h.port('l');

  const check = async (c: AttackCase): Promise<string | undefined> => {
    const before = up.requests.length;
    const o = await replay(port, c.bytes);
    const seen = up.requests.length - before;
    if (!meets(c, o)) return `${c.name}: expected ${c.expect.join('|')}, got ${o.status || 'no response'}${o.closed ? ' and a close' : ', connection left open'}: ${JSON.stringify(o.raw.slice(0, 80))}`;
    if (seen > c.upstream) return `${c.name}: the upstream saw ${seen} request(s), at most ${c.upstream} allowed`;
    return undefined;
  };
  const failures = [];
  for (const c of cases) failures.push(await check(c));
  assert.deepEqual(failures.filter(Boolean), []);

  const base = await leakBaseline();
  // A burst: every attack 15 times, 16 connections at a time (only the control case reaches the upstream).
  const jobs = cases.flatMap((c) => Array.from({ length: 15 }, () => c));
  let next = 0;
  const bad: string[] = [];
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < jobs.length) {
        const c = jobs[next++];
        const o = await replay(port, c.bytes);
        if (!meets(c, o)) bad.push(c.name);
      }
    }),
  );
  assert.deepEqual(bad, []);
  assert.equal((await request(port, { headers: { host: 'a' } })).status, 200, 'the proxy still serves');
  await assertBackToBaseline(base, { maxHeapGrowth: 16 * 1024 * 1024, after: `${jobs.length} attacks`, fdWaitMs: 5000 });
  assert.equal(h.rt.stats.all().find((s) => s.name === 'http.l.downstream_rq_active')!.value, 0, 'no stream left active');
});
