import { dirname, resolve } from 'node:path';

/**
 * `local.rigging.dev/v1alpha1` `Workload`: a process that `rig up` runs on this machine, the
 * local runtime's stand-in for a Kubernetes Deployment plus its pods.
 *
 * ```yaml
 * apiVersion: local.rigging.dev/v1alpha1
 * kind: Workload
 * metadata: { name: reviews-v1, namespace: default, labels: { app: reviews, version: v1 } }
 * spec:
 *   serviceAccount: bookinfo-reviews   # default: default
 *   replicas: 2                        # >= 1, default 1
 *   command: [node, reviews.ts]        # required, non-empty
 *   args: [--port, "9080"]
 *   env: { LOG_LEVEL: info }
 *   cwd: ./apps                        # relative to the directory of this file
 *   ports: [{ name: http, port: 9080, protocol: TCP }]
 *   readinessProbe: { httpGet: { path: /health, port: http }, periodSeconds: 2 }   # or tcpSocket, grpc, exec
 * ```
 * The workload's labels are `metadata.labels`; Services select workloads by them as in Kubernetes.
 */
export interface WorkloadSpec {
  serviceAccount?: string;
  replicas?: number;
  command: string[];
  args?: string[];
  env?: Record<string, string>;
  cwd?: string;
  ports?: WorkloadPort[];
  readinessProbe?: WorkloadProbe;
}

export interface WorkloadPort {
  name?: string;
  port: number;
  protocol?: string;
}

/**
 * Kubernetes' readiness probe (one of httpGet, tcpSocket, grpc, exec). `rig up` hands it to the
 * replica's sidecar, whose agent runs it and reports the replica's health to the control plane: the
 * replica is an endpoint only while its sidecar is ready and this probe passes (CONTRACTS §3).
 * Ports are the workload's (by number, or by the name of one of `ports`); hosts default to the
 * app's address. Defaults: timeoutSeconds 1, successThreshold 1, failureThreshold 3, and
 * periodSeconds 1 (Kubernetes: 10) so that a local mesh comes up quickly.
 */
export interface WorkloadProbe {
  httpGet?: { path?: string; port: number | string; host?: string; scheme?: 'HTTP' | 'HTTPS'; httpHeaders?: { name: string; value: string }[] };
  tcpSocket?: { port: number | string; host?: string };
  grpc?: { port: number; service?: string };
  /** Run by the sidecar in the workload's directory; `node` is Rigging's Node.js, as for `command`. */
  exec?: { command: string[] };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
}

export const WORKLOAD_API_VERSION = 'local.rigging.dev/v1alpha1';

/**
 * The directory a workload runs in: `spec.cwd` resolved against the directory of the file that
 * defined it (or `baseDir` when it came from no file), defaulting to that directory.
 */
export function workloadCwd(resource: { spec: WorkloadSpec; source?: { file: string } }, baseDir = process.cwd()): string {
  const fileDir = resource.source && resource.source.file !== '<stdin>' ? dirname(resolve(baseDir, resource.source.file)) : resolve(baseDir);
  return resolve(fileDir, resource.spec.cwd ?? '.');
}
