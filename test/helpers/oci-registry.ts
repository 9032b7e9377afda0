// A minimal OCI registry (distribution API v2 on node:http) for tests: manifests by tag or digest,
// blobs by digest, behind a Bearer token challenge (tokens from its /token realm; a private
// repository's token needs Basic credentials). Images are built here in the formats Istio's agent
// reads: the Wasm OCI artifact (two layers, one the module), and "compat" images (Docker or OCI
// manifest, one tar.gz layer holding plugin.wasm, packed by the system's tar).
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { listenLocal } from './listen.ts';

const sha = (b: Buffer) => 'sha256:' + crypto.createHash('sha256').update(b).digest('hex');

interface Blob {
  mediaType: string;
  data: Buffer;
}

export interface TestRegistry {
  /** host:port (plain HTTP, as for any loopback registry). */
  readonly host: string;
  /** Requests by path, in order. */
  readonly requests: string[];
  /** Pushes an image; returns the manifest's sha256 hex (the image digest). */
  push(repository: string, tag: string, manifest: object, blobs: Blob[]): string;
  /** Pushes raw manifest bytes (e.g. an index); returns its sha256 hex. */
  pushManifest(repository: string, tag: string, mediaType: string, bytes: Buffer): string;
  /** Repositories whose token needs Basic `user:password`. */
  readonly privateRepos: Map<string, string>;
}

export async function startTestRegistry(t: { after(fn: () => unknown): void }): Promise<TestRegistry> {
  const manifests = new Map<string, { mediaType: string; bytes: Buffer }>();
  const blobs = new Map<string, Buffer>();
  const requests: string[] = [];
  const privateRepos = new Map<string, string>();
  let host = '';
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://${host}`);
    requests.push(url.pathname);
    if (url.pathname === '/token') {
      const repo = /^repository:(.+):pull$/.exec(url.searchParams.get('scope') ?? '')?.[1] ?? '';
      const need = privateRepos.get(repo);
      if (need && req.headers.authorization !== `Basic ${Buffer.from(need).toString('base64')}`) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `token-for:${repo}` }));
      return;
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    if (!m) {
      res.writeHead(404).end();
      return;
    }
    const [, repo, kind, ref] = m as unknown as [string, string, string, string];
    if (req.headers.authorization !== `Bearer token-for:${repo}`) {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${host}/token",service="test-registry",scope="repository:${repo}:pull"` }).end();
      return;
    }
    if (kind === 'manifests') {
      const found = manifests.get(`${repo}:${ref}`) ?? manifests.get(`${repo}@${ref}`);
      if (!found) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}');
      res.writeHead(200, { 'content-type': found.mediaType, 'docker-content-digest': sha(found.bytes) }).end(found.bytes);
      return;
    }
    const blob = blobs.get(ref);
    if (!blob) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(blob);
  });
  const port = await listenLocal(server, t);
  host = `127.0.0.1:${port}`;
  const pushManifest = (repository: string, tag: string, mediaType: string, bytes: Buffer) => {
    const digest = sha(bytes);
    manifests.set(`${repository}:${tag}`, { mediaType, bytes });
    manifests.set(`${repository}@${digest}`, { mediaType, bytes });
    return digest.slice('sha256:'.length);
  };
  return {
    host,
    requests,
    privateRepos,
    pushManifest,
    push(repository, tag, manifest, list) {
      for (const b of list) blobs.set(sha(b.data), b.data);
      const bytes = Buffer.from(JSON.stringify(manifest));
      return pushManifest(repository, tag, (manifest as { mediaType?: string }).mediaType ?? 'application/vnd.oci.image.manifest.v1+json', bytes);
    },
  };
}

const descriptor = (b: Blob) => ({ mediaType: b.mediaType, digest: sha(b.data), size: b.data.length });

/** The Wasm OCI artifact: config application/vnd.module.wasm.config.v1+json, the module layer and a second (runtime config) layer. */
export function wasmArtifact(module: Buffer): { manifest: object; blobs: Blob[] } {
  const config = { mediaType: 'application/vnd.module.wasm.config.v1+json', data: Buffer.from('{}') };
  const wasm = { mediaType: 'application/vnd.module.wasm.content.layer.v1+wasm', data: module };
  const extra = { mediaType: 'application/vnd.module.wasm.runtime.config.v1+json', data: Buffer.from('{"rootIds":["root"]}') };
  return { manifest: { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: descriptor(config), layers: [descriptor(wasm), descriptor(extra)] }, blobs: [config, wasm, extra] };
}

/** A compat image: one tar.gz layer with plugin.wasm (packed by tar), under a Docker v2 or an OCI manifest. */
export function compatImage(module: Buffer, flavour: 'docker' | 'oci'): { manifest: object; blobs: Blob[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rig-oci-layer-'));
  try {
    fs.writeFileSync(path.join(dir, 'plugin.wasm'), module);
    execFileSync('tar', ['-czf', 'layer.tar.gz', 'plugin.wasm'], { cwd: dir });
    const layerData = fs.readFileSync(path.join(dir, 'layer.tar.gz'));
    const docker = flavour === 'docker';
    const config = { mediaType: docker ? 'application/vnd.docker.container.image.v1+json' : 'application/vnd.oci.image.config.v1+json', data: Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}') };
    const layer = { mediaType: docker ? 'application/vnd.docker.image.rootfs.diff.tar.gzip' : 'application/vnd.oci.image.layer.v1.tar+gzip', data: layerData };
    const mediaType = docker ? 'application/vnd.docker.distribution.manifest.v2+json' : 'application/vnd.oci.image.manifest.v1+json';
    return { manifest: { schemaVersion: 2, mediaType, config: descriptor(config), layers: [descriptor(layer)] }, blobs: [config, layer] };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
