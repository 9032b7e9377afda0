// The workload's readiness probe as the agent runs it: Istio's ReadinessProbe (a WorkloadGroup's
// `probe`, ProxyConfig.readinessProbe in Istio's agent config) in its JSON shape. The agent reads
// it from its own node metadata, PROXY_CONFIG.readinessProbe (CONTRACTS §3), which is also what
// tells the control plane the workload is health-checked; so a bootstrap file and the `rig proxy`
// flags carry it the same way. Checked here (the proxy does not read src/api), every problem at once.

export interface ReadinessProbe {
  initialDelaySeconds?: number;
  timeoutSeconds?: number;
  periodSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
  httpGet?: { path?: string; port: number; host?: string; scheme?: string; httpHeaders?: { name?: string; value?: string }[] };
  tcpSocket?: { port: number; host?: string };
  exec?: { command: string[] };
  grpc?: { port: number; service?: string };
}

const TIMING = ['initialDelaySeconds', 'timeoutSeconds', 'periodSeconds', 'successThreshold', 'failureThreshold'] as const;
const METHODS = ['httpGet', 'tcpSocket', 'exec', 'grpc'] as const;
const FIELDS: Record<string, readonly string[]> = {
  '': [...TIMING, ...METHODS],
  httpGet: ['path', 'port', 'host', 'scheme', 'httpHeaders'],
  tcpSocket: ['port', 'host'],
  exec: ['command'],
  grpc: ['port', 'service'],
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isPort = (v: unknown) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535;

function unknownFields(o: Record<string, unknown>, at: string, errors: string[]): void {
  const known = FIELDS[at];
  for (const k of Object.keys(o)) if (!known.includes(k)) errors.push(`${at ? `${at}.` : ''}${k}: unknown field (known: ${known.join(', ')})`);
}

/** The problems of a readiness probe (empty: valid), each naming its field. */
export function readinessProbeErrors(v: unknown): string[] {
  if (!isObject(v)) return ['must be an object with one of httpGet, tcpSocket, exec or grpc'];
  const errors: string[] = [];
  unknownFields(v, '', errors);
  for (const k of TIMING) {
    const n = v[k];
    if (n !== undefined && (!Number.isInteger(n) || (n as number) < 0)) errors.push(`${k}: ${JSON.stringify(n)} is not a whole number of ${k.endsWith('Seconds') ? 'seconds' : 'probes'} (0 or more)`);
  }
  const methods = METHODS.filter((m) => v[m] !== undefined);
  if (methods.length !== 1) errors.push(methods.length ? `only one of ${methods.join(', ')} may be set` : 'needs one of httpGet, tcpSocket, exec or grpc');
  for (const m of methods) {
    const o = v[m];
    if (!isObject(o)) {
      errors.push(`${m}: must be an object`);
      continue;
    }
    unknownFields(o, m, errors);
    if (m === 'exec') {
      const c = o.command;
      if (!Array.isArray(c) || c.length === 0 || !c.every((s) => typeof s === 'string') || c[0] === '') errors.push('exec.command: must be a non-empty list of strings (the program, then its arguments; no shell unless you name one, e.g. [sh, -c, "..."])');
      continue;
    }
    if (!isPort(o.port)) errors.push(`${m}.port: ${JSON.stringify(o.port)} is not a port (1-65535)`);
    for (const s of ['path', 'host', 'scheme', 'service'] as const) if (o[s] !== undefined && typeof o[s] !== 'string') errors.push(`${m}.${s}: must be a string`);
    if (m === 'httpGet') {
      if (typeof o.scheme === 'string' && !['HTTP', 'HTTPS'].includes(o.scheme.toUpperCase())) errors.push(`httpGet.scheme: "${o.scheme}" must be HTTP or HTTPS`);
      if (typeof o.path === 'string' && o.path !== '' && !o.path.startsWith('/')) errors.push(`httpGet.path: "${o.path}" must start with /`);
      const h = o.httpHeaders;
      if (h !== undefined && (!Array.isArray(h) || !h.every((x) => isObject(x) && typeof x.name === 'string' && x.name !== '' && (x.value === undefined || typeof x.value === 'string')))) errors.push('httpGet.httpHeaders: must be a list of { name, value }');
    }
  }
  return errors;
}

export class ReadinessProbeError extends Error {}

/** The probe in node metadata PROXY_CONFIG.readinessProbe (PROXY_CONFIG may be a JSON string), or undefined; throws ReadinessProbeError listing every problem. */
export function readinessProbeOf(metadata: Record<string, unknown>): ReadinessProbe | undefined {
  let pc = metadata.PROXY_CONFIG;
  if (typeof pc === 'string') {
    try {
      pc = JSON.parse(pc);
    } catch {
      throw new ReadinessProbeError('node metadata PROXY_CONFIG is a string that is not JSON');
    }
  }
  if (pc === undefined || pc === null) return undefined;
  if (!isObject(pc)) throw new ReadinessProbeError('node metadata PROXY_CONFIG must be an object (Istio\'s ProxyConfig)');
  const probe = pc.readinessProbe;
  if (probe === undefined || probe === null) return undefined;
  const errors = readinessProbeErrors(probe);
  if (errors.length) throw new ReadinessProbeError(`PROXY_CONFIG.readinessProbe: ${errors.join('; ')}`);
  return probe as unknown as ReadinessProbe;
}
