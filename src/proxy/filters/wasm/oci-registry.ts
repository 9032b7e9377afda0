// Pulls a Wasm module from an OCI registry (distribution API v2), as Istio's agent does for a
// WasmPlugin's oci:// url: the manifest first (its sha256 is the image's digest, which the
// WasmPlugin's sha256 and the module cache key on), then the module from the image in one of the two
// formats Istio reads: a Docker or OCI image whose last layer is a tar.gz holding plugin.wasm
// ("compat"), or the Wasm OCI artifact, two layers one of which is the module itself
// (application/vnd.module.wasm.content.layer.v1+wasm). Auth: the registry's challenge, Bearer (a
// token from its realm) or Basic, with the credentials a docker config (imagePullSecret) has for the
// registry, else anonymous. Hosts on loopback and private addresses are spoken to in plain HTTP (as
// go-containerregistry does), as is a registry that answers TLS in plain HTTP (as Istio falls back).
import crypto from 'node:crypto';
import { httpGet, isPlainHttpAnswer, type HttpGetResult } from './wasm-fetch-http.ts';
import { pluginFromLayer } from './wasm-fetch-archive.ts';

export interface ImageRef {
  /** Host[:port] as spoken to ("index.docker.io" for Docker Hub). */
  readonly registry: string;
  readonly repository: string;
  readonly tag: string;
  /** sha256 hex from a reference @sha256:…, else ''. */
  readonly digest: string;
}

const DOCKER_HUB = 'index.docker.io';
const MANIFEST_LIMIT = 4 << 20;

const MT = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  wasmLayer: 'application/vnd.module.wasm.content.layer.v1+wasm',
};

/** An image reference as docker reads it: [registry/]repository[:tag][@sha256:digest]. */
export function parseImageRef(ref: string): ImageRef {
  let rest = ref;
  let digest = '';
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!/^sha256:[0-9a-f]{64}$/.test(d)) throw new Error(`${ref}: the digest must be sha256:<64 hex digits>`);
    digest = d.slice('sha256:'.length);
    rest = rest.slice(0, at);
  }
  let tag = 'latest';
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  if (parts.length > 1 && (parts[0]!.includes('.') || parts[0]!.includes(':') || parts[0] === 'localhost')) registry = parts.shift()!;
  if (registry === 'docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  if (!/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(repository)) throw new Error(`${ref}: "${repository}" is not a repository name`);
  if (!/^[\w][\w.-]{0,127}$/.test(tag)) throw new Error(`${ref}: "${tag}" is not a tag`);
  return { registry, repository, tag, digest };
}

/** go-containerregistry's rule: plain HTTP for localhost, loopback and private (RFC 1918) registries. */
function plainHttp(registry: string): boolean {
  const host = registry.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\./.test(host) || /^10\./.test(host) || /^192\.168\./.test(host) || /^172\.(1[6-9]|2\d|3[01])\./.test(host);
}

type Credentials = { readonly basic: string } | { readonly bearer: string };

