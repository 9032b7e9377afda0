// SDS secrets by name (Istio's `default` = workload certificate and key, `ROOTCA` = trust bundle),
// applied through ProxyRuntime.apply(SECRET_TYPE) or declared in the bootstrap's static_resources.
// TLS contexts resolve their secrets here when a connection is made, so a rotation takes effect
// for new connections without touching established ones.
import { Reader, type Issues } from '../config/reader.ts';
import { readDataSource } from '../config/data-source.ts';
import { readSanMatchers, type SanMatcher } from './tls-san.ts';
import { readCrls } from './tls-crl.ts';

export interface Secret {
  readonly name: string;
  /** PEM certificate chain and key (tls_certificate). */
  readonly certChain?: string;
  readonly privateKey?: string;
  /** PEM trust bundle (validation_context.trusted_ca). */
  readonly trustedCa?: string;
  /** PEM CRLs of a validation secret (validation_context.crl). */
  readonly crls?: readonly string[];
  /** SAN matchers carried by a validation secret: the TLS contexts using it check them too. */
  readonly sans?: readonly SanMatcher[];
  readonly raw: Record<string, unknown>;
}

/** Reads a DataSource (filename, inline_string, inline_bytes, environment_variable). */
export function compileSecret(raw: Record<string, unknown>, path: string, issues: Issues): Secret {
  const r = new Reader(raw, path, issues);
  const name = r.str('name');
  if (!name) issues.error(r.at('name'), 'a secret needs a name');
  let certChain: string | undefined;
  let privateKey: string | undefined;
  let trustedCa: string | undefined;
  let sans: SanMatcher[] | undefined;
  let crls: string[] | undefined;
  const tc = r.obj('tls_certificate');
  if (tc) {
    certChain = readDataSource(tc.obj('certificate_chain'));
    privateKey = readDataSource(tc.obj('private_key'));
    if (!certChain) issues.error(tc.at('certificate_chain'), 'missing certificate chain');
    if (!privateKey) issues.error(tc.at('private_key'), 'missing private key');
    tc.done();
  }
  const vc = r.obj('validation_context');
  if (vc) {
    trustedCa = readDataSource(vc.obj('trusted_ca'));
    crls = readCrls(vc);
    sans = readSanMatchers(vc);
    vc.done();
  }
  if (!tc && !vc) issues.error(path, 'a secret needs tls_certificate or validation_context');
  r.done();
  return { name, certChain, privateKey, trustedCa, crls, sans, raw };
}

export class SecretStore {
  private readonly secrets = new Map<string, Secret>();
  private generation = 0;

  get(name: string): Secret | undefined {
    return this.secrets.get(name);
  }

  /** Bumped on every change: TLS contexts rebuild their node:tls SecureContext when it moves. */
  get version(): number {
    return this.generation;
  }

  replace(all: ReadonlyMap<string, Secret>, keep: ReadonlySet<string> = new Set()): void {
    for (const k of this.secrets.keys()) if (!all.has(k) && !keep.has(k)) this.secrets.delete(k);
    for (const [k, v] of all) this.secrets.set(k, v);
    this.generation++;
  }

  set(s: Secret): void {
    this.secrets.set(s.name, s);
    this.generation++;
  }

  names(): string[] {
    return [...this.secrets.keys()];
  }

  all(): Secret[] {
    return [...this.secrets.values()];
  }
}
