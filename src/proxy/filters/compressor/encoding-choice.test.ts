import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseEncoding, HeaderStat, type Candidate } from './encoding-choice.ts';

const any = new Set(['text/html', 'application/javascript', 'application/json']);
const gzip: Candidate = { contentEncoding: 'gzip', chooseFirst: false, contentTypes: any };
const br: Candidate = { contentEncoding: 'br', chooseFirst: false, contentTypes: any };

test("Envoy's documented cases: gzip;q=0 is not overridden by *, * with q=0 does not rule gzip out", () => {
  assert.deepEqual(chooseEncoding('gzip;q=0,*;q=1', 'application/json', [gzip]), { encoding: 'identity', stat: HeaderStat.NotValid });
  assert.deepEqual(chooseEncoding('*;q=0,gzip;q=1', 'application/json', [gzip]), { encoding: 'gzip', stat: HeaderStat.ValidCompressor });
});

test('identity, wildcard, unsupported and unparseable q-values', () => {
  assert.deepEqual(chooseEncoding('identity', undefined, [gzip]), { encoding: 'identity', stat: HeaderStat.Identity });
  assert.deepEqual(chooseEncoding('identity;q=1, gzip;q=0.5', undefined, [gzip]), { encoding: 'identity', stat: HeaderStat.Identity });
  assert.deepEqual(chooseEncoding('*', undefined, [br, gzip]), { encoding: 'br', stat: HeaderStat.Wildcard });
  assert.deepEqual(chooseEncoding('deflate', undefined, [gzip]), { encoding: 'identity', stat: HeaderStat.NotValid });
  assert.deepEqual(chooseEncoding('gzip;q=abc', undefined, [gzip]), { encoding: 'identity', stat: HeaderStat.NotValid });
  assert.deepEqual(chooseEncoding('gzip;q=0.5x, br;q=0.1', undefined, [gzip, br]), { encoding: 'br', stat: HeaderStat.ValidCompressor });
});

test('a filter whose content types do not take the response is left out of the choice', () => {
  const htmlGzip: Candidate = { ...gzip, contentTypes: new Set(['text/html']) };
  const jsBr: Candidate = { ...br, contentTypes: new Set(['application/javascript']) };
  assert.equal(chooseEncoding('gzip;q=1,br;q=.5', 'application/javascript', [htmlGzip, jsBr]).encoding, 'br');
  assert.equal(chooseEncoding('gzip;q=1,br;q=.5', 'text/html', [htmlGzip, jsBr]).encoding, 'gzip');
});

test('a tie goes to the first listed, unless a choose_first compressor is among the tied', () => {
  assert.equal(chooseEncoding('gzip, br', undefined, [gzip, br]).encoding, 'gzip');
  const brFirst: Candidate = { ...br, chooseFirst: true };
  assert.equal(chooseEncoding('gzip, br', undefined, [gzip, brFirst]).encoding, 'br');
  assert.equal(chooseEncoding('gzip;q=0.9, br;q=0.8', undefined, [gzip, brFirst]).encoding, 'gzip');
});