/** What a docker config (config.json / .dockerconfigjson) has for a registry; undefined when nothing. */
export function credentialsFor(dockerConfig: string, registry: string): Credentials | undefined {
  let cfg: { auths?: Record<string, DockerAuth> } & Record<string, unknown>;
  try {
    cfg = JSON.parse(dockerConfig) as typeof cfg;
  } catch {
    throw new Error('the imagePullSecret is not a docker config (JSON with "auths")');
  }
  const auths = (cfg.auths ?? cfg) as Record<string, DockerAuth>;
  const hub = new Set([DOCKER_HUB, 'docker.io', 'registry-1.docker.io']);
  for (const [key, a] of Object.entries(auths)) {
    const host = key.replace(/^[a-z]+:\/\//, '').split('/')[0]!;
    if (host !== registry && !(hub.has(host) && hub.has(registry))) continue;
    if (a.registrytoken) return { bearer: a.registrytoken };
    if (a.auth) return { basic: a.auth };
    if (a.username !== undefined || a.password !== undefined) return { basic: Buffer.from(`${a.username ?? ''}:${a.password ?? ''}`).toString('base64') };
    if (a.identitytoken) return { basic: Buffer.from(`<token>:${a.identitytoken}`).toString('base64') };
  }
  return undefined;
}

interface DockerAuth {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  platform?: { os?: string; architecture?: string };
}

interface Manifest {
  mediaType?: string;
  manifests?: Descriptor[];
  layers?: Descriptor[];
}

/** One image pull: a session with a registry (its scheme and auth token found once). */
class RegistrySession {
  readonly ref: ImageRef;
  readonly limit: number;
  private readonly credentials: Credentials | undefined;
  private readonly signal: AbortSignal;
  private base: string;
  private authorization: string | undefined;
  constructor(ref: ImageRef, credentials: Credentials | undefined, signal: AbortSignal, limit: number) {
    this.ref = ref;
    this.credentials = credentials;
    this.signal = signal;
    this.limit = limit;
    this.base = `${plainHttp(ref.registry) ? 'http' : 'https'}://${ref.registry}`;
  }

  async get(path: string, what: string, limit: number, accept?: string): Promise<HttpGetResult> {
    const headers = (): Record<string, string> => ({ ...(accept ? { accept } : {}), ...(this.authorization ? { authorization: this.authorization } : {}) });
    let res = await this.send(path, what, limit, headers());
    if (res.status === 401 && !this.authorization) {
      this.authorization = await this.authorize(res.headers.get('www-authenticate') ?? '');
      res = await this.send(path, what, limit, headers());
    }
    if (res.status !== 200) throw new Error(`${this.base}${path} answered ${res.status}${res.status === 401 || res.status === 403 ? ' (the registry refused the pull: set imagePullSecret to a docker config with credentials for ' + this.ref.registry + ')' : ''}${detail(res.body)}`);
    return res;
  }

  private async send(path: string, what: string, limit: number, headers: Record<string, string>): Promise<HttpGetResult> {
    try {
      return await httpGet(this.base + path, { headers, signal: this.signal, limit, what });
    } catch (e) {
      if (!this.base.startsWith('https:') || !isPlainHttpAnswer(e)) throw e;
      this.base = `http://${this.ref.registry}`;
      return httpGet(this.base + path, { headers, signal: this.signal, limit, what });
    }
  }

  /** The Authorization for the registry's challenge (RFC 6750 Bearer through its token realm, or Basic). */
  private async authorize(challenge: string): Promise<string> {
    const scheme = challenge.split(' ', 1)[0]!.toLowerCase();
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!.toLowerCase(), m[2]!]));
    const c = this.credentials;
    if (c && 'bearer' in c) return `Bearer ${c.bearer}`;
    if (scheme === 'basic') {
      if (!c) throw new Error(`${this.ref.registry} asks for credentials (Basic): set imagePullSecret`);
      return `Basic ${c.basic}`;
    }
    if (scheme !== 'bearer' || !params.realm) throw new Error(`${this.ref.registry} answered 401 with a challenge rig proxy does not read: ${JSON.stringify(challenge)}`);
    const u = new URL(params.realm);
    if (params.service) u.searchParams.set('service', params.service);
    u.searchParams.set('scope', params.scope ?? `repository:${this.ref.repository}:pull`);
    const res = await httpGet(u.href, { headers: c ? { authorization: `Basic ${c.basic}` } : {}, signal: this.signal, limit: 1 << 20, what: 'the registry token' });
    if (res.status !== 200) throw new Error(`the token service ${u.origin}${u.pathname} answered ${res.status}${c ? '' : ' to an anonymous pull (set imagePullSecret if the image is private)'}${detail(res.body)}`);
    let token: unknown;
    try {
      const body = JSON.parse(res.body.toString('utf8')) as { token?: unknown; access_token?: unknown };
      token = body.token ?? body.access_token;
    } catch {
      // reported below
    }
    if (typeof token !== 'string' || !token) throw new Error(`the token service ${u.origin}${u.pathname} answered no token`);
    return `Bearer ${token}`;
  }

  /** The image's manifest (an index resolved to its linux/amd64 image, as go-containerregistry does) and its digest. */
  async manifest(): Promise<{ manifest: Manifest; digest: string }> {
    const accept = [MT.ociManifest, MT.dockerManifest, MT.ociIndex, MT.dockerList].join(', ');
    let ref = this.ref.digest ? `sha256:${this.ref.digest}` : this.ref.tag;
    for (let depth = 0; depth < 2; depth++) {
      const path = `/v2/${this.ref.repository}/manifests/${ref}`;
      const res = await this.get(path, 'the image manifest', MANIFEST_LIMIT, accept);
      const digest = crypto.createHash('sha256').update(res.body).digest('hex');
      if (ref.startsWith('sha256:') && digest !== ref.slice('sha256:'.length)) throw new Error(`the manifest ${ref} from ${this.ref.registry} has sha256 ${digest}`);
      let manifest: Manifest;
      try {
        manifest = JSON.parse(res.body.toString('utf8')) as Manifest;
      } catch {
        throw new Error(`the manifest of ${this.ref.repository}:${ref} is not JSON`);
      }
      manifest.mediaType ??= res.headers.get('content-type')?.split(';')[0];
      if (!manifest.manifests) return { manifest, digest };
      const pick = manifest.manifests.find((m) => m.platform?.os === 'linux' && m.platform.architecture === 'amd64') ?? (manifest.manifests.length === 1 ? manifest.manifests[0] : undefined);
      if (!pick) throw new Error(`the image index ${this.ref.repository}:${ref} has no linux/amd64 image`);
      ref = pick.digest;
    }
    throw new Error(`the image index ${this.ref.repository} points to another index`);
  }

  /** A blob, checked against its digest. */
  async blob(d: Descriptor): Promise<Buffer> {
    const res = await this.get(`/v2/${this.ref.repository}/blobs/${d.digest}`, 'the image layer', this.limit);
    const sha = 'sha256:' + crypto.createHash('sha256').update(res.body).digest('hex');
    if (sha !== d.digest) throw new Error(`the layer ${d.digest} of ${this.ref.repository} has digest ${sha}`);
    return res.body;
  }
}

