// CEL's matches() is RE2 (Istio's docs use POSIX classes: `matches('^/reviews/[[:alnum:]]*$')`);
// @marcbachmann/cel-js runs it as an ECMAScript RegExp, which reads `[[:alnum:]]` as another class
// and answers wrongly. An environment gets an RE2 matches() under another name, and each parsed
// expression's matches() calls are renamed to it before their first evaluation.
import { createRequire } from 'node:module';
import type { Environment } from '@marcbachmann/cel-js';
import type * as Re2js from 're2js';

const RE2_MATCHES = 'rig_re2_matches';
const patterns = new Map<string, Re2js.RE2JS>();
let RE2JS: typeof Re2js.RE2JS | undefined;

function re2Matches(text: string, pattern: string): boolean {
  let p = patterns.get(pattern);
  if (!p) {
    RE2JS ??= (createRequire(import.meta.url)('re2js') as typeof Re2js).RE2JS;
    p = RE2JS.compile(pattern);
    if (patterns.size < 1000) patterns.set(pattern, p);
  }
  return p.matcher(text).find();
}

/** Registers the RE2 matches() on `env`; returns it. */
export function withRe2Matches(env: Environment): Environment {
  return env.registerFunction(`string.${RE2_MATCHES}(string): bool`, re2Matches).registerFunction(`${RE2_MATCHES}(string, string): bool`, re2Matches);
}

/** Parses `expression` in `env` (made withRe2Matches), its matches() calls made RE2's. Throws as env.parse does. */
export function parseCel(env: Environment, expression: string): ReturnType<Environment['parse']> {
  const parsed = env.parse(expression);
  useRe2Matches(parsed.ast);
  return parsed;
}

interface AstNode {
  op: string;
  args: unknown;
}

function useRe2Matches(node: unknown): void {
  if (!node || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (const n of node) useRe2Matches(n);
    return;
  }
  const n = node as AstNode;
  if (!Array.isArray(n.args)) return;
  if ((n.op === 'call' || n.op === 'rcall') && n.args[0] === 'matches') n.args[0] = RE2_MATCHES;
  for (const a of n.args) useRe2Matches(a);
}
