// Which of V8's compilers a proxy uses. V8 has three above its interpreter: Sparkplug (baseline,
// near free), Maglev (a quick optimizing tier, made for pages that must be fast within seconds)
// and TurboFan. A proxy runs the same few hundred functions for days, so Maglev's code is soon
// replaced by TurboFan's, and what it costs stays: each of its compile jobs takes memory from a
// background thread's malloc arena, touches ~1.5 MB of its own machine code in the executable, and
// the rarely-run code (a sampled span, an export every 5 s, GC observers) keeps being compiled
// by it for minutes. Without it such code waits in Sparkplug until TurboFan takes it.
// Benchmark proxies at 1000 requests/s, same runs alternated (a slow machine: ~33 µs of upstream
// CPU per request): one hop RSS 54.6 → 51.9 MB, at saturation 64.0 → 59.7/60.9 MB, max throughput
// and CPU per request unchanged within noise; telemetry on 60.0 → 57.0/57.1 MB.
import v8 from 'node:v8';

/**
 * Turns Maglev off for this process from now on (V8 reads the flag at each tiering decision; as a
 * start-up flag it would also make Node reject its built-in code cache: +4 MB idle). Functions
 * Maglev already compiled keep their code until TurboFan's replaces it.
 */
export function skipMaglev(): void {
  v8.setFlagsFromString('--no-maglev');
}
