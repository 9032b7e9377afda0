/** A header's first value: node gives repeated headers (and set-cookie) as arrays. */
export function firstHeaderValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
