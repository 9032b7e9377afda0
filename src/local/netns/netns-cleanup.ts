// Removing what a crashed `rig up` (or test) left behind: namespaces by name prefix, their
// /etc/netns directories, the bridges of their networks and orphaned interfaces.
import { readdirSync } from 'node:fs';
import { ipQuiet, listNetns, requireNetnsSupport } from './netns-command.ts';
import { LINK_STEMS, listReservations, releaseSubnet } from './netns-addresses.ts';
import { NETNS_ETC, removeNetns } from './netns-network.ts';

export interface CleanupReport {
  namespaces: string[];
  links: string[];
}

function alive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes leftovers of pod networks whose namespace names start with `<nsPrefix>-`. A network
 * whose creating process still runs is left alone unless `force` (as `rig down --force`).
 */
export async function cleanupNetnsLeftovers(opts: { nsPrefix?: string; force?: boolean } = {}): Promise<CleanupReport> {
  await requireNetnsSupport();
  const nsPrefix = opts.nsPrefix ?? 'rig';
  const report: CleanupReport = { namespaces: [], links: [] };
  const reservations = listReservations();
  const live = reservations.filter((r) => r.nsPrefix === nsPrefix && alive(r.pid) && r.pid !== process.pid);
  if (live.length && !opts.force) return report;

  const want = (name: string) => name.startsWith(`${nsPrefix}-`);
  for (const ns of (await listNetns()).filter(want)) {
    await removeNetns(ns);
    report.namespaces.push(ns);
  }
  let dirs: string[] = [];
  try {
    dirs = readdirSync(NETNS_ETC);
  } catch {
    // no /etc/netns
  }
  for (const d of dirs.filter(want)) await removeNetns(d);

  for (const r of reservations.filter((x) => x.nsPrefix === nsPrefix || (x.nsPrefix === '' && !alive(x.pid)))) {
    if ((await ipQuiet(['link', 'del', r.bridge])).code === 0) report.links.push(r.bridge);
    releaseSubnet(r.index);
  }
  // Interfaces of ours that no reservation accounts for (a crash between the two steps).
  const reserved = new Set(listReservations().map((r) => r.index));
  const links = await ipQuiet(['-o', 'link', 'show']);
  for (const line of links.stdout.split('\n')) {
    const name = /^\d+: ([^:@]+)/.exec(line)?.[1];
    const m = name ? new RegExp(`^(?:${LINK_STEMS.bridge}|${LINK_STEMS.hostVeth})(\\d+)`).exec(name) : null;
    if (name && m && !reserved.has(Number(m[1]))) {
      if ((await ipQuiet(['link', 'del', name])).code === 0) report.links.push(name);
    }
  }
  return report;
}
