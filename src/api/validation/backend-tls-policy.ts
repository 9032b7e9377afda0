// BackendTLSPolicy (gateway.networking.k8s.io v1, v1alpha3): the CRD's CEL rules the structural
// schema cannot carry. What depends on other resources (the target Service, the CA ConfigMap) is
// reported in the policy's status when the Gateway API is translated (src/model/gateway-api/).
import type { BackendTLSPolicySpec } from '../types/gateway-api.ts';
import type { Reporter } from './reporter.ts';
import { isDns1123Subdomain } from './rules.ts';

export function validateBackendTLSPolicy(spec: BackendTLSPolicySpec, r: Reporter): void {
  if (!spec.targetRefs.length || spec.targetRefs.length > 16) r.error(['spec', 'targetRefs'], `targetRefs must have 1 to 16 entries, not ${spec.targetRefs.length}`, 'name the Service(s) whose traffic this policy secures');
  const sections = new Map<string, (string | undefined)[]>();
  spec.targetRefs.forEach((t) => {
    const key = `${t.group}/${t.kind}/${t.name}`;
    sections.set(key, [...(sections.get(key) ?? []), t.sectionName]);
  });
  for (const [key, names] of sections) {
    if (names.length < 2) continue;
    const at = ['spec', 'targetRefs', spec.targetRefs.findIndex((t) => `${t.group}/${t.kind}/${t.name}` === key)];
    if (names.includes(undefined) && names.some((n) => n !== undefined)) r.error(at, 'sectionName must be specified when targetRefs includes 2 or more references to the same target', 'give each reference to this target the port name it secures');
    else if (new Set(names).size !== names.length) r.error(at, 'sectionName must be unique when targetRefs includes 2 or more references to the same target', 'name each port once');
  }
  const v = spec.validation;
  const at = ['spec', 'validation'];
  const refs = v.caCertificateRefs ?? [];
  if (refs.length && v.wellKnownCACertificates !== undefined) r.error(at, 'must not contain both CACertificateRefs and WellKnownCACertificates', 'keep caCertificateRefs (your CA) or wellKnownCACertificates: System (the system CAs)');
  if (!refs.length && v.wellKnownCACertificates === undefined) r.error(at, 'must specify either CACertificateRefs or WellKnownCACertificates', 'add caCertificateRefs naming a ConfigMap with ca.crt, or wellKnownCACertificates: System');
  if (refs.length > 8) r.error([...at, 'caCertificateRefs'], `caCertificateRefs may have at most 8 entries, not ${refs.length}`, 'merge the CA certificates into one ConfigMap');
  if (v.wellKnownCACertificates !== undefined && v.wellKnownCACertificates !== 'System') r.error([...at, 'wellKnownCACertificates'], `wellKnownCACertificates must be System, not "${v.wellKnownCACertificates}"`, 'write wellKnownCACertificates: System');
  if (!isDns1123Subdomain(v.hostname)) r.error([...at, 'hostname'], `"${v.hostname}" is not a precise hostname`, 'write the lower-case DNS name the backend serves (no wildcard, no IP address, no port)');
  const sans = v.subjectAltNames ?? [];
  if (sans.length > 5) r.error([...at, 'subjectAltNames'], `subjectAltNames may have at most 5 entries, not ${sans.length}`, 'keep the names the backend certificate carries');
  sans.forEach((s, i) => {
    const p = [...at, 'subjectAltNames', i];
    if (s.type === 'Hostname') {
      if (s.hostname === undefined) r.error(p, 'SubjectAltName element must contain Hostname, if Type is set to Hostname', 'add hostname');
      else if (!isDns1123Subdomain(s.hostname.replace(/^\*\./, 'x.'))) r.error([...p, 'hostname'], `"${s.hostname}" is not a hostname`, 'write a lower-case DNS name, optionally starting with *.');
      if (s.uri !== undefined) r.error([...p, 'uri'], 'SubjectAltName element must not contain URI, if Type is not set to URI', 'remove uri, or set type: URI');
    } else {
      if (s.uri === undefined) r.error(p, 'SubjectAltName element must contain URI, if Type is set to URI', 'add uri, e.g. spiffe://cluster.local/ns/default/sa/backend');
      else if (!/^[^:/?#]+:\/\/[^/?#]*[^?#]*(\?[^#]*)?(#.*)?$/.test(s.uri)) r.error([...p, 'uri'], `"${s.uri}" is not an absolute URI`, 'write scheme://authority/path, e.g. spiffe://cluster.local/ns/default/sa/backend');
      if (s.hostname !== undefined) r.error([...p, 'hostname'], 'SubjectAltName element must not contain Hostname, if Type is not set to Hostname', 'remove hostname, or set type: Hostname');
    }
  });
  for (const key of Object.keys(spec.options ?? {})) r.warn(['spec', 'options', key], `option ${key} is not read by Rigging (nor by istiod) and has no effect`, 'remove it');
}
