// A RuntimeFeatureFlag ({ default_value, runtime_key }) as the compressor and decompressor filters
// read it, Envoy's FeatureFlag: the runtime's boolean at runtime_key, else default_value (true when
// unset). A handle: a request reads its field.
import type { Reader } from '../../config/reader.ts';
import type { EnvoyRuntime } from '../../envoy-runtime/index.ts';

export interface FeatureFlag {
  readonly value: boolean;
}

export function readFeatureFlag(r: Reader | undefined, def: boolean, runtime: EnvoyRuntime): FeatureFlag {
  if (!r) return { value: def };
  const v = r.bool('default_value', true);
  const key = r.str('runtime_key');
  r.done();
  return key ? runtime.bool(key, v) : { value: v };
}
