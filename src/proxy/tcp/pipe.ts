// Bidirectional byte relay between two sockets with half-close (a FIN in one direction is passed
// on while the other direction keeps flowing), an optional idle timeout, and byte counts.
import type net from 'node:net';
import type { ConnectionDataFilter, DataRelay } from '../network/network-filter.ts';

export interface PipeResult {
  /** Bytes from a to b and from b to a. */
  aToB: number;
  bToA: number;
  /** Which side ended the relay: 'a', 'b', 'idle' or an error message. */
  reason: string;
}

const EMPTY = Buffer.alloc(0);
const NO_FILTERS: readonly ConnectionDataFilter[] = [];

/** Passes `chunk` through data filters `from`.. (a to b in chain order, b to a in reverse); what is left to write. */
function filtered(filters: readonly ConnectionDataFilter[], aToB: boolean, from: number, chunk: Buffer, end: boolean): Buffer {
  if (aToB) for (let i = from; i < filters.length && (chunk.length || end); i++) chunk = filters[i].onData(true, chunk, end);
  else for (let i = filters.length - 1 - from; i >= 0 && (chunk.length || end); i--) chunk = filters[i].onData(false, chunk, end);
  return chunk;
}

/**
 * Relays until both sides ended; `result` counts bytes as they flow (read it any time). Data
 * filters (a network Wasm plugin) see the bytes a (the client) sends in chain order, b's in reverse.
 */
export function pipeSockets(a: net.Socket, b: net.Socket, idleTimeoutMs: number, done: (r: PipeResult) => void, filters: readonly ConnectionDataFilter[] = NO_FILTERS): { close(): void; readonly result: PipeResult } {
  const r: PipeResult = { aToB: 0, bToA: 0, reason: '' };
  let finished = false;
  let aEnded = false;
  let bEnded = false;
  /** The side whose FIN came first. */
  let firstEnd = '';
  let timer: NodeJS.Timeout | undefined;
  const finish = (reason: string) => {
    if (finished) return;
    finished = true;
    r.reason = reason;
    if (timer) clearTimeout(timer);
    a.destroy();
    b.destroy();
    if (filters.length) {
      // The side whose FIN came first closed the connection, else the one that broke or closed it.
      const downstreamFirst = firstEnd ? firstEnd === 'a' : reason === 'a' || reason.startsWith('downstream');
      for (const f of filters) f.closed(downstreamFirst, reason !== 'idle' && reason !== 'closed');
    }
    done(r);
  };
  const touch = () => {
    if (!idleTimeoutMs) return;
    if (timer) timer.refresh();
    else timer = setTimeout(() => finish('idle'), idleTimeoutMs);
  };
  touch();
  a.on('data', (c: Buffer) => {
    r.aToB += c.length;
    touch();
    if (filters.length) c = filtered(filters, true, 0, c, false);
    if (c.length && !b.write(c)) a.pause();
  });
  b.on('data', (c: Buffer) => {
    r.bToA += c.length;
    touch();
    if (filters.length) c = filtered(filters, false, 0, c, false);
    if (c.length && !a.write(c)) b.pause();
  });
  a.on('drain', () => b.resume());
  b.on('drain', () => a.resume());
  a.on('end', () => {
    aEnded = true;
    firstEnd ||= 'a';
    if (filters.length) b.write(filtered(filters, true, 0, EMPTY, true));
    b.end();
    if (bEnded) finish('a');
  });
  b.on('end', () => {
    bEnded = true;
    firstEnd ||= 'b';
    if (filters.length) a.write(filtered(filters, false, 0, EMPTY, true));
    a.end();
    if (aEnded) finish('b');
  });
  a.on('error', (e) => finish(`downstream: ${e.message}`));
  b.on('error', (e) => finish(`upstream: ${e.message}`));
  a.on('close', () => finish('a'));
  b.on('close', () => finish('b'));
  filters.forEach((f, i) => f.relayStarted(relayOf(filters, i, a, b)));
  return { close: () => finish('closed'), result: r };
}

/** What data filter `i` may do on the relay: send what it held through the filters after it, close a side. */
function relayOf(filters: readonly ConnectionDataFilter[], i: number, a: net.Socket, b: net.Socket): DataRelay {
  return {
    forward(fromDownstream, data) {
      const out = filtered(filters, fromDownstream, i + 1, data, false);
      if (out.length) (fromDownstream ? b : a).write(out);
    },
    close(downstream) {
      (downstream ? a : b).end();
    },
  };
}
