// YAML parsing for bootstrap and path config source files, with the yaml package loaded on the
// first YAML file: a proxy configured by flags and xDS (every sidecar of `rig up`) or by JSON files
// does not carry it (0.7 MB heap).
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';

let mod: typeof Yaml | undefined;

export function parseYaml(text: string): unknown {
  mod ??= createRequire(import.meta.url)('yaml') as typeof Yaml;
  return mod.parse(text) as unknown;
}

/** Every document of a multi-document YAML text; throws on the first error. */
export function parseYamlDocuments(text: string): unknown[] {
  mod ??= createRequire(import.meta.url)('yaml') as typeof Yaml;
  return mod.parseAllDocuments(text).map((d) => {
    if (d.errors.length) throw d.errors[0];
    return d.toJS() as unknown;
  });
}
