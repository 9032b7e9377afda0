// productpage's login session: a cookie carrying the user name, signed with HMAC-SHA256 so that a
// client cannot forge another user. The key comes from SESSION_SECRET (share it between replicas);
// Bookinfo accepts any password, and so does this demo.
import { createHmac, timingSafeEqual } from 'node:crypto';

const COOKIE = 'session';
const secret = process.env.SESSION_SECRET ?? 'bookinfo-demo-session-key';

function sign(value: string): string {
  return createHmac('sha256', secret).update(value).digest('base64url');
}

export function sessionCookie(user: string): string {
  const value = Buffer.from(user, 'utf8').toString('base64url');
  return `${COOKIE}=${value}.${sign(value)}; Path=/; HttpOnly; SameSite=Lax`;
}

export function clearedSessionCookie(): string {
  return `${COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0`;
}

/** The logged-in user named by a valid session cookie in the Cookie header, if any. */
export function sessionUser(cookieHeader: string | undefined): string | undefined {
  for (const part of (cookieHeader ?? '').split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name !== COOKIE) continue;
    const [value, mac] = rest.join('=').split('.');
    if (!value || !mac) return undefined;
    const expected = Buffer.from(sign(value));
    const given = Buffer.from(mac);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
    return Buffer.from(value, 'base64url').toString('utf8') || undefined;
  }
  return undefined;
}
