// Keeps process.nextTick fast for the life of the process. Node 24 builds each tick as an object
// literal with three computed symbol keys, which V8 defines one at a time, each store checked
// against the map the object had before it. Tick objects live for one turn, so a full GC with none
// alive collects those intermediate maps; the next tick makes new ones, V8 finds the map it
// recorded gone, and marks those stores megamorphic for good. From then on every nextTick
// defines its properties in V8's runtime. An HTTP/2 request through the proxy takes 13 ticks
// (node:http2 and its streams): nextTick cost 75.7k of its 406.9k instructions, ~5,800 a tick;
// with a tick kept, 6.0k, ~460 a tick (npm run bench:instructions -- --case h2-rig-1hop).
// One tick object kept alive keeps its map, and so every map before it, alive.
import { executionAsyncResource } from 'node:async_hooks';

let kept: object | undefined;

/**
 * Keeps one of node's own tick objects: inside a nextTick callback the execution's async
 * resource is the tick object itself. To be called first thing at start-up, before a full GC
 * can find no tick alive.
 */
export function keepTickObjectMaps(): void {
  if (kept !== undefined) return;
  process.nextTick(() => {
    kept = executionAsyncResource();
  });
}
