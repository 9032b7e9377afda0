// Port allocation for many sidecars on one host: the OS picks a free port (listen on port 0),
// and the allocator remembers what it handed out so that two processes of one `rig up` never
// get the same port even before either has bound it.
import net from 'node:net';
import { RigError } from '../core/errors.ts';

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ port: 0, host, exclusive: true }, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves when nothing listens on host:port can be bound by us; rejects with a clear error otherwise. */
export function checkPortFree(host: string, port: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', (err: NodeJS.ErrnoException) => {
      const msg =
        err.code === 'EADDRINUSE'
          ? `${what}: ${host}:${port} is already in use; stop whatever listens there (\`ss -ltnp 'sport = :${port}'\`) or choose another port`
          : err.code === 'EACCES'
            ? `${what}: no permission to bind ${host}:${port} (ports below 1024 need root); choose a port >= 1024`
            : `${what}: cannot bind ${host}:${port}: ${err.message}`;
      reject(new RigError(err.code === 'EADDRINUSE' ? 'MESH_ERR_PORT_IN_USE' : 'MESH_ERR_PERMISSION', msg));
    });
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve()));
  });
}

export class PortAllocator {
  readonly #host: string;
  readonly #given = new Set<number>();

  constructor(host = '127.0.0.1') {
    this.#host = host;
  }

  async allocate(): Promise<number> {
    for (let i = 0; i < 50; i++) {
      const p = await freePort(this.#host);
      if (!this.#given.has(p)) {
        this.#given.add(p);
        return p;
      }
    }
    throw new RigError('MESH_ERR_UNAVAILABLE', `no free port on ${this.#host} after 50 tries`);
  }

  release(port: number): void {
    this.#given.delete(port);
  }
}