function detail(body: Buffer): string {
  const text = body.toString('utf8', 0, Math.min(body.length, 200)).trim();
  return text ? `: ${text}` : '';
}

export interface PreparedImage {
  /** sha256 hex of the image manifest. */
  readonly digest: string;
  /** Downloads the module (call only when the cache does not have this digest). */
  pull(): Promise<Buffer>;
}

/** Resolves an image's manifest; the module's layers are downloaded by `pull()`. */
export async function prepareImage(reference: string, opts: { pullSecret: string | undefined; signal: AbortSignal; limit: number }): Promise<PreparedImage> {
  const ref = parseImageRef(reference);
  const credentials = opts.pullSecret === undefined ? undefined : credentialsFor(opts.pullSecret, ref.registry);
  const session = new RegistrySession(ref, credentials, opts.signal, opts.limit);
  const { manifest, digest } = await session.manifest();
  return { digest, pull: () => extractModule(session, manifest) };
}

async function extractModule(session: RegistrySession, manifest: Manifest): Promise<Buffer> {
  const layers = manifest.layers ?? [];
  const last = layers.at(-1);
  const what = `${session.ref.registry}/${session.ref.repository}`;
  if (manifest.mediaType === MT.dockerManifest) {
    if (!last || last.mediaType !== MT.dockerLayer) throw new Error(`${what} is a Docker image whose last layer is ${last?.mediaType ?? 'missing'}, not ${MT.dockerLayer} holding plugin.wasm`);
    return pluginFromLayer(await session.blob(last), session.limit);
  }
  if (last?.mediaType === MT.ociLayer) return pluginFromLayer(await session.blob(last), session.limit);
  if (layers.length !== 2) throw new Error(`${what} is not a Wasm image: neither a compat image (last layer ${MT.ociLayer} holding plugin.wasm) nor a Wasm OCI artifact (2 layers, one ${MT.wasmLayer}); it has ${layers.length} layer(s)${last ? `, the last ${last.mediaType}` : ''}`);
  const wasm = layers.find((l) => l.mediaType === MT.wasmLayer);
  if (!wasm) throw new Error(`${what} is not a Wasm image: no layer of type ${MT.wasmLayer} (layers: ${layers.map((l) => l.mediaType).join(', ')})`);
  return session.blob(wasm);
}
