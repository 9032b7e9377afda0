// Per-request timeouts of a configured duration (stream idle timeout, route timeout), armed for
// nearly every request and nearly always cancelled. One node timer per duration serves all the
// requests armed with it: the deadlines of one duration expire in the order they were armed (or
// last refreshed), so they are kept in a FIFO list whose node timer waits for its head only.
// Arming, refreshing and cancelling are a clock read and a few links. Per proxied GET (callgrind,
// two timers, three refreshes, two cancels): ~1,500 instructions, where node's setTimeout (Timeout
// object, async id, list insert), refresh and clearTimeout cost ~4,200.
// The node timers are unref'd, as requestTimer's are; a list whose node timer finds it empty is
// dropped (durations from request headers come and go).
// The module's performance, not the global: globalThis.performance is an accessor, ~170 instructions a read (callgrind).
import { performance } from 'node:perf_hooks';

const lists = new Map<number, DeadlineList>();
/** node's longest timer (TIMEOUT_MAX; longer fires after 1 ms): a longer deadline re-arms. */
const MAX_DELAY_MS = 2 ** 31 - 1;

class DeadlineList {
  readonly ms: number;
  head: RequestDeadline | undefined = undefined;
  tail: RequestDeadline | undefined = undefined;
  /** Armed for the head's deadline (or earlier: it then re-arms); undefined while none is pending. */
  timer: NodeJS.Timeout | undefined = undefined;

  constructor(ms: number) {
    this.ms = ms;
  }

  append(d: RequestDeadline): void {
    d.at = performance.now() + this.ms;
    d.prev = this.tail;
    d.next = undefined;
    if (this.tail) this.tail.next = d;
    else this.head = d;
    this.tail = d;
    this.timer ??= setTimeout(onListTimer, Math.min(this.ms, MAX_DELAY_MS), this).unref();
  }

  remove(d: RequestDeadline): void {
    if (d.prev) d.prev.next = d.next;
    else this.head = d.next;
    if (d.next) d.next.prev = d.prev;
    else this.tail = d.prev;
    d.prev = d.next = undefined;
  }

  /** The node timer fired: the deadlines past are due. `timer` is kept till the end, so that a deadline armed by a callback arms none. */
  expire(): void {
    const now = performance.now();
    for (let d = this.head; d && d.at <= now; d = this.head) {
      this.remove(d);
      d.list = undefined;
      d.fire(d.arg);
    }
    const head = this.head;
    this.timer = head ? setTimeout(onListTimer, Math.min(Math.max(head.at - performance.now(), 1), MAX_DELAY_MS), this).unref() : undefined;
    if (!head) lists.delete(this.ms);
  }
}

function onListTimer(l: DeadlineList): void {
  l.expire();
}

/**
 * `fire(arg)` once `ms` have passed since it was armed or last refreshed, unless cancelled first;
 * node's setTimeout(fire, ms, arg), unref'd, for timeouts that are nearly always cancelled.
 */
export function requestDeadline<T>(fire: (arg: T) => void, ms: number, arg: T): RequestDeadline {
  return new RequestDeadline(fire as (arg: unknown) => void, ms, arg);
}

/** Once fired or cancelled it stays inert: refresh and cancel do nothing. */
export class RequestDeadline {
  readonly fire: (arg: unknown) => void;
  readonly arg: unknown;
  list: DeadlineList | undefined;
  at = 0;
  prev: RequestDeadline | undefined = undefined;
  next: RequestDeadline | undefined = undefined;

  constructor(fire: (arg: unknown) => void, ms: number, arg: unknown) {
    this.fire = fire;
    this.arg = arg;
    let l = lists.get(ms);
    if (!l) lists.set(ms, (l = new DeadlineList(ms)));
    this.list = l;
    l.append(this);
  }

  /** Restarts the full duration from now (activity on an idle timeout). */
  refresh(): void {
    const l = this.list;
    if (!l) return;
    if (l.tail === this) {
      this.at = performance.now() + l.ms;
    } else {
      l.remove(this);
      l.append(this);
    }
  }

  cancel(): void {
    const l = this.list;
    if (!l) return;
    l.remove(this);
    this.list = undefined;
  }
}
