// Port allocation for many sidecars on one host: the OS picks a free port (listen on port 0),
// and the allocator remembers what it handed out so that two processes of one `rig up` never
// get the same port even before either has bound it. Between `rig up`s of the host a reservation
// file per port does the same: the OS gives a port one probed and released to the next probe, and
// two `rig up`s starting together handed the same port to two sidecars (one never listened).
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
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

/** Where the `rig up`s of this host reserve the ports they handed out: a file `<port>` holding the owner's pid. */
export const PORT_RESERVATIONS_DIR = path.join(os.tmpdir(), 'rig-ports');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface PortAllocatorOptions {
  /** Default: PORT_RESERVATIONS_DIR. */
  reservations?: string;
  /** Default: freePort (the OS picks). */
  probe?: (host: string) => Promise<number>;
}

export class PortAllocator {
  readonly #host: string;
  readonly #given = new Set<number>();
  readonly #dir: string;
  readonly #probe: (host: string) => Promise<number>;
  readonly #onExit = () => {
    for (const p of this.#given) this.#unreserve(p);
  };

  constructor(host = '127.0.0.1', opts: PortAllocatorOptions = {}) {
    this.#host = host;
    this.#dir = opts.reservations ?? PORT_RESERVATIONS_DIR;
    this.#probe = opts.probe ?? freePort;
  }

  async allocate(): Promise<number> {
    for (let i = 0; i < 50; i++) {
      const p = await this.#probe(this.#host);
      if (!this.#given.has(p) && this.#reserve(p)) {
        if (this.#given.size === 0) process.once('exit', this.#onExit);
        this.#given.add(p);
        return p;
      }
    }
    throw new RigError('MESH_ERR_UNAVAILABLE', `no free port on ${this.#host} after 50 tries`);
  }

  release(port: number): void {
    if (!this.#given.delete(port)) return;
    this.#unreserve(port);
    if (this.#given.size === 0) process.off('exit', this.#onExit);
  }

  /** False when a live process holds the reservation; a reservation left by a dead one is taken over. */
  #reserve(port: number, retried = false): boolean {
    const file = path.join(this.#dir, String(port));
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && !retried) {
        this.#makeDir();
        return this.#reserve(port, true);
      }
      if (code !== 'EEXIST') return true; // no place to coordinate (e.g. a read-only tmp): the probe alone decides
    }
    let owner = 0;
    try {
      owner = Number(fs.readFileSync(file, 'utf8'));
    } catch {
      // Released meanwhile.
    }
    if (owner > 0 && alive(owner)) return false;
    if (retried) return false;
    try {
      fs.rmSync(file, { force: true });
    } catch {
      return false; // another user's: leave it
    }
    return this.#reserve(port, true);
  }

  #unreserve(port: number): void {
    const file = path.join(this.#dir, String(port));
    try {
      if (fs.readFileSync(file, 'utf8') === String(process.pid)) fs.rmSync(file, { force: true });
    } catch {
      // Already gone.
    }
  }

  #makeDir(): void {
    try {
      fs.mkdirSync(this.#dir, { recursive: true });
      // Shared by every user's `rig up`, as /tmp is (sticky: each removes only its own files).
      fs.chmodSync(this.#dir, 0o1777);
    } catch {
      // Another user's directory, or a race with another `rig up`: the write decides.
    }
  }
}
