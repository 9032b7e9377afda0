// `npm run bench`: the data plane against direct, HAProxy and nginx, plus the control plane's
// scale benchmark; writes bench/results/<date>-<commit>.{json,md} and prints the summary.
// `npm run bench -- --smoke` runs every case for ~2 s (CI keeps it working; figures meaningless).
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { ensurePackages } from './lib/debian-deps.ts';
import { machineInfo } from './lib/machine.ts';
import { configureScheduling, pinSelf, unpinSelf } from './lib/process-group.ts';
import { CASES } from './cases/cases.ts';
import { runCase, type CaseResult, type MeasureSettings } from './cases/measure.ts';
import { runControlPlaneBench } from './cases/controlplane.ts';
import { runTelemetryCost } from './cases/telemetry-cost.ts';
import { remeasureSlowWindows } from './cases/slow-windows.ts';
import { checkGoals } from './report/goals.ts';
import { renderMarkdown } from './report/markdown.ts';
import { writeResultFiles, RESULTS_DIR, type BenchRun } from './report/result-file.ts';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { snapshotHead, snapshotWorktree } from './lib/source-snapshot.ts';
import { useRigSource } from './servers/rig-proxy.ts';
import { profileCase } from './profile/profile.ts';

/** The id of the alternating telemetry-on/off throughput measurement (bench/cases/telemetry-cost.ts), for --only. */
const TELEMETRY_COST = 'telemetry-cost';
/** Saturated off/on rounds of the telemetry cost; their 1 − on/off spread 10–26% on a noisy 2-vCPU VM, so the median takes five. */
const TELEMETRY_COST_ROUNDS = 5;

const USAGE = `usage: npm run bench -- [options]
  --smoke                 every case for ~2 s (also: RIG_BENCH_SMOKE=1); results go to a temp dir
  --only a,b              run only these cases (ids: ${CASES.map((c) => c.id).join(', ')}, ${TELEMETRY_COST})
  --duration S            seconds measured at the fixed rate (default 30)
  --warmup S              seconds at the fixed rate before that (default 20: V8's tier-up of rig proxy)
  --rate N                requests per second for the latency figures (default 1000)
  --saturation S          seconds of wrk/h2load per case (default 15)
  --load-processes N      open-loop generator processes on the load core (default 1)
  --profile               also run rig-1hop under --cpu-prof and print the top self-time functions
  --profile-case ID       profile this case instead of rig-1hop (implies --profile), e.g. h2-rig-1hop
  --profile-out FILE      keep the .cpuprofile there (implies --profile; Chrome DevTools opens it)
  --out DIR               where to write the result files (default bench/results)
  --worktree              run rig from the working tree's sources (default: a snapshot of the committed HEAD)
  --rev COMMIT            run rig compiled from this commit instead of HEAD (before/after figures)
  --worktree-build        run rig compiled from a copy of the working tree (uncommitted changes, the
                          users' compiled build: type stripping from source costs ~18 MB RSS)
  --rig-node-flags=F      extra node flags for every rig proxy (to measure an alternative, e.g.
                          --rig-node-flags=--v8-pool-size=1); recorded in the result file
  --render FILE.json      rewrite the .md summary of an earlier result file (goals re-checked)
  --nice N                niceness of the load generator, wrk and h2load (default -20 as root)
  --no-fifo               servers under test at normal priority (default as root: SCHED_FIFO, so
                          that other work on a shared machine does not delay them)
  --max-foreign V         re-measure a window in which other processes used more than V vCPU of a
                          benchmark core (default 0.25); --retries N times at most (default 1).
                          A window at the fixed rate in which the server core ran slow (its upstream
                          used 1.3× the run's lowest CPU per request) is measured again after the
                          last case, --retries times at most (bench/cases/slow-windows.ts)
  --no-control-plane      skip the control plane scale benchmark`;

