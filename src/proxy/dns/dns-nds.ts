// The name table on the wire: Istio's NDS resource `istio.networking.nds.v1.NameTable`, sent over
// ADS like any xDS resource (Istio's agent subscribes to it when DNS capture is on). The message
// is small, so it is declared here rather than loaded from a .proto file:
//   message NameTable { map<string, NameInfo> table = 1;
//     message NameInfo { repeated string ips = 1; string registry = 2; string shortname = 3; string namespace = 4; } }
import protobuf from 'protobufjs';
import { validateNameTable, type NameTable } from './dns-name-table.ts';

export const NDS_TYPE_URL = 'type.googleapis.com/istio.networking.nds.v1.NameTable';

const root = protobuf.Root.fromJSON({
  nested: {
    istio: {
      nested: {
        networking: {
          nested: {
            nds: {
              nested: {
                v1: {
                  nested: {
                    NameTable: {
                      fields: { table: { keyType: 'string', type: 'NameInfo', id: 1 } as protobuf.IMapField },
                      nested: {
                        NameInfo: {
                          fields: {
                            ips: { rule: 'repeated', type: 'string', id: 1 },
                            registry: { type: 'string', id: 2 },
                            shortname: { type: 'string', id: 3 },
                            namespace: { type: 'string', id: 4 },
                          },
                        },
                      },
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
});
const NameTableType = root.lookupType('istio.networking.nds.v1.NameTable');

/** Packs a name table as the google.protobuf.Any the control plane puts in a DiscoveryResponse. */
export function packNameTable(t: NameTable): { type_url: string; value: Uint8Array } {
  validateNameTable(t);
  return { type_url: NDS_TYPE_URL, value: NameTableType.encode(NameTableType.fromObject(t)).finish() };
}

/** Unpacks (and validates) a NameTable Any received over xDS. */
export function unpackNameTable(any: { type_url: string; value: Uint8Array }): NameTable {
  if (any.type_url !== NDS_TYPE_URL) throw new Error(`expected a ${NDS_TYPE_URL}, got ${any.type_url}`);
  const obj = NameTableType.toObject(NameTableType.decode(any.value), { defaults: false, arrays: true, objects: true }) as NameTable;
  const table: NameTable = { table: {} };
  for (const [host, info] of Object.entries(obj.table ?? {})) {
    table.table[host] = { ips: info.ips ?? [] };
    for (const k of ['registry', 'shortname', 'namespace'] as const) if (info[k]) table.table[host][k] = info[k];
  }
  validateNameTable(table);
  return table;
}
