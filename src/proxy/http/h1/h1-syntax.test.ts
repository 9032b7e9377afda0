import assert from 'node:assert/strict';
import { test } from 'node:test';
import { badFieldValue } from './h1-syntax.ts';

test('badFieldValue: long values found good are remembered by content, never a bad one', () => {
  const good = 'a'.repeat(100);
  assert.equal(badFieldValue(good), false);
  assert.equal(badFieldValue(good), false, 'the same string again');
  assert.equal(badFieldValue('a'.repeat(99) + 'a'), false, 'an equal string built anew');
  // The same length and prefix as the remembered ones, a CR or LF or NUL at the end.
  for (const end of ['\r', '\n', '\0', '\x7f', '\u0100']) assert.equal(badFieldValue('a'.repeat(99) + end), true, JSON.stringify(end));
  const other = 'b'.repeat(200);
  assert.equal(badFieldValue(other), false);
  assert.equal(badFieldValue('c'.repeat(300)), false);
  assert.equal(badFieldValue('b'.repeat(199) + '\n'), true, 'after two others');
  assert.equal(badFieldValue('x\ty ' + 'z'.repeat(80) + '\xff'), false, 'HTAB, SP and obs-text are allowed');
  assert.equal(badFieldValue('short\r\n'), true);
  assert.equal(badFieldValue('short'), false);
});
