// Resource monitors: each reports a pressure (0 = idle, 1 = at its configured maximum) when the
// overload manager refreshes.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Monitor, type MonitorConfig } from './overload-config.ts';

export interface ResourceMonitor {
  readonly name: string;
  pressure(): number;
  close(): void;
}

/** V8 heap in use over max_heap_size_bytes. */
function heapMonitor(c: MonitorConfig): ResourceMonitor {
  return { name: c.name, pressure: () => process.memoryUsage().heapUsed / c.max, close: () => undefined };
}

/** The longest event-loop delay since the last refresh over max_lag. */
function lagMonitor(c: MonitorConfig): ResourceMonitor {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  return {
    name: c.name,
    pressure() {
      const maxMs = h.count ? h.max / 1e6 : 0;
      h.reset();
      return maxMs / c.max;
    },
    close: () => h.disable(),
  };
}

export function createMonitor(c: MonitorConfig): ResourceMonitor {
  return c.name === Monitor.EventLoopLag ? lagMonitor(c) : heapMonitor(c);
}
