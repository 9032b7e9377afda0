// GETs one after the other on one keep-alive connection (the next is written when a response
// ends): the load of `npm run bench:instructions`. One request in flight at a time keeps what the
// proxy does per request the same from run to run, however slow it runs (under valgrind, ~50×).
import net from 'node:net';

// The request the round-22 figures in README.md were counted with.
const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 'latin1');

/** Sends n GETs to 127.0.0.1:port; rejects on a response other than 200 or a lost connection. */
export function sequentialGets(port: number, n: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, noDelay: true });
    let buf: Buffer = Buffer.alloc(0);
    let done = 0;
    const fail = (err: Error) => {
      s.destroy();
      reject(err);
    };
    s.once('connect', () => s.write(REQUEST));
    s.on('error', fail);
    s.on('close', () => done < n && fail(new Error(`connection closed after ${done} of ${n} responses`)));
    s.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.toString('latin1', 0, end);
        const len = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        if (!head.startsWith('HTTP/1.1 200 ') || !len) return fail(new Error(`response ${done + 1} of ${n}: ${head.split('\r\n')[0]} (expected 200 with a Content-Length)`));
        const total = end + 4 + Number(len[1]);
        if (buf.length < total) return;
        buf = buf.subarray(total);
        if (++done === n) {
          s.end();
          return resolve();
        }
        s.write(REQUEST);
      }
    });
  });
}
