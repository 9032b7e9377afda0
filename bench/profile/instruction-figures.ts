// From one callgrind dump of N requests: instructions per request, and the listings of
// `npm run bench:instructions -- --profile` (README.md, "Instructions per request").
import { callersOf, inclusive, type CallgrindDump } from './callgrind-file.ts';

export interface PerRequest {
  requests: number;
  /** Everything counted (the dump's summary), per request. */
  all: number;
  /** What is left out, per request. */
  background: number;
  compiles: number;
  oldGenerationGc: number;
  /** all − background − compiles − oldGenerationGc. */
  instructions: number;
  /** Scavenges in the window: each is ~780k instructions on the one-hop proxy, so one more or less moves a 2,000-request count by ~390. */
  scavenges: number;
  /**
   * V8's baseline-tier builtins (exclusive, counted in): ~40 a request in a steady window; more
   * when the window ran code V8 had not optimized yet, or had deoptimized (the telemetry-on
   * proxy: 1.8k, with routeRequest and HttpStream.finish in the baseline tier).
   */
  baselineTier: number;
}

/** The largest inclusive cost of a function whose name passes the test (0 if none). */
function largest(dump: CallgrindDump, test: (name: string) => boolean): number {
  let n = 0;
  for (const f of dump.functions.values()) if (test(f.name)) n = Math.max(n, inclusive(f));
  return n;
}

const has = (s: string) => (name: string) => name.includes(s);

/**
 * Left out, as work that lands in the window by chance: other threads (whatever runs under
 * start_thread), optimizing and lazy compiles, and old-generation GC (incremental marking steps,
 * mark-compact: Heap::CollectGarbage less its scavenges). Scavenges stay in: they follow each
 * request's allocations.
 */
export function perRequest(dump: CallgrindDump, requests: number): PerRequest {
  const background = largest(dump, (n) => n === 'start_thread');
  const compiles =
    largest(dump, has('v8::internal::Compiler::CompileOptimized(')) +
    largest(dump, has('maglev::MaglevCompiler::Compile(')) +
    largest(dump, (n) => n === 'Builtins_CompileLazy');
  const oldGenerationGc =
    largest(dump, has('IncrementalMarking::Step(')) +
    largest(dump, has('v8::internal::Heap::CollectGarbage(')) -
    largest(dump, has('ScavengerCollector::CollectGarbage()')) +
    largest(dump, has('Heap::StartIncrementalMarking('));
  return {
    requests,
    all: dump.total / requests,
    background: background / requests,
    compiles: compiles / requests,
    oldGenerationGc: oldGenerationGc / requests,
    instructions: (dump.total - background - compiles - oldGenerationGc) / requests,
    scavenges: [...dump.functions.values()].filter((f) => f.name === 'v8::internal::ScavengerCollector::CollectGarbage()').reduce((n, f) => n + f.calls, 0),
    baselineTier: [...dump.functions.values()].filter((f) => f.name.startsWith('Builtins_') && f.name.includes('Baseline')).reduce((n, f) => n + f.self, 0) / requests,
  };
}

const perReq = (n: number, requests: number) => (n / requests).toFixed(1).padStart(10);
const label = (f: { name: string; object: string }) => `${f.name} [${f.object || '???'}]`;

/** Functions by exclusive instructions, largest first: instructions per request, share, name [object]. */
export function flatListing(dump: CallgrindDump, requests: number): string[] {
  return [...dump.functions.values()]
    .filter((f) => f.self > 0)
    .sort((a, b) => b.self - a.self)
    .map((f) => `${perReq(f.self, requests)}  ${((f.self / dump.total) * 100).toFixed(2).padStart(6)}%  ${label(f)}`);
}

/** Each function (by exclusive instructions, largest first) with its inclusive cost and its callers. */
export function callerListing(dump: CallgrindDump, requests: number): string[] {
  const callers = callersOf(dump);
  const out: string[] = [];
  for (const f of [...dump.functions.values()].filter((f) => f.self > 0).sort((a, b) => b.self - a.self)) {
    out.push(`${perReq(f.self, requests)} self ${perReq(inclusive(f), requests)} inclusive  ${label(f)}`);
    const by = [...(callers.get(f.name) ?? new Map<string, { calls: number; cost: number }>())].sort((a, b) => b[1].cost - a[1].cost);
    for (const [name, c] of by) out.push(`    ${perReq(c.cost, requests)} from ${name} (${c.calls}×)`);
    out.push('');
  }
  return out;
}
