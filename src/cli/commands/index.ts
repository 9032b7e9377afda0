// The command table: name, one-line summary and a lazy loader. A command module exports
// `define(cmd)`, which declares its options and action on the given commander Command.
import type { Command } from 'commander';

export interface CommandModule {
  define(cmd: Command): void;
}

export interface CommandEntry {
  name: string;
  summary: string;
  aliases?: string[];
  load(): Promise<CommandModule>;
}

export const COMMANDS: CommandEntry[] = [
  { name: 'controlplane', summary: 'run the control plane: service registry and xDS server (istiod)', load: () => import('./controlplane.ts') },
  { name: 'proxy-status', summary: 'sync status of every proxy connected to the control plane (CDS/LDS/EDS/RDS)', aliases: ['ps'], load: () => import('./proxy-status.ts') },
  { name: 'proxy-config', summary: "a proxy's clusters, listeners, routes, endpoints, secrets, log levels or bootstrap, as istioctl shows them, or whether two share a root CA", aliases: ['pc'], load: () => import('./proxy-config.ts') },
  { name: 'x', summary: 'experimental commands, as istioctl x: describe pod|service', aliases: ['experimental'], load: async () => ({ define: (await import('./describe.ts')).defineExperimental }) },
  { name: 'describe', summary: 'the Istio configuration that applies to a pod or a Service (as istioctl x describe pod|svc)', load: () => import('./describe.ts') },
  { name: 'iptables', summary: 'set up (or remove) transparent traffic capture in this network namespace', load: () => import('./iptables.ts') },
  { name: 'exec', summary: 'run a command inside a workload pod\'s network namespace (rig up --isolation netns)', load: () => import('./exec.ts') },
  { name: 'validate', summary: 'validate Istio and Rigging configuration files (schema and semantic rules)', load: () => import('./validate.ts') },
  { name: 'analyze', summary: 'analyze configuration across resources, like istioctl analyze', load: () => import('./analyze.ts') },
  { name: 'token', summary: 'issue or revoke bootstrap tokens that workloads present to the CA', load: () => import('./token.ts') },
  { name: 'proxy', summary: 'run the data plane proxy (Envoy-compatible): static bootstrap or xDS', load: () => import('./proxy.ts') },
  { name: 'up', summary: 'run a local mesh: control plane, gateways, and every workload with its sidecar', load: () => import('./up.ts') },
  { name: 'demo', summary: 'run the Bookinfo demo mesh with its ingress gateway on 127.0.0.1:8080 and traffic', load: () => import('./demo.ts') },
  { name: 'status', summary: 'show the processes of the local mesh (state, pids, sidecar ports)', load: () => import('./status.ts') },
  { name: 'logs', summary: 'print the logs of a workload, replica, gateway or the control plane of the local mesh', load: () => import('./logs.ts') },
  { name: 'get', summary: 'list the configuration the control plane serves, as kubectl get does (with Gateway API status)', load: () => import('./get.ts') },
  { name: 'apply', summary: 'validate and add or replace configuration in the running local mesh', load: () => import('./apply.ts') },
  { name: 'delete', summary: 'remove configuration applied to the running local mesh', load: () => import('./delete.ts') },
  { name: 'down', summary: 'stop the local mesh started by rig up (from another terminal)', load: () => import('./down.ts') },
  { name: 'version', summary: 'print the client (and control plane) version', load: () => import('./version.ts') },
];
