// Transport sockets: Istio mutual TLS with the proxy's own SDS secrets (`default`, `ROOTCA`),
// DestinationRule client TLS (SIMPLE/MUTUAL with files or credentialName), gateway server TLS.
import type { ClientTLSSettings, ServerTLSSettings } from '../../api/index.ts';
import { DOWNSTREAM_TLS_TYPE, UPSTREAM_TLS_TYPE } from '../../envoy/index.ts';
import type { EnvoyJson } from '../../envoy/index.ts';
import { CA_CERT_SUFFIX, ROOT_CA_SECRET, SYSTEM_CA_SECRET, WORKLOAD_SECRET, credentialSecretName } from './names.ts';

export const ADS_SDS = { ads: {}, resource_api_version: 'V3' } as const;

/** ALPN Istio offers when connecting to a sidecar (with the metadata-exchange marker). */
export const ALPN_IN_MESH = ['istio-peer-exchange', 'istio'];
export const ALPN_IN_MESH_H2 = ['istio-peer-exchange', 'istio', 'h2'];
/** ALPN of Istio clients sending HTTP over mesh mTLS (the istio.alpn filter's override, each with `istio`). */
export const ALPN_ISTIO_HTTP = ['istio-http/1.0', 'istio-http/1.1', 'istio-h2'];
/**
 * Every ALPN an Istio client offers over mesh mTLS. A PERMISSIVE inbound chain matches these to
 * tell mesh mTLS from a client's own TLS (which is passed through to the application).
 */
export const ALPN_ISTIO_MTLS = ['istio', 'istio-peer-exchange', ...ALPN_ISTIO_HTTP];
/** ALPN a sidecar's inbound mTLS chain accepts. */
export const ALPN_DOWNSTREAM = ['istio-peer-exchange', 'h2', 'http/1.1'];
const TLS_PARAMS = { tls_minimum_protocol_version: 'TLSv1_2', tls_maximum_protocol_version: 'TLSv1_3' };

function sds(name: string): EnvoyJson {
  return { name, sds_config: ADS_SDS };
}

function tlsSocket(typeUrl: string, ctx: EnvoyJson): EnvoyJson {
  return { name: 'envoy.transport_sockets.tls', typed_config: { '@type': typeUrl, ...ctx } };
}

export const RAW_BUFFER_SOCKET: EnvoyJson = {
  name: 'envoy.transport_sockets.raw_buffer',
  typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer' },
};

function sanMatchers(sans: readonly string[]): EnvoyJson[] {
  return sans.map((s) => ({ san_type: s.startsWith('spiffe://') ? 'URI' : 'DNS', matcher: { exact: s } }));
}

/** Client side of Istio mTLS: the workload cert, the mesh root, the server identities accepted. */
export function istioMutualUpstream(sni: string, sans: readonly string[], h2: boolean): EnvoyJson {
  return tlsSocket(UPSTREAM_TLS_TYPE, {
    common_tls_context: {
      tls_params: TLS_PARAMS,
      alpn_protocols: h2 ? ALPN_IN_MESH_H2 : ALPN_IN_MESH,
      tls_certificate_sds_secret_configs: [sds(WORKLOAD_SECRET)],
      combined_validation_context: {
        default_validation_context: sans.length ? { match_typed_subject_alt_names: sanMatchers(sans) } : {},
        validation_context_sds_secret_config: sds(ROOT_CA_SECRET),
      },
    },
    sni,
  });
}

/** Server side of Istio mTLS on a sidecar's inbound chain: client certificates are required. */
export function istioMutualDownstream(alpn: readonly string[] = ALPN_DOWNSTREAM): EnvoyJson {
  return tlsSocket(DOWNSTREAM_TLS_TYPE, {
    common_tls_context: {
      tls_params: TLS_PARAMS,
      alpn_protocols: alpn,
      tls_certificate_sds_secret_configs: [sds(WORKLOAD_SECRET)],
      combined_validation_context: { default_validation_context: {}, validation_context_sds_secret_config: sds(ROOT_CA_SECRET) },
    },
    require_client_certificate: true,
  });
}

