// Pods as network namespaces on a machine-local bridge, like Kubernetes pods on a node:
// one namespace per workload replica, a veth to the bridge, loopback up, a resolv.conf that
// points at the pod's sidecar (through DNS capture), and Istio's capture rules inside.
// Nothing leaves the machine: a pod has a default route through the bridge (a route must exist
// so that connections to service VIPs reach the OUTPUT chain and get captured), but a filter
// rule inside the pod rejects every packet that would leave eth0 for anything but the pod
// subnet, so the host never receives a packet to forward. No NAT, no forwarding, nothing
// changed in the host's iptables.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { RigError } from '../../core/errors.ts';
import { silentLogger, type Logger } from '../../core/log.ts';
import { applyRules, detectBackend, DEFAULT_CONFIG, type IptablesConfig } from '../../iptables/index.ts';
import { execInNetns, ip, ipQuiet, listNetns, requireNetnsSupport, spawnInNetns, type InNetnsOptions } from './netns-command.ts';
import { bridgeName, hostVethName, releaseSubnet, reserveSubnet, subnetBase, type Reservation } from './netns-addresses.ts';
import type { ChildProcess } from 'node:child_process';
import type { RunResult } from '../../iptables/iptables-backend.ts';

export const PROXY_UID = 1337;
export const NETNS_ETC = '/etc/netns';
/** Pods take host numbers 2..254 of their /24 (.1 is the bridge). */
const LAST_HOST = 254;

export interface Pod {
  /** The network namespace's name: `<nsPrefix>-<workload>-<replica>`. */
  netns: string;
  workload: string;
  replica: number;
  /** The pod's IPv4 address on the bridge. */
  address: string;
  /** The namespace's resolv.conf (bind-mounted over /etc/resolv.conf by `ip netns exec`). */
  resolvConf: string;
}

export interface CreatePodOptions {
  /** Replica number (default: the next free one for this workload). */
  replica?: number;
  /** Capture rules (Istio's init). Default: all inbound and outbound TCP and DNS, proxy UID 1337,
   *  Istio's excluded inbound ports 15090, 15021, 15020. `false`: no capture. */
  iptables?: Partial<IptablesConfig> | false;
  /** DNS search domains (Kubernetes: `<ns>.svc.cluster.local svc.cluster.local cluster.local`). */
  namespace?: string;
  searchDomains?: string[];
}

export interface PodNetwork {
  /** The bridge (host side) and its address: the pods' gateway, reachable from every pod. */
  readonly bridge: string;
  readonly gateway: string;
  readonly subnet: string;
  readonly pods: readonly Pod[];
  createPod(workload: string, opts?: CreatePodOptions): Promise<Pod>;
  /** Starts a process in a pod (as `uid`/`gid` when given: the sidecar runs as PROXY_UID). */
  spawnInPod(pod: Pod, cmd: string, args: string[], opts?: InNetnsOptions): ChildProcess;
  execInPod(pod: Pod, cmd: string, args: string[], opts?: InNetnsOptions & { input?: string }): Promise<RunResult>;
  /** Removes one pod (kills what still runs in it). */
  deletePod(pod: Pod): Promise<void>;
  /** Removes every pod, the bridge and the reservation; never throws. */
  destroy(): Promise<void>;
}

const NAME_RE = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

export interface PodNetworkOptions {
  /** Prefix of the namespace names (default `rig`); tests use their own. */
  nsPrefix?: string;
  logger?: Logger;
}

