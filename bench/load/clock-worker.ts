// The open-loop generator's alarm clock: a worker thread that sleeps until each request's due
// time (Atomics.wait: a futex with a high-resolution timeout) and posts its index to the main
// thread. The main thread thus sleeps in epoll between sends, reading responses the moment they
// arrive, instead of busy-polling; run it SCHED_FIFO and its wake-ups are immediate (real-time
// tasks have no timer slack and preempt other work on the core).
import { parentPort, workerData } from 'node:worker_threads';

export interface ClockConfig {
  /** performance.timeOrigin of the main thread, to read its clock. */
  origin: number;
  /** Due time of tick 0 on the main thread's clock (ms). */
  base: number;
  interval: number;
  /** Wake the main thread this long before each due time (ms): the message's typical delivery time. */
  leadMs: number;
  /** No tick is due at or after this time (main thread's clock, ms). */
  end: number;
}

if (parentPort && workerData) {
  const cfg = workerData as ClockConfig;
  const shift = performance.timeOrigin - cfg.origin; // main thread's clock = ours + shift
  const cell = new Int32Array(new SharedArrayBuffer(4));
  for (let k = 0; ; k++) {
    const due = cfg.base + k * cfg.interval;
    if (due >= cfg.end) break;
    const wait = due - cfg.leadMs - (performance.now() + shift);
    if (wait > 0) Atomics.wait(cell, 0, 0, wait);
    parentPort.postMessage(k);
  }
  parentPort.postMessage(-1);
}
