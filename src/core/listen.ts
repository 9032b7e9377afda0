import type { AddressInfo, Server } from 'node:net';

/** Binds `server` to host:port (0 = any free port) and resolves with the bound port; rejects on a bind error. */
export function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
