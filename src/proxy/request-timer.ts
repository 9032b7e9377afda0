// Per-request timers (timeouts, idle timeouts, retry back-off), unref'd: the request's sockets
// keep the event loop alive, not its timers. That matters for cost, not lifetime: node drops the
// list of timers of one duration when its last ref'd timer is cleared and builds it again (and
// re-arms libuv's timer) for the next request, ~4,000 instructions per proxied request at one
// request at a time (callgrind); the lists of unref'd timers are kept.

export function requestTimer<T>(fire: (arg: T) => void, ms: number, arg: T): NodeJS.Timeout {
  return setTimeout(fire, ms, arg).unref();
}