/**
 * Warm-up at the fixed rate before the latency window. V8 keeps optimizing `rig proxy`'s hot
 * path for ~15 s at 1000 requests/s (TurboFan jobs per 2.5 s, two-hop proxies, start-up aside:
 * 44, 106, 28, 163, 18, 6, 2, 2), and each burst of jobs shares the servers' core with the
 * request path: with 5 s the two-hop p99.9 was ~50 ms of compilation. A sidecar runs for hours;
 * the window measures it warmed up, as one measures Envoy after its start-up.
 */
const DEFAULT_WARMUP_S = 20;


function git(args: string[]): string {
  return execFileSync('git', args, { encoding: 'utf8', cwd: import.meta.dirname }).trim();
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    allowNegative: true,
    options: {
      smoke: { type: 'boolean', default: process.env.RIG_BENCH_SMOKE === '1' },
      only: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      rate: { type: 'string' },
      saturation: { type: 'string' },
      'load-processes': { type: 'string' },
      profile: { type: 'boolean', default: false },
      'profile-case': { type: 'string' },
      'profile-out': { type: 'string' },
      out: { type: 'string' },
      nice: { type: 'string' },
      fifo: { type: 'boolean', default: true },
      'max-foreign': { type: 'string' },
      retries: { type: 'string' },
      'control-plane': { type: 'boolean', default: true },
      worktree: { type: 'boolean', default: false },
      'worktree-build': { type: 'boolean', default: false },
      rev: { type: 'string' },
      'rig-node-flags': { type: 'string' },
      render: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  if (values.render) {
    const run = JSON.parse(readFileSync(values.render, 'utf8')) as BenchRun;
    run.goals = checkGoals(run.results, run.controlPlane.figures, run.controlPlane.reason, run.telemetryCost);
    const md = renderMarkdown(run);
    writeResultFiles(run, md, path.dirname(values.render));
    process.stdout.write(md);
    return;
  }
  const num = (v: string | undefined, def: number, name: string, min = Number.MIN_VALUE) => {
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} ${v}: expected a number ≥ ${min === Number.MIN_VALUE ? '0 (not 0)' : min}`);
    return n;
  };
  const smoke = values.smoke;
  const only = values.only?.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = only?.filter((id) => id !== TELEMETRY_COST && !CASES.some((c) => c.id === id));
  if (unknown?.length) throw new Error(`--only: unknown case ${unknown.join(', ')} (known: ${CASES.map((c) => c.id).join(', ')})`);
  const profiled = values['profile-case'];
  if (profiled !== undefined && !CASES.some((c) => c.id === profiled)) throw new Error(`--profile-case: unknown case ${profiled} (known: ${CASES.map((c) => c.id).join(', ')})`);
  if (os.availableParallelism() < 2) throw new Error('the benchmark needs 2 cores (servers on core 1, load generator on core 0)');

  const settings: MeasureSettings = {
    loadCore: 0,
    serverCore: 1,
    rate: num(values.rate, 1000, 'rate'),
    connections: 16,
    warmupMs: num(values.warmup, smoke ? 0.3 : DEFAULT_WARMUP_S, 'warmup') * 1000,
    durationMs: num(values.duration, smoke ? 1.5 : 30, 'duration') * 1000,
    loadProcesses: num(values['load-processes'], 1, 'load-processes'),
    saturationConnections: 32,
    saturationThreads: 1,
    saturationS: num(values.saturation, smoke ? 1 : 15, 'saturation'),
    saturationWarmupS: smoke ? 0 : 2,
    maxForeignVcpu: num(values['max-foreign'], 0.25, 'max-foreign', 0),
    retries: smoke ? 0 : num(values.retries, 1, 'retries', 0),
    rigNodeFlags: values['rig-node-flags']?.split(/\s+/).filter(Boolean),
  };
  configureScheduling({
    serversFifo: values.fifo && process.getuid?.() === 0,
    niceness: num(values.nice, process.getuid?.() === 0 ? -20 : 0, 'nice', -20),
  });
  const log = (s: string) => process.stderr.write(`bench: ${s}\n`);
  ensurePackages(undefined, log);
  pinSelf(settings.loadCore); // keep the orchestrator off the servers' core

  const commit = git(['rev-parse', '--short', values.rev ?? 'HEAD']); // before the snapshot: the commit measured
  if (values['worktree-build']) useRigSource(snapshotWorktree());
  else if (!values.worktree) useRigSource(snapshotHead(values.rev));
  const loadBefore = os.loadavg().map((v) => v.toFixed(2)).join(' ');
  const results: CaseResult[] = [];
  const cases = CASES.filter((c) => !only || only.includes(c.id));
  for (const c of cases) {
    log(`${c.id}: ${c.title}`);
    const r = await runCase(c, settings);
    if (r.status !== 'ok') log(`${c.id}: ${r.status}: ${r.reason}`);
    else log(`${c.id}: p50 ${r.latency!.latency.p50.toFixed(3)} ms, p99 ${r.latency!.latency.p99.toFixed(3)} ms, max ${Math.round(r.saturation!.rps)} rps`);
    results.push(r);
  }
  await remeasureSlowWindows(cases, results, settings, log);
  let telemetryCost: BenchRun['telemetryCost'];
  if (!only || only.includes(TELEMETRY_COST)) {
    log(`${TELEMETRY_COST}: telemetry off and on, saturated in turn`);
    telemetryCost = await runTelemetryCost(settings, smoke ? 1 : TELEMETRY_COST_ROUNDS);
    log(`${TELEMETRY_COST}: ${telemetryCost.figures ? `${(telemetryCost.figures.cost * 100).toFixed(1)}% (rounds ${telemetryCost.figures.rounds.map((r) => `${(r.cost * 100).toFixed(1)}%`).join(', ')})` : `n/a: ${telemetryCost.reason}`}`);
  }
  const skipControlPlane = !values['control-plane'] || only;
  if (!skipControlPlane) unpinSelf(); // its processes measure the whole machine, as when run alone
  const controlPlane = skipControlPlane
    ? { figures: null, reason: 'skipped (--no-control-plane or --only)' }
    : await runControlPlaneBench({ smoke });

  const run: BenchRun = {
    date: new Date().toISOString().slice(0, 10),
    commit,
    dirty: (values.worktree || values['worktree-build']) && git(['status', '--porcelain', '--', '../src']) !== '',
    smoke,
    machine: machineInfo(),
    loadAverage: { before: loadBefore, after: os.loadavg().map((v) => v.toFixed(2)).join(' ') },
    settings,
    results,
    controlPlane,
    telemetryCost,
    goals: checkGoals(results, controlPlane.figures, controlPlane.reason, telemetryCost),
  };
  const md = renderMarkdown(run);
  const files = writeResultFiles(run, md, values.out ?? (smoke ? path.join(os.tmpdir(), 'rig-bench-smoke-results') : RESULTS_DIR));
  process.stdout.write('\n' + md);
  log(`results: ${files.json}`);

  if (values.profile || profiled !== undefined || values['profile-out'] !== undefined) {
    // V8's sampling profiler thread cannot interrupt a SCHED_FIFO main thread of equal priority on
    // one core (the profile comes out nearly empty): profile at normal priority.
    configureScheduling({ serversFifo: false, niceness: 0 });
    process.stdout.write('\n' + (await profileCase(settings, profiled, values['profile-out'])));
  }
  const failed = results.filter((r) => r.status === 'failed');
  if (failed.length) {
    log(`${failed.length} case(s) failed: ${failed.map((r) => r.id).join(', ')}`);
    process.exitCode = 1;
  }
}

main()
  .catch((err: Error) => {
    process.stderr.write(`bench: ${err.message}\n`);
    process.exitCode = 1;
  })
  // Exit even if a timed-out control plane benchmark left work pending; the exit hook stops its processes.
  .finally(() => process.exit());
