// A test server listening on 127.0.0.1 at a port the OS picks (never a fixed port: many people run
// tests on one machine at once).
import { once } from 'node:events';
import net from 'node:net';

/** Starts `server` listening and returns its port; with `t`, closes it (and waits) when the test ends. */
export async function listenLocal(server: net.Server, t?: { after(fn: () => unknown): void }): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  if (t) t.after(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as net.AddressInfo).port;
}

/** A TCP echo server (a half-close answered with its own end); its port. Closed when the test ends. */
export function startTcpEcho(t: { after(fn: () => unknown): void }): Promise<number> {
  const echo = net.createServer((s) => {
    s.on('error', () => undefined);
    s.on('data', (d) => s.write(d));
    s.on('end', () => s.end());
  });
  return listenLocal(echo, t);
}
