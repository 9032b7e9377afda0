// Envoy's pipe addresses (Address.pipe: a Unix domain socket path; `@name` is Linux's abstract
// namespace). Listeners and hosts on a pipe carry the path as their address and port 0: an IP
// address or a DNS name never starts with '/' or '@', so the address itself tells them apart.

export function isPipe(address: string): boolean {
  const c = address.charCodeAt(0);
  return c === 47 /* / */ || c === 64 /* @ */;
}

/** The path node's net module takes: a leading NUL for the abstract namespace. */
export function socketPath(pipe: string): string {
  return pipe.charCodeAt(0) === 64 ? `\0${pipe.slice(1)}` : pipe;
}

/** net.connect / tls.connect options of an address: `path` for a pipe, else host and port. */
export function connectTarget(address: string, port: number): { host: string; port: number } | { path: string } {
  return isPipe(address) ? { path: socketPath(address) } : { host: address, port };
}
