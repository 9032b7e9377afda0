// node:http2's client calls AsyncResource.prototype.bind in every session.request(), and Node's
// bind gives each function it returns the deprecated `asyncResource` accessor (DEP0172) with a
// getter and a setter that are new closures each time. An accessor whose functions differ from
// every earlier one takes a hidden class of its own, which V8 allocates in the old generation; it
// points to the new closures, whose context also holds the function bound (http2's
// requestOnConnect, bound to the stream). A scavenge keeps whatever the old generation points to,
// so every upstream HTTP/2 stream (the stream, its state, its headers, what its listeners hold) was
// promoted and freed only by a mark-compact: at 1000 requests/s through the proxy, one every ~2 s
// (5-7 ms pause, ~20 ms of marking), the HTTP/2 p99. A larger young generation does not help: the
// retention does not depend on age. Node is moving the property to end-of-life (nodejs/node#58618);
// until then bind is replaced by one that makes no accessor at all: `asyncResource` is a plain
// property, read and written as before but without DEP0172's warning (nothing in the proxy or its
// dependencies reads it). The bound function runs `fn` in the resource's scope with the caller's
// `this` (or `thisArg`) and keeps `fn`'s length, which comes from a wrapper declared with that many
// parameters: defining `length` and an accessor on each bound function cost ~2 µs per HTTP/2
// request (Object.defineProperties takes V8's slow path), this bind ~40 ns (same machine, Node 24).
import { AsyncResource } from 'node:async_hooks';

type Fn = (...args: unknown[]) => unknown;
type Bound = Fn & { asyncResource?: AsyncResource };
type Wrap = (resource: AsyncResource, fn: Fn, thisArg: unknown) => Fn;

/* eslint-disable prefer-rest-params -- declared parameters give a wrapper its length; a rest parameter would not count */
const withCallersThis: Wrap[] = [
  (r, fn) => function (this: unknown) { return r.runInAsyncScope(fn, this, ...arguments); },
  (r, fn) => function (this: unknown, _a: unknown) { return r.runInAsyncScope(fn, this, ...arguments); },
  (r, fn) => function (this: unknown, _a: unknown, _b: unknown) { return r.runInAsyncScope(fn, this, ...arguments); },
  (r, fn) => function (this: unknown, _a: unknown, _b: unknown, _c: unknown) { return r.runInAsyncScope(fn, this, ...arguments); },
];
const withThisArg: Wrap[] = [
  (r, fn, t) => function () { return r.runInAsyncScope(fn, t, ...arguments); },
  (r, fn, t) => function (_a: unknown) { return r.runInAsyncScope(fn, t, ...arguments); },
  (r, fn, t) => function (_a: unknown, _b: unknown) { return r.runInAsyncScope(fn, t, ...arguments); },
  (r, fn, t) => function (_a: unknown, _b: unknown, _c: unknown) { return r.runInAsyncScope(fn, t, ...arguments); },
];
/* eslint-enable prefer-rest-params */

// Node's signature: (fn, thisArg?) (the typings omit thisArg).
function bind(this: AsyncResource, fn: Fn, thisArg?: unknown): Bound {
  if (typeof fn !== 'function') return (nodeBind as (fn: unknown, thisArg: unknown) => Bound).call(this, fn, thisArg);
  const wraps = thisArg === undefined ? withCallersThis : withThisArg;
  const bound: Bound = (wraps[fn.length] ?? wraps[0])(this, fn, thisArg);
  if (bound.length !== fn.length) Object.defineProperty(bound, 'length', { configurable: true, enumerable: false, value: fn.length, writable: false });
  bound.asyncResource = this;
  return bound;
}

const nodeBind = AsyncResource.prototype.bind;

/** Whether this Node's bind still defines the asyncResource accessor on each bound function (its cost, and the promotion above). */
function bindMakesAccessors(): boolean {
  const resource = new AsyncResource('rig.probe', { requireManualDestroy: true });
  const a = Object.getOwnPropertyDescriptor(resource.bind(() => {}), 'asyncResource');
  const b = Object.getOwnPropertyDescriptor(resource.bind(() => {}), 'asyncResource');
  return a?.get !== undefined && a.get !== b?.get;
}

let installed = false;

/** Replaces AsyncResource.prototype.bind for the whole process (once), if this Node still defines the accessor. */
export function lightenAsyncResourceBind(): void {
  if (installed) return;
  installed = true;
  if (bindMakesAccessors()) AsyncResource.prototype.bind = bind as unknown as typeof nodeBind;
}
