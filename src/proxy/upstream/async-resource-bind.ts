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
// until then bind is replaced by one whose accessor functions are shared by every bound function.
// What can be observed stays the same: the bound function runs `fn` in the resource's scope with
// the caller's `this` (or `thisArg`), and `asyncResource` reads and writes the resource, with
// Node's deprecation warning.
import { AsyncResource } from 'node:async_hooks';
import { deprecate } from 'node:util';

const kResource = Symbol('rig.asyncResource');
const DEPRECATED = 'The asyncResource property on bound functions is deprecated';

type Bound = ((...args: unknown[]) => unknown) & { [kResource]?: unknown };

const asyncResourceAccessor: PropertyDescriptor = {
  configurable: true,
  enumerable: true,
  get: deprecate(function (this: Bound) {
    return this[kResource];
  }, DEPRECATED, 'DEP0172'),
  set: deprecate(function (this: Bound, value: unknown) {
    this[kResource] = value;
  }, DEPRECATED, 'DEP0172'),
};

type Fn = (...args: unknown[]) => unknown;

/** `fn` run in `resource`'s scope, with the caller's `this`. */
function inScope(resource: AsyncResource, fn: Fn): Bound {
  return function (this: unknown, ...args: unknown[]) {
    return resource.runInAsyncScope(fn, this, ...args);
  };
}

// Node's signature: (fn, thisArg?) (the typings omit thisArg).
function bind(this: AsyncResource, fn: Fn, thisArg?: unknown): Bound {
  if (typeof fn !== 'function') return (nodeBind as (fn: unknown, thisArg: unknown) => Bound).call(this, fn, thisArg);
  const bound: Bound = thisArg === undefined ? inScope(this, fn) : (this.runInAsyncScope as Fn).bind(this, fn, thisArg);
  bound[kResource] = this;
  Object.defineProperties(bound, {
    length: { configurable: true, enumerable: false, value: fn.length, writable: false },
    asyncResource: asyncResourceAccessor,
  });
  return bound;
}

const nodeBind = AsyncResource.prototype.bind;

/** Whether this Node's bind still gives each bound function accessor functions of its own. */
function bindHasOwnAccessors(): boolean {
  const resource = new AsyncResource('rig.probe', { requireManualDestroy: true });
  const a = Object.getOwnPropertyDescriptor(resource.bind(() => {}), 'asyncResource');
  const b = Object.getOwnPropertyDescriptor(resource.bind(() => {}), 'asyncResource');
  return a?.get !== undefined && a.get !== b?.get;
}

let installed = false;

/** Replaces AsyncResource.prototype.bind for the whole process (once), if this Node needs it. */
export function shareAsyncResourceAccessors(): void {
  if (installed) return;
  installed = true;
  if (bindHasOwnAccessors()) AsyncResource.prototype.bind = bind as unknown as typeof nodeBind;
}