/** DestinationRule tls SIMPLE / MUTUAL (TLS origination), from files or a credentialName. */
export function originationUpstream(tls: ClientTLSSettings, defaultSni: string, h2: boolean): EnvoyJson {
  const common: EnvoyJson = { tls_params: TLS_PARAMS, alpn_protocols: h2 ? ['h2', 'http/1.1'] : ['http/1.1'] };
  const validation: EnvoyJson = {};
  if (tls.subjectAltNames?.length) validation.match_typed_subject_alt_names = sanMatchers(tls.subjectAltNames);
  if (tls.credentialName) {
    if (tls.mode === 'MUTUAL') common.tls_certificate_sds_secret_configs = [sds(credentialSecretName(tls.credentialName))];
    if (!tls.insecureSkipVerify) common.combined_validation_context = { default_validation_context: validation, validation_context_sds_secret_config: sds(credentialSecretName(tls.credentialName + CA_CERT_SUFFIX)) };
  } else {
    // istiod puts caCrl beside the SANs wherever it verifies the server from files or the system
    // CAs (not with credentialName, whose secret carries its own CRL; not with insecureSkipVerify).
    if (tls.caCrl) validation.crl = { filename: tls.caCrl };
    if (tls.mode === 'MUTUAL' && tls.clientCertificate && tls.privateKey) common.tls_certificates = [{ certificate_chain: { filename: tls.clientCertificate }, private_key: { filename: tls.privateKey } }];
    if (tls.insecureSkipVerify) {
      // Istio's opt-out: no verification at all.
    } else if (tls.caCertificates) common.validation_context = { ...validation, trusted_ca: { filename: tls.caCertificates } };
    // Without caCertificates the server is verified against the operating system's CAs, as Istio
    // does since 1.20 (VERIFY_CERTIFICATE_AT_CLIENT); insecureSkipVerify turns that off.
    else common.combined_validation_context = { default_validation_context: validation, validation_context_sds_secret_config: sds(SYSTEM_CA_SECRET) };
  }
  return tlsSocket(UPSTREAM_TLS_TYPE, { common_tls_context: common, sni: tls.sni ?? defaultSni });
}

/** Gateway server TLS (SIMPLE / MUTUAL / ISTIO_MUTUAL), certificates from files or credentialName over SDS. */
export function gatewayDownstream(tls: ServerTLSSettings, alpn: string[]): EnvoyJson {
  const common: EnvoyJson = alpn.length ? { alpn_protocols: alpn } : {};
  const mutual = tls.mode === 'MUTUAL' || tls.mode === 'OPTIONAL_MUTUAL';
  if (tls.mode === 'ISTIO_MUTUAL') {
    common.tls_certificate_sds_secret_configs = [sds(WORKLOAD_SECRET)];
    common.combined_validation_context = { default_validation_context: crlOf(tls), validation_context_sds_secret_config: sds(ROOT_CA_SECRET) };
  } else if (tls.credentialName) {
    common.tls_certificate_sds_secret_configs = [sds(credentialSecretName(tls.credentialName))];
    // caCrl is not read here: istiod leaves a credential's revocation list to the credential (a warning says so).
    const ca = tls.caCertCredentialName ?? tls.credentialName;
    const untrusted = tls.mode === 'OPTIONAL_MUTUAL' && tls.insecureSkipVerify ? { trust_chain_verification: 'ACCEPT_UNTRUSTED' } : {};
    if (mutual) common.combined_validation_context = { default_validation_context: { ...validationOf(tls), ...untrusted }, validation_context_sds_secret_config: sds(credentialSecretName(ca + CA_CERT_SUFFIX)) };
  } else {
    if (tls.serverCertificate && tls.privateKey) common.tls_certificates = [{ certificate_chain: { filename: tls.serverCertificate }, private_key: { filename: tls.privateKey } }];
    if (mutual && tls.caCertificates) common.validation_context = { ...validationOf(tls), ...crlOf(tls), trusted_ca: { filename: tls.caCertificates } };
  }
  const params: EnvoyJson = {};
  if (tls.minProtocolVersion) params.tls_minimum_protocol_version = tls.minProtocolVersion;
  if (tls.maxProtocolVersion) params.tls_maximum_protocol_version = tls.maxProtocolVersion;
  if (tls.cipherSuites?.length) params.cipher_suites = tls.cipherSuites;
  if (Object.keys(params).length) common.tls_params = params;
  const ctx: EnvoyJson = { common_tls_context: common };
  if (tls.mode === 'MUTUAL' || tls.mode === 'ISTIO_MUTUAL') ctx.require_client_certificate = true;
  return tlsSocket(DOWNSTREAM_TLS_TYPE, ctx);
}

/** caCrl as istiod's ApplyToCommonTLSContext puts it for client certificates: the validation context's crl file. */
function crlOf(tls: ServerTLSSettings): EnvoyJson {
  return tls.caCrl ? { crl: { filename: tls.caCrl } } : {};
}

function validationOf(tls: ServerTLSSettings): EnvoyJson {
  const v: EnvoyJson = {};
  if (tls.subjectAltNames?.length) v.match_typed_subject_alt_names = sanMatchers(tls.subjectAltNames);
  if (tls.verifyCertificateSpki?.length) v.verify_certificate_spki = tls.verifyCertificateSpki;
  if (tls.verifyCertificateHash?.length) v.verify_certificate_hash = tls.verifyCertificateHash;
  return v;
}