export async function createPodNetwork(opts: PodNetworkOptions = {}): Promise<PodNetwork> {
  await requireNetnsSupport();
  const nsPrefix = opts.nsPrefix ?? 'rig';
  if (!NAME_RE.test(nsPrefix)) throw new RigError('MESH_ERR_USAGE', `namespace prefix "${nsPrefix}" must be lowercase letters, digits and '-'`);
  const log = opts.logger ?? silentLogger;
  const res = reserveSubnet(nsPrefix);
  const base = subnetBase(res.index);
  const gateway = `${base}.1`;
  const bridge = bridgeName(res.index);
  try {
    // nf_call_iptables 0: bridged pod-to-pod frames never traverse the host's iptables
    // (a host with br_netfilter and a FORWARD DROP policy, e.g. Docker's, would drop them).
    await ip(['link', 'add', bridge, 'type', 'bridge', 'nf_call_iptables', '0', 'nf_call_ip6tables', '0']);
    await ip(['addr', 'add', `${gateway}/24`, 'dev', bridge]);
    await ip(['link', 'set', bridge, 'up']);
  } catch (err) {
    await ipQuiet(['link', 'del', bridge]);
    releaseSubnet(res.index);
    throw err;
  }
  log.info({ bridge, subnet: `${base}.0/24` }, 'pod network created');
  return new Network(res, gateway, nsPrefix, log);
}

class Network implements PodNetwork {
  readonly bridge: string;
  readonly gateway: string;
  readonly subnet: string;
  readonly pods: Pod[] = [];
  readonly #res: Reservation;
  readonly #nsPrefix: string;
  readonly #log: Logger;
  /** Host veth of each pod, by namespace (its name derives from the pod's address). */
  readonly #veths = new Map<string, string>();
  #destroyed = false;

  constructor(res: Reservation, gateway: string, nsPrefix: string, log: Logger) {
    this.#res = res;
    this.bridge = res.bridge;
    this.gateway = gateway;
    this.subnet = `${subnetBase(res.index)}.0/24`;
    this.#nsPrefix = nsPrefix;
    this.#log = log;
  }

