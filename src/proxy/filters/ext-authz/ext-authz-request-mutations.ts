// What an OK answer does to the request before it goes on, in Envoy's order: header mutations
// (set / append / add-if-absent / overwrite-if-exists; pseudo headers and Host are the request
// head's fields), then headers_to_remove, each checked against decoder_header_mutation_rules; then
// query_parameters_to_set / _to_remove on the path. validate_mutations refuses an answer with an
// invalid header name or value, an unknown append_action or a query parameter needing encoding.
import type { RequestHead } from '../filter.ts';
import { TOKEN, badFieldValue } from '../../http/h1/h1-syntax.ts';
import { HeaderAction, mutateHeaders, type CheckOk, type HeaderMutation, type HeaderPair } from './ext-authz-check.ts';
import { MutationCheck, type HeaderMutationRules, type MutationOp } from './ext-authz-mutation-rules.ts';

/** Applies the answer to `head`; false when it must be refused instead (500 ext_authz_invalid). */
export function applyOkAnswer(head: RequestHead, r: CheckOk, rules: HeaderMutationRules | undefined, validate: boolean): boolean {
  if (validate && !validMutations(r)) return false;
  const verdict = (op: MutationOp, k: string): MutationCheck => (rules ? rules.check(op, k) : MutationCheck.Ok);
  for (const m of r.headers) {
    const ok = verdict(m.action === HeaderAction.Append ? 'append' : 'set', m.key);
    if (ok === MutationCheck.Fail) return false;
    if (ok === MutationCheck.Ok) mutateRequest(head, m);
  }
  for (const k of r.remove) {
    if (validate && !TOKEN.test(k)) continue;
    // `:` headers and Host can never be removed.
    if (k[0] === ':' || k === 'host') continue;
    const ok = verdict('remove', k);
    if (ok === MutationCheck.Fail) return false;
    if (ok === MutationCheck.Ok) delete head.headers[k];
  }
  const querySet = r.querySet ?? [];
  const queryRemove = r.queryRemove ?? [];
  if (querySet.length || queryRemove.length) head.path = rewriteQuery(head.path, querySet, queryRemove);
  return true;
}

/**
 * One request header mutation: pseudo headers and Host are the request head's fields (always
 * present, single valued: they are never appended to).
 */
function mutateRequest(head: RequestHead, m: HeaderMutation): void {
  const k = m.key;
  if (k[0] !== ':' && k !== 'host') return mutateHeaders(head.headers, m);
  if (m.action === HeaderAction.Append || m.action === HeaderAction.AddIfAbsent) return;
  if (k === ':authority' || k === 'host') head.authority = m.value;
  else if (k === ':path') head.path = m.value;
  else if (k === ':method') head.method = m.value;
  else if (k === ':scheme') head.scheme = m.value;
}

/**
 * query_parameters_to_set / _to_remove on the request path (names case-sensitive, values as the
 * service wrote them: no decoding); parameters keep their order, new ones go last.
 */
function rewriteQuery(path: string, set: readonly HeaderPair[], remove: readonly string[]): string {
  const q = path.indexOf('?');
  const params = q < 0 || q === path.length - 1 ? [] : path.slice(q + 1).split('&').map((p): [string, string | undefined] => {
    const e = p.indexOf('=');
    return e < 0 ? [p, undefined] : [p.slice(0, e), p.slice(e + 1)];
  });
  let out = params;
  for (const [k, v] of set) {
    const i = out.findIndex(([n]) => n === k);
    if (i < 0) {
      out.push([k, v]);
      continue;
    }
    // The first occurrence takes the value (later ones go; they are after it, so i stays).
    out = out.filter(([n], j) => n !== k || j === i);
    out[i] = [k, v];
  }
  if (remove.length) out = out.filter(([n]) => !remove.includes(n));
  const base = q < 0 ? path : path.slice(0, q);
  return out.length ? `${base}?${out.map(([k, v]) => (v === undefined ? k : `${k}=${v}`)).join('&')}` : base;
}

/** A query parameter name or value that needs no further percent-encoding. */
const URL_ENCODED = /^(?:[A-Za-z0-9\-._~!$'()*+,;:@/?]|%[0-9A-Fa-f]{2})*$/;

const validName = (k: string): boolean => TOKEN.test(k[0] === ':' ? k.slice(1) : k);

/** validate_mutations: every header name is a token, every value a valid field value, every append_action known. */
function validMutations(r: CheckOk): boolean {
  if (r.invalidAction) return false;
  for (const [k, v] of r.querySet ?? []) if (!URL_ENCODED.test(k) || !URL_ENCODED.test(v)) return false;
  for (const list of [r.headers, r.response]) {
    for (const m of list) if (!validName(m.key) || badFieldValue(m.value)) return false;
  }
  return true;
}
