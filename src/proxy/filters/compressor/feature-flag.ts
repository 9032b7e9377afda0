// A RuntimeFeatureFlag ({ default_value, runtime_key }) as the compressor and decompressor filters
// read it: its default_value (true when unset, as Envoy). The runtime_key is named in a warning
// until the filters read Envoy's runtime.
import type { Reader } from '../../config/reader.ts';

export function readFeatureFlag(r: Reader | undefined, def: boolean): boolean {
  if (!r) return def;
  const v = r.bool('default_value', true);
  if (r.has('runtime_key')) r.issues.warn(r.at('runtime_key'), 'not read yet by this filter; default_value applies');
  r.accept('runtime_key');
  r.done();
  return v;
}
