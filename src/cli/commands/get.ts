// `rig get TYPE [NAME]`: the configuration the control plane serves, as `kubectl get` lists it
// (the running `rig up`'s, or --controlplane's): kubectl's columns per kind, -n / -A, -o yaml|json,
// and on Gateway API resources the status Istio would write (a Gateway's PROGRAMMED and ADDRESS).
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { KIND_INFO, resolveResourceName, writtenKind, type Kind } from '../../api/index.ts';
import { RigError } from '../../core/errors.ts';
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
      const kind = resolveResourceName(type);
      if (!kind) throw new RigError('MESH_ERR_USAGE', `the server doesn't have a resource type "${type}" (e.g. virtualservices, destinationrules, gateways, gateways.gateway.networking.k8s.io, httproutes, services, workloads)`);
      if (!['table', 'yaml', 'json'].includes(o.output)) throw new RigError('MESH_ERR_USAGE', `unknown output format "${o.output}" (table, yaml or json)`);
      const { getJson } = await import('../../xds/debug/controlplane-client.ts');
      const { BUILT_IN_GATEWAY_CLASS } = await import('../../model/gateway-api/resource-status.ts');
      type Entry = import('../../xds/debug/resource-table.ts').ConfigzEntry;
      const info = KIND_INFO[kind];
      const all = (await getJson(controlPlaneUrl(o), 'debug/configz')) as Entry[];
      let rows = all.filter((r) => r.kind === writtenKind(kind) && groupOf(r.apiVersion) === info.group);
      if (kind === 'GatewayClass' && !rows.some((r) => r.metadata.name === BUILT_IN_GATEWAY_CLASS.metadata.name)) rows.push(BUILT_IN_GATEWAY_CLASS);
      const scoped = info.namespaced && !o.allNamespaces;
      if (scoped) rows = rows.filter((r) => (r.metadata.namespace ?? 'default') === o.namespace);
      if (name) rows = rows.filter((r) => r.metadata.name === name);
      rows.sort((a, b) => (a.metadata.namespace ?? '').localeCompare(b.metadata.namespace ?? '') || a.metadata.name.localeCompare(b.metadata.name));
      if (name && !rows.length) throw new RigError('MESH_ERR_NOT_FOUND', `${info.plural}${info.group ? `.${info.group}` : ''} "${name}" not found${scoped ? ` in namespace ${o.namespace}` : ''}`);
      if (o.output !== 'table') {
        // Without the control plane's bookkeeping (where a resource was read from, its store version).
        const items = rows.map(({ source: _source, ...r }) => ({ ...r, metadata: { ...r.metadata, resourceVersion: undefined } }));
        const doc = name ? items[0] : { apiVersion: 'v1', kind: 'List', items };
        process.stdout.write(o.output === 'json' ? JSON.stringify(doc, null, 2) + '\n' : stringify(doc));
        return;
      }
      if (!rows.length) {
        process.stderr.write(scoped ? `No resources found in ${o.namespace} namespace.\n` : 'No resources found\n');
        return;
      }
      const { resourceTable } = await import('../../xds/debug/resource-table.ts');
      process.stdout.write(resourceTable(kind as Kind, rows, !!o.allNamespaces && info.namespaced));
    });
}

function groupOf(apiVersion: string | undefined): string {
  const v = apiVersion ?? '';
  return v.includes('/') ? v.slice(0, v.indexOf('/')) : '';
}
