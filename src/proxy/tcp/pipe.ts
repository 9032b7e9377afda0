// Bidirectional byte relay between two sockets with half-close (a FIN in one direction is passed
// on while the other direction keeps flowing), an optional idle timeout, and byte counts.
import type net from 'node:net';

export interface PipeResult {
  /** Bytes from a to b and from b to a. */
  aToB: number;
  bToA: number;
  /** Which side ended the relay: 'a', 'b', 'idle' or an error message. */
  reason: string;
}

/** Relays until both sides ended; `result` counts bytes as they flow (read it any time). */
export function pipeSockets(a: net.Socket, b: net.Socket, idleTimeoutMs: number, done: (r: PipeResult) => void): { close(): void; readonly result: PipeResult } {
  const r: PipeResult = { aToB: 0, bToA: 0, reason: '' };
  let finished = false;
  let aEnded = false;
  let bEnded = false;
  let timer: NodeJS.Timeout | undefined;
  const finish = (reason: string) => {
    if (finished) return;
    finished = true;
    r.reason = reason;
    if (timer) clearTimeout(timer);
    a.destroy();
    b.destroy();
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
    if (!b.write(c)) a.pause();
  });
  b.on('data', (c: Buffer) => {
    r.bToA += c.length;
    touch();
    if (!a.write(c)) b.pause();
  });
  a.on('drain', () => b.resume());
  b.on('drain', () => a.resume());
  a.on('end', () => {
    aEnded = true;
    b.end();
    if (bEnded) finish('a');
  });
  b.on('end', () => {
    bEnded = true;
    a.end();
    if (aEnded) finish('b');
  });
  a.on('error', (e) => finish(`downstream: ${e.message}`));
  b.on('error', (e) => finish(`upstream: ${e.message}`));
  a.on('close', () => finish('a'));
  b.on('close', () => finish('b'));
  return { close: () => finish('closed'), result: r };
}
