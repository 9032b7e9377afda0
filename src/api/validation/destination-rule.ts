// DestinationRule rules, after Istio's validating webhook.
import { isIP } from 'node:net';
import type { FieldPath } from '../source-map.ts';
import type { ClientTLSSettings, DestinationRuleSpec, TrafficPolicy } from '../types/networking.ts';
import { checkDuration, checkExportTo, checkLabels, checkPercent, checkSelector } from './common.ts';
import type { Reporter } from './reporter.ts';
import { HOST_HINT, hostProblem, isDns1123Label, isDns1123Subdomain, isPort } from './rules.ts';

export function validateDestinationRule(spec: DestinationRuleSpec, r: Reporter): void {
  const hp = hostProblem(spec.host, { allowIP: true });
  if (hp) r.error(['spec', 'host'], hp, HOST_HINT);
  checkExportTo(spec.exportTo, r);
  checkSelector(spec.workloadSelector, ['spec', 'workloadSelector'], r);
  if (spec.workloadSelector) checkSelectedRule(spec, r);
  if (spec.trafficPolicy) checkTrafficPolicy(spec.trafficPolicy, ['spec', 'trafficPolicy'], r, true);
  const names = new Map<string, number>();
  spec.subsets?.forEach((s, i) => {
    const path = ['spec', 'subsets', i];
    if (!isDns1123Label(s.name)) r.error([...path, 'name'], `subset name "${s.name}" is not valid`, 'subset names are DNS labels: lower-case letters, digits and -');
    const first = names.get(s.name);
    if (first !== undefined) r.error([...path, 'name'], `duplicate subset name "${s.name}" (also subsets[${first}])`, 'give every subset its own name');
    else names.set(s.name, i);
    checkLabels(s.labels, [...path, 'labels'], r);
    if (s.trafficPolicy) checkTrafficPolicy(s.trafficPolicy, [...path, 'trafficPolicy'], r, true);
  });
}

/** istiod's rules for a rule with workloadSelector: it stays private to its namespace. */
function checkSelectedRule(spec: DestinationRuleSpec, r: Reporter): void {
  if (!Object.keys(spec.workloadSelector?.matchLabels ?? {}).length) r.warn(['spec', 'workloadSelector'], 'workloadSelector without matchLabels selects every workload of the namespace', 'add matchLabels, or remove workloadSelector for a rule of every client that sees it');
  const ns = r.resource.metadata.namespace;
  const exportTo = new Set(spec.exportTo?.map((e) => (e === '.' ? ns : e)));
  if (!exportTo.size) return;
  if (!exportTo.has(ns)) r.error(['spec', 'exportTo'], 'a DestinationRule with workloadSelector cannot be exported beyond its own namespace', 'remove exportTo (or set it to ["."]): the rule applies to the selected workloads of its namespace only');
  else if (exportTo.size > 1) r.error(['spec', 'exportTo'], 'a DestinationRule with workloadSelector cannot have several exportTo entries', 'remove exportTo (or set it to ["."])');
}

