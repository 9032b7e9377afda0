// Envoy's local replies: plain text bodies, or for gRPC requests a trailers-only response
// (HTTP 200, grpc-status mapped from the HTTP status, grpc-message).

/** Envoy's HTTP → gRPC status mapping for local replies. */
export function grpcStatusFor(http: number): number {
  switch (http) {
    case 400:
      return 13;
    case 401:
      return 16;
    case 403:
      return 7;
    case 404:
      return 12;
    case 429:
    case 502:
    case 503:
    case 504:
      return 14;
    default:
      return 2;
  }
}

export function isGrpcContentType(ct: string | string[] | undefined): boolean {
  return typeof ct === 'string' && ct.startsWith('application/grpc');
}
