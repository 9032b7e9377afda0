// Istio configures its proxy extensions (istio.stats, peer metadata) with a TypedStruct: the
// extension's own type URL plus its config as a Struct. Both udpa.type.v1 and xds.type.v3 forms.
import type { Reader } from '../config/reader.ts';

export const TYPED_STRUCT_TYPES = ['type.googleapis.com/udpa.type.v1.TypedStruct', 'type.googleapis.com/xds.type.v3.TypedStruct'];

/** The `value` of a TypedStruct whose type_url is one of `typeUrls` (reported otherwise); an empty Reader for no config. */
export function typedStructValue(r: Reader, typeUrls: readonly string[], what: string): Reader | undefined {
  const t = r.str('@type');
  if (!TYPED_STRUCT_TYPES.includes(t)) {
    r.issues.error(r.at('@type'), `${what} takes a TypedStruct (${TYPED_STRUCT_TYPES.join(' or ')}) with type_url ${typeUrls.join(' or ')}, got ${t || 'no @type'}`);
    r.accept(...Object.keys(r.raw));
    return undefined;
  }
  const url = r.str('type_url');
  if (!typeUrls.includes(url)) r.issues.error(r.at('type_url'), `${what}: type_url must be ${typeUrls.join(' or ')}, got ${url || '(none)'}`);
  const v = r.obj('value');
  r.done();
  return v;
}
