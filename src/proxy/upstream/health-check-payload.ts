// Health check payloads (Envoy's HealthCheck.Payload: `text` is hex, `binary` is base64) and the
// "fuzzy" receive match: every expected block must appear in the response, in order, not
// necessarily adjacent.
import { list, object, string, type ConfigIssues, type Json } from './lb/config-fields.ts';

export function compilePayload(o: Json | undefined, path: string, issues: ConfigIssues): Buffer | undefined {
  if (!o) return undefined;
  const text = string(o, 'text', path, issues);
  const binary = string(o, 'binary', path, issues);
  if (text !== undefined) {
    if (!/^([0-9a-fA-F]{2})*$/.test(text)) {
      issues.errors.push(`${path}.text: must be hex-encoded bytes (e.g. "50494e47" for PING), got "${text}"`);
      return undefined;
    }
    return Buffer.from(text, 'hex');
  }
  if (binary !== undefined) return Buffer.from(binary, 'base64');
  issues.errors.push(`${path}: needs text (hex) or binary (base64)`);
  return undefined;
}

export function compilePayloads(v: unknown, path: string, issues: ConfigIssues): Buffer[] {
  const out: Buffer[] = [];
  list(v, path, issues).forEach((p, i) => {
    const b = compilePayload(object(p, `${path}[${i}]`, issues), `${path}[${i}]`, issues);
    if (b) out.push(b);
  });
  return out;
}

/** true when every block is found in `data`, in order. */
export function payloadsMatch(data: Buffer, blocks: readonly Buffer[]): boolean {
  let from = 0;
  for (const b of blocks) {
    const at = data.indexOf(b, from);
    if (at < 0) return false;
    from = at + b.length;
  }
  return true;
}
