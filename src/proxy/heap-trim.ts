// Returns the start-up heap to the OS. Loading the Envoy protos, the extensions and the first
// config allocates heavily, so V8 grows the young generation to its maximum (about 32 MB
// committed) and keeps it, nearly empty, once the proxy is idle. One memory-reducing full
// collection (V8's "last resort" flavour, which also shrinks the new space) gives it back; V8
// offers that collection only through its gc extension, which is exposed to a throw-away context.
import v8 from 'node:v8';
import vm from 'node:vm';
import { PerformanceObserver } from 'node:perf_hooks';

type GcExtension = (opts: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

let gc: GcExtension | undefined;

function gcExtension(): GcExtension {
  if (gc) return gc;
  v8.setFlagsFromString('--expose-gc');
  try {
    gc = vm.runInNewContext('gc') as GcExtension;
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
  return gc;
}

/**
 * One synchronous memory-reducing full GC that compacts every old-space page; returns how long
 * the pause took (ms). Without --compact-on-every-full-gc (a flag V8 reads at each GC) it moves
 * few objects when it collects on one thread (--single-threaded-gc, as the benchmark runs it):
 * 17.5 MB live kept 24 MB of old space committed. With it: 19 MB, idle RSS 86.5 → 81.5 MB, for a
 * longer pause once at start-up (~60 → ~180 ms on the shared 2-core machine).
 *
 * `flushBytecode` also drops the bytecode of every function not running now (--stress-flush-code,
 * also read at each GC), as V8 does on its own only after a function went unused for six full
 * GCs, which a proxy reaches rarely: start-up's code (bootstrap and proto decoding, module
 * loading) would stay for good. What runs again is compiled again from its source, once. On the
 * benchmark's telemetry-on proxy, idle: bytecode and its metadata 3.6 → 2.2 MB, RSS −1.4 MB.
 */
export function trimHeap(flushBytecode = false): number {
  const t0 = performance.now();
  v8.setFlagsFromString('--compact-on-every-full-gc');
  if (flushBytecode) v8.setFlagsFromString('--stress-flush-code');
  try {
    gcExtension()({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  } finally {
    v8.setFlagsFromString('--no-compact-on-every-full-gc');
    if (flushBytecode) v8.setFlagsFromString('--no-stress-flush-code');
  }
  return performance.now() - t0;
}

/**
 * Young generation (both semi-spaces) the proxy keeps under load: V8 grows it as survivors
 * accumulate, up to 64 MB, all of it resident. The cap was 16 MB while the proxy ran on node:http
 * and undici (smaller cost ~5–10 % CPU then). On its own HTTP/1.1 codec, the benchmark's one-hop
 * proxy (same session, 15 s warm-up runs): cap 16 / 4 / 2 MB gave RSS at 1000 rps 66.9 / 65.0 /
 * 64.0 MB, at saturation 81.5 / 73.3 / 73.3 MB, max throughput 33.2k / 34.5k / 34.7k rps and CPU
 * per 1000 requests 0.0228 / 0.0218 / 0.0215 s: more scavenges of a smaller space cost nothing
 * measurable, since what survives one is a handful of in-flight requests. Counted instructions
 * do see them: with this 4 MB cap (2 MB semi-spaces) instead of 2 MB (1 MB ones), a proxied GET
 * costs 79.5k instead of 82.9k instructions on the one-hop proxy and 106.8k instead of 110.6k on
 * the client side of the mTLS two-hop case (npm run bench:instructions): a scavenge's fixed cost,
 * its roots, is paid half as often.
 */
export const YOUNG_GENERATION_CAP = 4 * 1024 * 1024;

/**
 * Stops the young generation from growing past `maxBytes` (it may reach up to twice that: V8
 * doubles it at a scavenge, and the check runs after each GC). The node flag
 * --max-semi-space-size only works at start-up (set later by v8.setFlagsFromString it changes
 * nothing), and `rig proxy` is launched by users, `rig up` and the benchmark alike; the growth
 * factor is the one knob V8 reads at run time. Against that flag (--max-semi-space-size=8, no
 * cap) the cap gives the same peak RSS, CPU per request and scavenge pauses (p50 ~0.6 ms, same
 * runs). The several-ms pauses under load are mark-compacts of the old generation (~20 MB live),
 * with or without the cap.
 *
 * Each GC is watched only while the young generation may still grow. Once it is at the cap, an
 * unref'd timer looks every `recheckMs` for V8 having shrunk it (it does when the proxy idles),
 * and lets it grow again: a GC observer costs a performance entry and a heap-space read per
 * scavenge, ~350 instructions per request on the one-hop proxy (npm run bench:instructions).
 * Returns a function that undoes it.
 */
export function capYoungGeneration(maxBytes: number, recheckMs = 1000): () => void {
  let frozen = false;
  let recheck: NodeJS.Timeout | undefined;
  const obs = new PerformanceObserver(() => check());
  const check = () => {
    const ns = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    if (!ns || (ns.space_size >= maxBytes) === frozen) return;
    frozen = !frozen;
    v8.setFlagsFromString(`--semi-space-growth-factor=${frozen ? 1 : 2}`);
    if (frozen) {
      obs.disconnect();
      recheck = setInterval(check, recheckMs).unref();
    } else {
      clearInterval(recheck);
      obs.observe({ entryTypes: ['gc'] });
    }
  };
  obs.observe({ entryTypes: ['gc'] });
  check();
  return () => {
    obs.disconnect();
    clearInterval(recheck);
    if (frozen) v8.setFlagsFromString('--semi-space-growth-factor=2');
  };
}

/**
 * Trims the heap once `ready()` holds (checked every `pollMs`; at once when it already does):
 * with xDS the first config arrives after start-up, and its decoding is what grows the heap.
 * `beforeTrim` drops what start-up alone needed, so that the trim compacts it away, start-up's
 * bytecode included (nothing is hot yet). From then on the young generation stays within
 * YOUNG_GENERATION_CAP.
 */
export function trimHeapWhenReady(
  ready: () => boolean,
  onTrimmed: (pauseMs: number) => void,
  { pollMs = 500, beforeTrim }: { pollMs?: number; beforeTrim?: () => void } = {},
): () => void {
  let uncap = () => {};
  const trim = () => {
    beforeTrim?.();
    onTrimmed(trimHeap(true));
    uncap = capYoungGeneration(YOUNG_GENERATION_CAP);
  };
  if (ready()) {
    trim();
    return () => uncap();
  }
  const t = setInterval(() => {
    if (!ready()) return;
    clearInterval(t);
    trim();
  }, pollMs);
  t.unref();
  return () => {
    clearInterval(t);
    uncap();
  };
}
