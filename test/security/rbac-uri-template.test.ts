// Envoy's URI template matcher as the RBAC uri_template permission uses it: Envoy's documented
// examples match, the operators' limits hold, and invalid templates are refused with the reason.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileUriTemplate } from '../../src/proxy/filters/rbac/rbac-uri-template.ts';

test('uri templates: *, **, variables and literals, as Envoy documents them', () => {
  const cases: [string, string[], string[]][] = [
    ['/videos/*/*/*.m4s', ['/videos/123414/hls/1080p5000_00001.m4s'], ['/videos/1/2/3/x.m4s', '/videos/1/2/x.mp4', '/videos//2/x.m4s']],
    ['/videos/{file}', ['/videos/1080p5000_00001.m4s'], ['/videos/a/b', '/videos/']],
    ['/**.mpd', ['/content/123/india/dash/55/manifest.mpd', '/.mpd'], ['/content/manifest.mp4']],
    ['/api/{id=*}/x/{rest=**}', ['/api/7/x/', '/api/7/x/a/b'], ['/api/7/y/a', '/api/7/x']],
    ['/{name=videos/*}/play', ['/videos/cats/play'], ['/videos/cats/dogs/play']],
    ['/a+b/$(c)', ['/a+b/$(c)'], ['/aab/$(c)']],
  ];
  for (const [template, yes, no] of cases) {
    const re = compileUriTemplate(template);
    for (const p of yes) assert.ok(re.test(p), `${template} matches ${p}`);
    for (const p of no) assert.ok(!re.test(p), `${template} does not match ${p}`);
  }
});

test('invalid uri templates are refused with the reason', () => {
  const bad: [string, RegExp][] = [
    ['videos/*', /must start with "\/"/],
    ['/a/**/b/*', /"\*\*" must be the last operator/],
    ['/a/**/{x}', /"\*\*" must be the last operator/],
    ['/a/{x}/{x}', /variable "x" appears twice/],
    ['/a/{1x}', /"1x" is not a variable name/],
    ['/a/{x', /is not closed/],
    ['/a/b?c', /"\?" is not allowed/],
    ['/{a}/{b}/{c}/{d}/{e}/{f}', /more than 5 variables/],
  ];
  for (const [template, msg] of bad) assert.throws(() => compileUriTemplate(template), msg, template);
});
