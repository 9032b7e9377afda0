// `npm run bench:instructions`: instructions per request of one rig proxy of a benchmark case,
// counted by valgrind's callgrind, a figure that two runs of one build repeat within ~1% where
// timing moves by ±10% (README.md, "Instructions per request"). The proxy runs under callgrind
// with V8 single-threaded and fixed 2 MB semi-spaces; 30,000 requests one after the other on one
// connection warm it up (keep-alive GETs; HTTP/2 GET streams on one session; gRPC unary calls on
// one channel), callgrind_control -z zeroes the counters, 10,000 more on the same connection are
// counted, -d dumps them.
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensurePackages } from '../lib/debian-deps.ts';
import { pinSelf } from '../lib/process-group.ts';
import { snapshotHead } from '../lib/source-snapshot.ts';
import { CASES } from '../cases/cases.ts';
import { sequentialClient, sequentialRequests } from '../load/sequential.ts';
import type { LoadProtocol } from '../load/open-loop.ts';
import { rigSourceRoot, useRigSource } from '../servers/rig-proxy.ts';
import { scratchDir, type Server } from '../servers/server.ts';
import { nameJitCode, parseCallgrind } from './callgrind-file.ts';
import { callerListing, flatListing, perRequest } from './instruction-figures.ts';

const USAGE = `usage: npm run bench:instructions -- [options]      (as root: valgrind comes from apt)
  --case ID          rig-1hop (default), rig-2hop, rig-2hop-mtls, rig-1hop-telemetry-on,
                     h2-rig-1hop or grpc-rig-1hop
  --proxy client|server   with a two-hop case: which proxy is counted (default client)
  --rev COMMIT       count rig compiled from this commit (default HEAD); run twice for an A/B
  --worktree         count rig from the working tree's sources (uncommitted changes; type stripping)
  --requests N       counted requests (default 10000)
  --warmup N         requests before counting (default 30000)
  --rig-node-flags=F more node flags for the counted proxy (to count an alternative, e.g. a V8 flag)
  --profile          also write the functions by exclusive instructions and by caller (JIT code
                     named from node --perf-basic-prof) and print the top 30
  --out DIR          where --profile writes (default: a new directory under ${os.tmpdir()})`;

/**
 * V8's baseline-tier builtins per request above which a window is not steady: one hop at 8941d24
 * read 44; a window with routeRequest deoptimized, 606; telemetry on, still tiering up, 1.8k.
 */
const BASELINE_STEADY = 200;
/**
 * V8 --single-threaded: compiles and GC on the main thread at fixed points (with concurrent
 * tiering one build read 129k and 171k). Fixed 2 MB semi-spaces, the least the proxy's own cap
 * (YOUNG_GENERATION_CAP, 4 MB) lets them be: the cap lets them sit at 2 or 4 MB from run to run,
 * which would halve one run's scavenges against another's. (Round 22 counted with 1 MB ones,
 * under its 2 MB cap.)
 */
const NODE_FLAGS = ['--single-threaded-gc', '--single-threaded', '--min-semi-space-size=2', '--max-semi-space-size=2'];

const SERVER_CORE = 1;
const LOAD_CORE = 0;

const log = (s: string) => process.stderr.write(`bench:instructions: ${s}\n`);