function checkTrafficPolicy(tp: TrafficPolicy, path: FieldPath, r: Reporter, top: boolean): void {
  if (top && Object.keys(tp).length === 0) r.warn(path, 'empty trafficPolicy has no effect', 'remove it or set loadBalancer, connectionPool, outlierDetection or tls');
  const lb = tp.loadBalancer;
  if (lb) {
    if (lb.simple && lb.consistentHash) r.error([...path, 'loadBalancer'], 'simple and consistentHash cannot both be set', 'keep one of them');
    const ch = lb.consistentHash;
    if (ch) {
      const keys = (['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'] as const).filter((k) => ch[k] !== undefined);
      if (keys.length !== 1) r.error([...path, 'loadBalancer', 'consistentHash'], keys.length ? `only one hash key may be set, not ${keys.join(' and ')}` : 'consistentHash needs a hash key: httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName', 'set exactly one hash key');
      if (ch.httpCookie) checkDuration(ch.httpCookie.ttl, [...path, 'loadBalancer', 'consistentHash', 'httpCookie', 'ttl'], r, 0);
    }
    const loc = lb.localityLbSetting;
    if (loc) {
      if (loc.distribute?.length && loc.failover?.length) r.error([...path, 'loadBalancer', 'localityLbSetting'], 'distribute and failover cannot both be set', 'use one of them');
      loc.distribute?.forEach((d, i) => {
        const sum = Object.values(d.to ?? {}).reduce((a, b) => a + b, 0);
        if (sum !== 100) r.error([...path, 'loadBalancer', 'localityLbSetting', 'distribute', i, 'to'], `the weights add up to ${sum}, not 100`, 'make the weights add up to 100');
      });
    }
    if (lb.warmup) checkDuration(lb.warmup.duration, [...path, 'loadBalancer', 'warmup', 'duration'], r);
    checkDuration(lb.warmupDurationSecs, [...path, 'loadBalancer', 'warmupDurationSecs'], r);
  }
  const cp = tp.connectionPool;
  if (cp?.tcp) {
    const tcp = [...path, 'connectionPool', 'tcp'];
    checkDuration(cp.tcp.connectTimeout, [...tcp, 'connectTimeout'], r);
    checkDuration(cp.tcp.maxConnectionDuration, [...tcp, 'maxConnectionDuration'], r);
    checkDuration(cp.tcp.idleTimeout, [...tcp, 'idleTimeout'], r);
    checkDuration(cp.tcp.tcpKeepalive?.time, [...tcp, 'tcpKeepalive', 'time'], r);
    checkDuration(cp.tcp.tcpKeepalive?.interval, [...tcp, 'tcpKeepalive', 'interval'], r);
    if (cp.tcp.maxConnections !== undefined && cp.tcp.maxConnections < 0) r.error([...tcp, 'maxConnections'], 'maxConnections must be >= 0', 'use a positive number');
  }
  if (cp?.http) {
    const http = [...path, 'connectionPool', 'http'];
    checkDuration(cp.http.idleTimeout, [...http, 'idleTimeout'], r);
    for (const k of ['http1MaxPendingRequests', 'http2MaxRequests', 'maxRequestsPerConnection', 'maxRetries', 'maxConcurrentStreams'] as const) {
      const v = cp.http[k];
      if (v !== undefined && v < 0) r.error([...http, k], `${k} must be >= 0`, 'use a positive number');
    }
  }
  const od = tp.outlierDetection;
  if (od) {
    const op = [...path, 'outlierDetection'];
    checkDuration(od.interval, [...op, 'interval'], r);
    checkDuration(od.baseEjectionTime, [...op, 'baseEjectionTime'], r);
    checkPercent(od.maxEjectionPercent, [...op, 'maxEjectionPercent'], r);
    checkPercent(od.minHealthPercent, [...op, 'minHealthPercent'], r);
    for (const k of ['consecutiveErrors', 'consecutive5xxErrors', 'consecutiveGatewayErrors', 'consecutiveLocalOriginFailures'] as const) {
      const v = od[k];
      if (v !== undefined && v < 0) r.error([...op, k], `${k} must be >= 0`, 'use a positive number');
    }
  }
  if (tp.tls) checkClientTls(tp.tls, [...path, 'tls'], r);
  const ports = new Set<number>();
  tp.portLevelSettings?.forEach((pls, i) => {
    const pp = [...path, 'portLevelSettings', i];
    const port = pls.port?.number;
    if (port === undefined) r.error(pp, 'a port-level setting must name its port', 'add port: { number: 9080 }');
    else if (!isPort(port)) r.error([...pp, 'port', 'number'], `port ${port} is out of range`, 'use a port from 1 to 65535');
    else if (ports.has(port)) r.error([...pp, 'port', 'number'], `port ${port} has more than one port-level setting`, 'merge them into one');
    if (port !== undefined) ports.add(port);
    checkTrafficPolicy(pls, pp, r, false);
  });
  if (tp.tunnel) checkTunnel(tp.tunnel, [...path, 'tunnel'], r);
  if (tp.tunnel && tp.proxyProtocol) r.error([...path, 'tunnel'], 'tunnel and proxyProtocol must not be set together', 'remove one of them');
}

/** Istio's validateTunnelSettings: protocol CONNECT or POST, an FQDN or IP target host, a valid port. */
function checkTunnel(t: NonNullable<TrafficPolicy['tunnel']>, path: FieldPath, r: Reporter): void {
  if (t.protocol !== undefined && t.protocol !== '' && t.protocol !== 'CONNECT' && t.protocol !== 'POST') r.error([...path, 'protocol'], `tunnel protocol must be "CONNECT" or "POST" (got "${t.protocol}")`, 'use CONNECT (the default) or POST');
  const host = String(t.targetHost ?? '');
  if (!isIP(host) && !isDns1123Subdomain(host.replace(/\.$/, ''))) r.error([...path, 'targetHost'], `tunnel target host must be a valid FQDN or IP address (got "${host}")`, 'name the host the tunnel proxy connects to, e.g. db.example.com');
  if (!isPort(t.targetPort)) r.error([...path, 'targetPort'], `port ${t.targetPort} is out of range`, 'use a port from 1 to 65535');
}

function checkClientTls(tls: ClientTLSSettings, path: FieldPath, r: Reporter): void {
  const mode = tls.mode ?? 'DISABLE';
  if (mode === 'ISTIO_MUTUAL') {
    const bad = (['clientCertificate', 'privateKey', 'caCertificates', 'credentialName'] as const).filter((k) => tls[k] !== undefined);
    if (bad.length) r.error([...path, bad[0]], `ISTIO_MUTUAL uses the mesh's certificates: ${bad.join(', ')} cannot be set`, 'remove them, or use mode MUTUAL with your own certificates');
  }
  if (mode === 'MUTUAL' && !tls.credentialName && (!tls.clientCertificate || !tls.privateKey)) {
    r.error(path, 'MUTUAL TLS needs clientCertificate and privateKey (or credentialName)', 'add the client certificate and key, or credentialName');
  }
  if (tls.credentialName && (tls.clientCertificate || tls.privateKey || tls.caCertificates)) {
    r.error([...path, 'credentialName'], 'credentialName cannot be combined with file certificates', 'use either credentialName or clientCertificate/privateKey/caCertificates');
  }
}
