// Port allocation for many sidecars on one host. A port is handed out before its process binds
// it, so it must not be one the OS gives to others meanwhile: the allocator picks ports below the
// OS's ephemeral range (which listen on port 0 and outgoing connections take from; a port probed
// free there was taken by a test server, a proxy's admin port or a connection before the sidecar
// bound it, and the sidecar never listened), checks each is free, and remembers what it handed
// out. Between `rig up`s of the host a reservation file per port does the same.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { RigError } from '../core/errors.ts';

/** A port the OS picks (its ephemeral range), free when this resolves. */
function osChosenPort(host: string): Promise<number> {
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

/** Whether nothing listens on host:port (we can bind it). */
export function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** The OS's ephemeral port range (Linux; elsewhere the IANA default). */
export function ephemeralRange(): { low: number; high: number } {
  try {
    const [low, high] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low > 0 && high >= low) return { low, high };
  } catch {
    // Not Linux.
  }
  return { low: 49152, high: 65535 };
}

// Ports freePort handed out lately in this process, not handed out again while their callers may
// not have bound them yet (the oldest are forgotten first).
const RECENT_PORTS = 2000;
const recentlyGiven = new Set<number>();

/**
 * A free port for a process to bind later. Outside the ephemeral range (below it, at most 12768
 * ports from 10000 up, else above it), so that no OS-chosen port or outgoing connection takes it
 * meanwhile; when the range leaves no room, one the OS picks.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const { low, high } = ephemeralRange();
  const below = { from: Math.max(10000, low - 12768), to: low - 1 };
  const above = { from: high + 1, to: 65535 };
  const span = below.to - below.from >= 1000 ? below : above.to - above.from >= 1000 ? above : undefined;
  if (!span) return osChosenPort(host);
  for (let i = 0; i < 20; i++) {
    const port = span.from + Math.floor(Math.random() * (span.to - span.from + 1));
    if (recentlyGiven.has(port)) continue;
    // Remembered before the probe resolves, so that concurrent callers cannot both get it.
    recentlyGiven.add(port);
    if (await portIsFree(host, port)) {
      if (recentlyGiven.size > RECENT_PORTS) recentlyGiven.delete(recentlyGiven.values().next().value!);
      return port;
    }
    recentlyGiven.delete(port);
  }
  return osChosenPort(host);
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
  /** Default: freePort. */
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