function count(n: string | undefined, def: number, name: string): number {
  if (n === undefined) return def;
  const v = Number(n);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} ${n}: expected a whole number ≥ 1`);
  return v;
}

/** Waits until callgrind has written the whole dump (it ends with a totals: line). */
async function dumpText(file: string): Promise<string> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      // not there yet
    }
    if (/\ntotals: .*\n?$/.test(text)) return text;
    if (Date.now() > deadline) throw new Error(`callgrind did not write ${file} within 120 s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function firstRequest(protocol: LoadProtocol, port: number): Promise<void> {
  const deadline = Date.now() + 300_000;
  for (;;) {
    try {
      return await sequentialRequests(protocol, port, 1);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      case: { type: 'string', default: 'rig-1hop' },
      proxy: { type: 'string' },
      rev: { type: 'string' },
      worktree: { type: 'boolean', default: false },
      requests: { type: 'string' },
      warmup: { type: 'string' },
      'rig-node-flags': { type: 'string' },
      profile: { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const c = CASES.find((x) => x.id === values.case);
  if (!c || c.proxy !== 'rig') {
    throw new Error(`--case ${values.case}: expected one of ${CASES.filter((x) => x.proxy === 'rig').map((x) => x.id).join(', ')}`);
  }
  if (values.proxy !== undefined && (c.hops !== 2 || !['client', 'server'].includes(values.proxy))) {
    throw new Error(`--proxy ${values.proxy}: client or server, with a two-hop case`);
  }
  const role: Server['role'] = c.hops === 2 ? (values.proxy === 'server' ? 'server-proxy' : 'client-proxy') : 'proxy';
  // A scavenge costs ~780k instructions on the one-hop proxy, one every ~250 GETs: in 2,000 GETs
  // one scavenge more or less moved the count by ~390 (two runs of one build: 70.3k and 70.6k);
  // in 10,000, by ~80.
  const requests = count(values.requests, 10_000, 'requests');
  // After 15,000 GETs V8 still ran HttpStream.finish and the pool's complete in its baseline tier,
  // and optimized them (with the last few others) within the counted window: 77.7k with 3.6k of
  // compiles left out. After 30,000: 71.7k, no compile in the window, as in the benchmark's.
  const warmup = count(values.warmup, 30_000, 'warmup');
  if (values.rev && values.worktree) throw new Error('--rev and --worktree: one or the other');

  ensurePackages(['nginx', 'valgrind'], log);
  pinSelf(LOAD_CORE); // the client, off the servers' core
  const commit = values.worktree ? 'working tree' : execFileSync('git', ['rev-parse', '--short', values.rev ?? 'HEAD'], { encoding: 'utf8', cwd: import.meta.dirname }).trim();
  if (!values.worktree) useRigSource(snapshotHead(values.rev));
  const unavailable = c.unavailable();
  if (unavailable) throw new Error(`${c.id} at ${commit}: ${unavailable}`);

  const out = path.join(scratchDir('callgrind'), 'callgrind.out');
  const started: Server[] = [];
  let dump = '';
  let perfMap = '';
  let windowS = 0;
  try {
    const nodeFlags = [...NODE_FLAGS, ...(values['rig-node-flags']?.split(/\s+/).filter(Boolean) ?? []), ...(values.profile ? ['--perf-basic-prof'] : [])];
    const launcher = ['valgrind', '--tool=callgrind', '--smc-check=all-non-file', `--callgrind-out-file=${out}`];
    log(`${c.id}: starting, the ${role} under callgrind (a minute or two)`);
    const topo = await c.start({ serverCore: SERVER_CORE, loadCore: LOAD_CORE, rigLaunched: { role, launcher, nodeFlags } }, started);
    const counted = started.find((s) => s.role === role)!;
    perfMap = `/tmp/perf-${counted.proc.pid}.map`;
    // One request on a connection of its own (the benchmark's probe), then warm-up and count on one
    // connection, as the benchmark's fixed-rate window runs on the warm-up's connections. A new
    // connection deoptimizes node's stream code (ReadableState, onStreamRead, Writable.write:
    // "wrong map"), which V8 optimizes again only 7,000–40,000 requests later: counted on a new
    // connection (round 22), the figure depends on the connections before it. The first request has
    // no timeout (a slow valgrind would make one expire now and then) and is retried only when it
    // fails: a proxy in front of the counted one answers 503 while callgrind still starts it up.
    await firstRequest(c.protocol, topo.entryPort);
    const client = await sequentialClient(c.protocol, topo.entryPort);
    try {
      log(`${warmup} requests to warm up`);
      await client.run(warmup);
      execFileSync('callgrind_control', ['-z', String(counted.proc.pid)], { stdio: 'ignore' });
      log(`${requests} requests counted`);
      const t0 = performance.now();
      await client.run(requests);
      windowS = (performance.now() - t0) / 1000;
    } finally {
      client.close();
    }
    execFileSync('callgrind_control', ['-d', String(counted.proc.pid)], { stdio: 'ignore' });
    dump = await dumpText(`${out}.1`);
    if (values.profile) dump = nameJitCode(dump, readFileSync(perfMap, 'utf8'), `file://${rigSourceRoot()}/`);
  } finally {
    for (const s of started.reverse()) await s.stop(60_000); // valgrind cleans up its vgdb pipes on a clean exit
    if (perfMap) rmSync(perfMap, { force: true });
  }

  const parsed = parseCallgrind(dump);
  const r = perRequest(parsed, requests);
  process.stdout.write(
    `${c.id}, ${role} (rig at ${commit}${values['rig-node-flags'] ? `, node ${values['rig-node-flags']}` : ''}) under callgrind: ${warmup} requests to warm up, ${requests} counted in ${windowS.toFixed(1)} s on the warm-up's connection\n` +
      `instructions per request: ${fmt(r.instructions)}\n` +
      `left out per request: compiles ${fmt(r.compiles)} (optimizing, Maglev, lazy), old-generation GC ${fmt(r.oldGenerationGc)}, other threads ${fmt(r.background)}; all ${fmt(r.all)}\n` +
      `scavenges in the window: ${r.scavenges} (counted in)\n` +
      `V8's baseline-tier builtins: ${fmt(r.baselineTier)} per request (counted in)${r.baselineTier > BASELINE_STEADY ? `: above ${BASELINE_STEADY}, so part of the window ran code V8 had not optimized yet, or had deoptimized; compare such a count with care` : ''}\n`,
  );
  if (!values.profile) return;
  const dir = values.out ?? mkdtempSync(path.join(os.tmpdir(), `rig-instructions-${commit}-`));
  mkdirSync(dir, { recursive: true });
  const flat = flatListing(parsed, requests);
  const note = `# ${c.id}, ${role}, rig at ${commit}: instructions per request (${requests} requests), all ${fmt(r.all)}\n`;
  const files = { callgrind: path.join(dir, 'callgrind.out'), flat: path.join(dir, 'flat.txt'), callers: path.join(dir, 'callers.txt') };
  writeFileSync(files.callgrind, dump);
  writeFileSync(files.flat, note + '# per request, share, function [object], by exclusive instructions\n' + flat.join('\n') + '\n');
  writeFileSync(files.callers, note + '# per request: exclusive, inclusive, function [object]; then its callers\n' + callerListing(parsed, requests).join('\n'));
  process.stdout.write(
    `\nprofile: ${files.flat} (exclusive), ${files.callers} (callers), ${files.callgrind} (JIT code named: callgrind_annotate, kcachegrind)\n` +
      `top 30 by exclusive instructions per request:\n${flat.slice(0, 30).join('\n')}\n`,
  );
}

main()
  .catch((err: Error) => {
    process.stderr.write(`bench:instructions: ${err.message}\n`);
    process.exitCode = 1;
  })
  .finally(() => process.exit());
