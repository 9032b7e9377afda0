// Returns the start-up heap to the OS. Loading the Envoy protos, the extensions and the first
// config allocates heavily, so V8 grows the young generation to its maximum (about 32 MB
// committed) and keeps it, nearly empty, once the proxy is idle. One memory-reducing full
// collection (V8's "last resort" flavour, which also shrinks the new space) gives it back; V8
// offers that collection only through its gc extension, which is exposed to a throw-away context.
import v8 from 'node:v8';
import vm from 'node:vm';

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

/** One synchronous memory-reducing full GC; returns how long the pause took (ms). */
export function trimHeap(): number {
  const t0 = performance.now();
  gcExtension()({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  return performance.now() - t0;
}

/**
 * Trims the heap once `ready()` holds (checked every `pollMs`; at once when it already does):
 * with xDS the first config arrives after start-up, and its decoding is what grows the heap.
 */
export function trimHeapWhenReady(ready: () => boolean, onTrimmed: (pauseMs: number) => void, pollMs = 500): () => void {
  if (ready()) {
    onTrimmed(trimHeap());
    return () => {};
  }
  const t = setInterval(() => {
    if (!ready()) return;
    clearInterval(t);
    onTrimmed(trimHeap());
  }, pollMs);
  t.unref();
  return () => clearInterval(t);
}
