// `rig get TYPE [NAME]`: the configuration the control plane serves, as `kubectl get` lists it
// (the running `rig up`'s, or --controlplane's): kubectl's columns per kind, -n / -A, -o yaml|json,
// and on Gateway API resources the status Istio would write (a Gateway's PROGRAMMED and ADDRESS).
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { groupOf, KIND_INFO, resolveResourceName, writtenKind, type Kind } from '../../api/index.ts';
import { RigError } from '../../core/errors.ts';
import type { ConfigzEntry as Entry } from '../../xds/debug/resource-table.ts';
import { addControlPlaneOptions, controlPlaneUrl } from './controlplane-option.ts';

interface GetFlags {
  controlplane?: string;
  stateDir: string;
  namespace: string;
  allNamespaces?: boolean;
  output: string;
}

export function define(cmd: Command): void {
  addControlPlaneOptions(cmd)
    .argument('<type>', 'a kind, its plural or short name, optionally with its group: virtualservices, vs, gateways.gateway.networking.k8s.io, gtw, httproutes…')
    .argument('[name]', 'only this resource')
    .option('-n, --namespace <ns>', 'the namespace', 'default')
    .option('-A, --all-namespaces', 'every namespace')
    .option('-o, --output <format>', 'table, yaml or json', 'table')
    .action(async (type: string, name: string | undefined, o: GetFlags) => {
      const kinds = type.split(',').flatMap((t) => {
        const found = kindsNamed(t);
        if (!found.length) throw new RigError('MESH_ERR_USAGE', `the server doesn't have a resource type "${t}" (e.g. virtualservices, destinationrules, gateways, gateways.gateway.networking.k8s.io, httproutes, services, workloads)`);
        return found;
      });
      if (!['table', 'yaml', 'json'].includes(o.output)) throw new RigError('MESH_ERR_USAGE', `unknown output format "${o.output}" (table, yaml or json)`);
      const { getJson } = await import('../../xds/debug/controlplane-client.ts');
      const { BUILT_IN_GATEWAY_CLASS } = await import('../../model/gateway-api/resource-status.ts');
      const { resourceTable } = await import('../../xds/debug/resource-table.ts');
      const all = (await getJson(controlPlaneUrl(o), 'debug/configz')) as Entry[];
      const listed: { kind: Kind; rows: Entry[] }[] = kinds.map((kind) => {
        const info = KIND_INFO[kind];
        let rows = all.filter((r) => r.kind === writtenKind(kind) && groupOf(r.apiVersion) === info.group);
        if (kind === 'GatewayClass' && !rows.some((r) => r.metadata.name === BUILT_IN_GATEWAY_CLASS.metadata.name)) rows.push(BUILT_IN_GATEWAY_CLASS);
        if (info.namespaced && !o.allNamespaces) rows = rows.filter((r) => (r.metadata.namespace ?? 'default') === o.namespace);
        if (name) rows = rows.filter((r) => r.metadata.name === name);
        rows.sort((a, b) => (a.metadata.namespace ?? '').localeCompare(b.metadata.namespace ?? '') || a.metadata.name.localeCompare(b.metadata.name));
        return { kind, rows };
      });
      const found = listed.filter((l) => l.rows.length);
      const scoped = !o.allNamespaces && kinds.some((k) => KIND_INFO[k].namespaced);
      if (name && !found.length) throw new RigError('MESH_ERR_NOT_FOUND', `${kinds.map(resourceName).join(', ')} "${name}" not found${scoped ? ` in namespace ${o.namespace}` : ''}`);
      if (o.output !== 'table') {
        // Without the control plane's bookkeeping (where a resource was read from, its store version).
        const items = found.flatMap((l) => l.rows).map(({ source: _source, ...r }) => ({ ...r, metadata: { ...r.metadata, resourceVersion: undefined } }));
        const doc = name && items.length === 1 ? items[0] : { apiVersion: 'v1', kind: 'List', items };
        process.stdout.write(o.output === 'json' ? JSON.stringify(doc, null, 2) + '\n' : stringify(doc));
        return;
      }
      if (!found.length) {
        process.stderr.write(scoped ? `No resources found in ${o.namespace} namespace.\n` : 'No resources found\n');
        return;
      }
      // Several kinds (vs,dr or a name two groups share, as `gateways`): kubectl's tables, names qualified.
      const qualify = found.length > 1 || type.includes(',');
      const tables = found.map(({ kind, rows }) => resourceTable(kind, qualify ? rows.map((r) => ({ ...r, metadata: { ...r.metadata, name: `${qualifiedKind(kind)}/${r.metadata.name}` } })) : rows, !!o.allNamespaces && KIND_INFO[kind].namespaced));
      process.stdout.write(tables.join('\n'));
    });
}

/** The kinds a CLI type name means: one, or each kind that shares a bare name (`gateways`: Istio's and the Gateway API's). */
function kindsNamed(type: string): Kind[] {
  const kind = resolveResourceName(type);
  if (!kind || type.includes('.')) return kind ? [kind] : [];
  const lower = type.toLowerCase();
  const shared = (Object.keys(KIND_INFO) as Kind[]).filter((k) => k !== kind && (KIND_INFO[k].plural === lower || writtenKind(k).toLowerCase() === lower));
  return [kind, ...shared];
}

/** kubectl's prefix of a name in a table of several kinds: `virtualservice.networking.istio.io`. */
function qualifiedKind(kind: Kind): string {
  const info = KIND_INFO[kind];
  return info.group ? `${writtenKind(kind).toLowerCase()}.${info.group}` : writtenKind(kind).toLowerCase();
}

function resourceName(kind: Kind): string {
  const info = KIND_INFO[kind];
  return info.group ? `${info.plural}.${info.group}` : info.plural;
}
