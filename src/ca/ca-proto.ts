// Istio's IstioCertificateService (proto/istioca.proto), loaded once for both sides: the CA's
// gRPC service and the proxy's certificate client.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const PROTO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../proto');

export const CREATE_CERTIFICATE_PATH = '/istio.v1.auth.IstioCertificateService/CreateCertificate';

export interface IstioCertificateRequest {
  csr: string;
  validity_duration: number;
  metadata?: { fields?: Record<string, unknown> } | null;
}

export interface IstioCertificateResponse {
  cert_chain: string[];
}

let definition: grpc.ServiceDefinition | undefined;

/** The service definition of istio.v1.auth.IstioCertificateService. */
export function certificateServiceDefinition(): grpc.ServiceDefinition {
  if (definition) return definition;
  const pkg = protoLoader.loadSync('istioca.proto', { includeDirs: [PROTO_DIR], keepCase: true, longs: Number, defaults: true });
  const loaded = grpc.loadPackageDefinition(pkg) as unknown as {
    istio: { v1: { auth: { IstioCertificateService: grpc.ServiceClientConstructor } } };
  };
  definition = loaded.istio.v1.auth.IstioCertificateService.service;
  return definition;
}

/** A client constructor for the certificate service. */
export function certificateServiceClient(): grpc.ServiceClientConstructor {
  return grpc.makeGenericClientConstructor(certificateServiceDefinition(), 'IstioCertificateService');
}
