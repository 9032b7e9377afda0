// Kubernetes' equality-based label selectors (`app=reviews,version!=v1`, `app`, `!canary`), as
// `istioctl proxy-config log -l` takes them to pick pods. Set-based terms (`in`, `notin`) are
// refused by name rather than misread.
import { RigError } from '../../core/errors.ts';

type Term = { key: string; op: '=' | '!=' | 'exists' | '!exists'; value?: string };

const KEY = /^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$/;

function term(raw: string, selector: string): Term {
  const s = raw.trim();
  if (/\s(in|notin)\s*\(/.test(s)) throw new RigError('MESH_ERR_USAGE', `--selector "${selector}": set-based term "${s}" is not supported; write key=value, key!=value, key or !key terms, comma-separated`);
  const m = /^([^=!]+?)\s*(==|=|!=)\s*(.*)$/.exec(s);
  const t: Term = m ? { key: m[1]!, op: m[2] === '!=' ? '!=' : '=', value: m[3]! } : s.startsWith('!') ? { key: s.slice(1).trim(), op: '!exists' } : { key: s, op: 'exists' };
  if (!KEY.test(t.key)) throw new RigError('MESH_ERR_USAGE', `--selector "${selector}": "${t.key || s}" is not a label key (term "${s}")`);
  return t;
}

/** Parses a selector into a predicate over a pod's labels; an empty selector is a usage error. */
export function parseSelector(selector: string): (labels: Record<string, string>) => boolean {
  const terms = selector.split(',').filter((s) => s.trim()).map((s) => term(s, selector));
  if (!terms.length) throw new RigError('MESH_ERR_USAGE', '--selector: give at least one term (e.g. app=reviews)');
  return (labels) =>
    terms.every((t) => {
      const v = labels[t.key];
      switch (t.op) {
        case '=':
          return v === t.value;
        case '!=':
          return v !== t.value;
        case 'exists':
          return v !== undefined;
        case '!exists':
          return v === undefined;
      }
    });
}
