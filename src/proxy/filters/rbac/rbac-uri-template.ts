// Envoy's URI template path matcher (envoy.path.match.uri_template.uri_template_matcher), the
// `uri_template` RBAC permission Istio generates for AuthorizationPolicy path templates:
// `*` matches one path segment, `**` zero or more segments (the last operator), `{name}` /
// `{name=*}` / `{name=**}` / `{name=a/*}` capture the same; everything else is literal. The path
// without its query string must match the whole template.
export const URI_TEMPLATE_MATCH_TYPE = 'type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig';

const LITERAL = /^[a-zA-Z0-9\-._~%!$&'()+,;:@=]$/;
const ONE = "[a-zA-Z0-9\\-._~%!$&'()+,;:@=]+";
const ANY = "[a-zA-Z0-9\\-._~%!$&'()+,;:@=/]*";
const MAX_VARIABLES = 5;

function escape(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? `\\${c}` : c;
}

/** Compiles a path_template to an anchored RegExp; throws a readable error for an invalid one. */
export function compileUriTemplate(template: string): RegExp {
  if (!template.startsWith('/')) throw new Error(`path_template "${template}" must start with "/"`);
  if (template.length > 256) throw new Error('path_template is longer than 256 characters');
  let re = '';
  let sawAny = false;
  const names = new Set<string>();
  const operator = (kind: '*' | '**', where: string) => {
    if (sawAny) throw new Error(`path_template "${template}": "**" must be the last operator (found ${where} after it)`);
    if (kind === '**') sawAny = true;
    return kind === '**' ? ANY : ONE;
  };
  /** Reads literals and globs until `stop` (or the end); returns the regex and where it stopped. */
  const readPattern = (from: number, stop: string | undefined): [string, number] => {
    let out = '';
    let i = from;
    while (i < template.length && template[i] !== stop) {
      const c = template[i]!;
      if (c === '*') {
        const double = template[i + 1] === '*';
        out += operator(double ? '**' : '*', double ? '"**"' : '"*"');
        i += double ? 2 : 1;
      } else if (c === '{') {
        if (stop) throw new Error(`path_template "${template}": a variable cannot contain another variable`);
        const close = template.indexOf('}', i);
        if (close < 0) throw new Error(`path_template "${template}": "{" at ${i} is not closed`);
        const body = template.slice(i + 1, close);
        const eq = body.indexOf('=');
        const name = eq < 0 ? body : body.slice(0, eq);
        if (!/^[a-zA-Z][a-zA-Z0-9_]*$/.test(name)) throw new Error(`path_template "${template}": "${name}" is not a variable name`);
        if (names.has(name)) throw new Error(`path_template "${template}": variable "${name}" appears twice`);
        names.add(name);
        if (names.size > MAX_VARIABLES) throw new Error(`path_template "${template}": more than ${MAX_VARIABLES} variables`);
        if (eq < 0) out += operator('*', `{${name}}`);
        else {
          const [inner, end] = readPattern(i + 1 + eq + 1, '}');
          if (end !== close || !inner) throw new Error(`path_template "${template}": variable "${name}" has an empty or invalid pattern`);
          out += inner;
        }
        i = close + 1;
      } else if (c === '/' || LITERAL.test(c)) {
        out += escape(c);
        i++;
      } else throw new Error(`path_template "${template}": "${c}" is not allowed in a path template`);
    }
    return [out, i];
  };
  [re] = readPattern(0, undefined);
  return new RegExp(`^${re}$`);
}