  async createPod(workload: string, opts: CreatePodOptions = {}): Promise<Pod> {
    if (this.#destroyed) throw new RigError('MESH_ERR_INTERNAL', 'createPod on a destroyed pod network');
    if (!NAME_RE.test(workload)) throw new RigError('MESH_ERR_USAGE', `workload name "${workload}" must be lowercase letters, digits and '-' (a DNS label)`);
    // Everything up to the push is synchronous, so concurrent createPod calls get distinct
    // replicas, addresses and interface names.
    const replica = opts.replica ?? nextReplica(this.pods, workload);
    const netns = `${this.#nsPrefix}-${workload}-${replica}`;
    if (this.pods.some((p) => p.netns === netns)) throw new RigError('MESH_ERR_USAGE', `pod ${netns} already exists`);
    const host = freeHost(this.pods);
    if (host === undefined) throw new RigError('MESH_ERR_UNAVAILABLE', `pod network ${this.subnet} is full (${LAST_HOST - 1} pods)`);
    const address = `${subnetBase(this.#res.index)}.${host}`;
    const hostVeth = hostVethName(this.#res.index, host);
    const tmpPeer = `${hostVeth}c`;
    const resolvConf = `${NETNS_ETC}/${netns}/resolv.conf`;
    const pod: Pod = { netns, workload, replica, address, resolvConf };
    this.pods.push(pod);
    this.#veths.set(netns, hostVeth);
    if ((await listNetns()).includes(netns)) {
      this.#veths.delete(netns);
      this.pods.splice(this.pods.indexOf(pod), 1); // not ours: leave it alone
      throw new RigError('MESH_ERR_UNAVAILABLE', `network namespace ${netns} already exists (left by an earlier run, or another rig up with the same prefix): run \`rig down --force\` to remove leftovers`);
    }
    try {
      mkdirSync(`${NETNS_ETC}/${netns}`, { recursive: true });
      writeFileSync(resolvConf, this.#resolvConf(opts));
      await ip(['netns', 'add', netns]);
      await ip(['link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', tmpPeer]);
      await ip(['link', 'set', tmpPeer, 'netns', netns]);
      await ip(['link', 'set', hostVeth, 'master', this.bridge, 'up']);
      await ip(
        ['-n', netns, '-batch', '-'],
        [
          'link set lo up',
          `link set ${tmpPeer} name eth0`,
          `addr add ${address}/24 dev eth0`,
          'link set eth0 up',
          `route add default via ${this.gateway} dev eth0`,
        ].join('\n') + '\n',
      );
      const be = await detectBackend(netns);
      // Matched on the destination after NAT (captured connections now go to 127.0.0.1): an
      // interface match would see the route chosen before the capture rules rewrote it.
      await be.restore(4, `*filter\n-A OUTPUT ! -d ${this.subnet} -m addrtype ! --dst-type LOCAL -j REJECT --reject-with icmp-net-unreachable\nCOMMIT\n`);
      if (opts.iptables !== false) {
        const cfg: IptablesConfig = { ...DEFAULT_CONFIG, excludeInboundPorts: [15090, 15021, 15020], redirectDns: true, captureAllDns: true, ...opts.iptables };
        await applyRules(be, cfg);
      }
    } catch (err) {
      await this.deletePod(pod);
      throw err;
    }
    this.#log.info({ netns, address }, 'pod created');
    return pod;
  }

  // The nameserver is the bridge address: queries leave through eth0 and are captured to the
  // sidecar's DNS port (Istio's rules capture TCP DNS only off loopback). Without a sidecar the
  // query reaches the host, which is on this machine too.
  #resolvConf(opts: CreatePodOptions): string {
    const ns = opts.namespace ?? 'default';
    const search = opts.searchDomains ?? [`${ns}.svc.cluster.local`, 'svc.cluster.local', 'cluster.local'];
    return `# written by rig for this pod\nnameserver ${this.gateway}\nsearch ${search.join(' ')}\noptions ndots:5\n`;
  }

  spawnInPod(pod: Pod, cmd: string, args: string[], opts: InNetnsOptions = {}): ChildProcess {
    return spawnInNetns(pod.netns, cmd, args, opts);
  }

  execInPod(pod: Pod, cmd: string, args: string[], opts: InNetnsOptions & { input?: string } = {}): Promise<RunResult> {
    return execInNetns(pod.netns, cmd, args, opts);
  }

  async deletePod(pod: Pod): Promise<void> {
    await removeNetns(pod.netns);
    // Gone with the namespace, unless the pod was half made (the peer never moved into it).
    const veth = this.#veths.get(pod.netns);
    if (veth) await ipQuiet(['link', 'del', veth]);
    this.#veths.delete(pod.netns);
    const i = this.pods.indexOf(pod);
    if (i >= 0) this.pods.splice(i, 1);
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const pod of [...this.pods]) await this.deletePod(pod);
    await ipQuiet(['link', 'del', this.bridge]);
    releaseSubnet(this.#res.index);
    this.#log.info({ bridge: this.bridge }, 'pod network removed');
  }
}

/** The lowest free host number of the /24. */
function freeHost(pods: readonly Pod[]): number | undefined {
  const taken = new Set(pods.map((p) => Number(p.address.split('.')[3])));
  for (let h = 2; h <= LAST_HOST; h++) if (!taken.has(h)) return h;
  return undefined;
}

function nextReplica(pods: readonly Pod[], workload: string): number {
  const taken = new Set(pods.filter((p) => p.workload === workload).map((p) => p.replica));
  let n = 0;
  while (taken.has(n)) n++;
  return n;
}

/** Kills what runs in the namespace, deletes it (and with it its veth) and its /etc/netns dir. */
export async function removeNetns(netns: string): Promise<void> {
  const pids = await ipQuiet(['netns', 'pids', netns]);
  for (const pid of pids.stdout.split('\n').map(Number).filter((n) => n > 0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await ipQuiet(['netns', 'del', netns]);
  rmSync(`${NETNS_ETC}/${netns}`, { recursive: true, force: true });
}
