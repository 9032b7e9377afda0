// GETs one after the other on one keep-alive connection (the next is written when a response
// ends): the load of `npm run bench:instructions`. One request in flight at a time keeps what the
// proxy does per request the same from run to run, however slow it runs (under valgrind, ~50×).
import net from 'node:net';

// The request the round-22 figures in README.md were counted with.
const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 'latin1');

export interface SequentialClient {
  /** Sends n more GETs; rejects on a response other than 200 or a lost connection. */
  run(n: number): Promise<void>;
  close(): void;
}

/** One keep-alive connection to 127.0.0.1:port, for runs of GETs one after the other. */
export async function sequentialClient(port: number): Promise<SequentialClient> {
  const s = net.connect({ host: '127.0.0.1', port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  let buf: Buffer = Buffer.alloc(0);
  let run: { n: number; done: number; resolve: () => void; reject: (err: Error) => void } | undefined;
  let broken: Error | undefined;
  const fail = (err: Error) => {
    broken ??= err;
    s.destroy();
    run?.reject(err);
    run = undefined;
  };
  s.on('error', fail);
  s.on('close', () => fail(new Error(`connection closed${run ? ` after ${run.done} of ${run.n} responses` : ''}`)));
  s.on('data', (d: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0 || !run) return;
      const head = buf.toString('latin1', 0, end);
      const len = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      if (!head.startsWith('HTTP/1.1 200 ') || !len) return fail(new Error(`response ${run.done + 1} of ${run.n}: ${head.split('\r\n')[0]} (expected 200 with a Content-Length)`));
      const total = end + 4 + Number(len[1]);
      if (buf.length < total) return;
      buf = buf.subarray(total);
      if (++run.done === run.n) {
        const r = run;
        run = undefined;
        r.resolve();
        return;
      }
      s.write(REQUEST);
    }
  });
  return {
    run: (n) =>
      new Promise<void>((resolve, reject) => {
        if (broken) return reject(broken);
        run = { n, done: 0, resolve, reject };
        s.write(REQUEST);
      }),
    close: () => {
      s.removeAllListeners('close');
      s.end();
    },
  };
}

/** n GETs on a connection of their own. */
export async function sequentialGets(port: number, n: number): Promise<void> {
  const c = await sequentialClient(port);
  try {
    await c.run(n);
  } finally {
    c.close();
  }
}
