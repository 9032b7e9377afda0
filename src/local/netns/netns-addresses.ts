// Pod addresses come from one dedicated range, 198.18.0.0/15 (RFC 2544: reserved for network
// testing, never routed on the internet). Each pod network takes a /24 of it, reserved by an
// exclusively created file under /run (tmpfs: reservations vanish with the namespaces on reboot),
// so concurrent `rig up`s and tests on one machine get distinct subnets and interface names.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const POD_RANGE = '198.18.0.0/15';
export const SUBNET_COUNT = 512;
export const RESERVATION_DIR = '/run/rig-netns';

/** Interface names are per network index, with fixed stems that cleanup recognises. */
export const LINK_STEMS = { bridge: 'rigb', hostVeth: 'rigv' } as const;

export interface Reservation {
  index: number;
  /** Prefix of the namespace names of this network's pods (`<nsPrefix>-<workload>-<n>`). */
  nsPrefix: string;
  bridge: string;
  pid: number;
}

export function subnetBase(index: number): string {
  return `198.${18 + (index >> 8)}.${index & 255}`;
}

export function bridgeName(index: number): string {
  return `${LINK_STEMS.bridge}${index}`;
}

export function hostVethName(index: number, pod: number): string {
  return `${LINK_STEMS.hostVeth}${index}p${pod}`;
}

/** Reserves the first free /24; throws when all are taken. */
export function reserveSubnet(nsPrefix: string): Reservation {
  mkdirSync(RESERVATION_DIR, { recursive: true, mode: 0o755 });
  for (let index = 0; index < SUBNET_COUNT; index++) {
    const r: Reservation = { index, nsPrefix, bridge: bridgeName(index), pid: process.pid };
    try {
      writeFileSync(reservationPath(index), JSON.stringify(r) + '\n', { flag: 'wx' });
      return r;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  throw new Error(`all ${SUBNET_COUNT} pod subnets of ${POD_RANGE} are reserved (${RESERVATION_DIR}); run \`rig down --force\` to remove leftovers`);
}

export function releaseSubnet(index: number): void {
  rmSync(reservationPath(index), { force: true });
}

export function listReservations(): Reservation[] {
  let names: string[];
  try {
    names = readdirSync(RESERVATION_DIR);
  } catch {
    return [];
  }
  const out: Reservation[] = [];
  for (const n of names) {
    if (!/^\d+\.json$/.test(n)) continue;
    try {
      out.push(JSON.parse(readFileSync(path.join(RESERVATION_DIR, n), 'utf8')) as Reservation);
    } catch {
      // Half-written by a crashed process: the index in the name is enough to clean it up.
      const index = Number(n.split('.')[0]);
      out.push({ index, nsPrefix: '', bridge: bridgeName(index), pid: 0 });
    }
  }
  return out;
}

function reservationPath(index: number): string {
  return path.join(RESERVATION_DIR, `${index}.json`);
}
