// The nft -i session's pure parts: a script as one line with the same meaning, and the error
// output of one transaction cut at its marker.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { oneLine, splitAtMarker } from '../../../src/dataplane/nftables/session.ts';

test('a partial-sync script becomes one line: statements joined by ;, blocks by spaces', () => {
  const script = [
    'add chain ip kube-proxy ip-class-2',
    'add rule ip kube-proxy ip-class-2 meta l4proto tcp dnat to ip daddr . tcp dport . numgen random mod 2 map @ip-endpoints-tcp',
    'delete element ip kube-proxy ip-dispatch {',
    '\t10.96.0.1 . tcp . 80,',
    '}',
    'add element ip kube-proxy ip-endpoints-tcp {',
    '\t10.96.0.1 . 80 . 0 : 10.244.1.1 . 8080,',
    '\t10.96.0.1 . 80 . 1 : 10.244.1.2 . 8080,',
    '}',
    'delete chain ip kube-proxy ip-class-1',
    '',
  ].join('\n');
  assert.equal(
    oneLine(script),
    'add chain ip kube-proxy ip-class-2; ' +
      'add rule ip kube-proxy ip-class-2 meta l4proto tcp dnat to ip daddr . tcp dport . numgen random mod 2 map @ip-endpoints-tcp; ' +
      'delete element ip kube-proxy ip-dispatch { 10.96.0.1 . tcp . 80, }; ' +
      'add element ip kube-proxy ip-endpoints-tcp { 10.96.0.1 . 80 . 0 : 10.244.1.1 . 8080, 10.96.0.1 . 80 . 1 : 10.244.1.2 . 8080, }; ' +
      'delete chain ip kube-proxy ip-class-1',
  );
});

test('a chain block keeps its statements inside the braces', () => {
  assert.equal(
    oneLine('add chain ip t c {\n\ttype filter hook input priority 0;\n}\nadd rule ip t c accept\n'),
    'add chain ip t c { type filter hook input priority 0; }; add rule ip t c accept',
  );
});

test("the marker's error ends the transaction's output; what comes before is its error", () => {
  const marker = 'kpts-done-7';
  const ok = `Error: No such file or directory\nlist table ip ${marker}\n              ^^^^^^^^^^^\n`;
  assert.deepEqual(splitAtMarker(ok, marker), { errors: '', rest: '' });
  const failed =
    'Error: Could not process rule: File exists\nadd element ip t m { 1.1.1.1 }\n                     ^^^^^^^\n' +
    ok +
    'Err';
  assert.deepEqual(splitAtMarker(failed, marker), {
    errors:
      'Error: Could not process rule: File exists\nadd element ip t m { 1.1.1.1 }\n                     ^^^^^^^\n',
    rest: 'Err',
  });
  // The caret line of the marker has not arrived yet: not done.
  assert.equal(
    splitAtMarker(`Error: No such file or directory\nlist table ip ${marker}\n`, marker),
    undefined,
  );
  assert.equal(splitAtMarker(ok, 'kpts-done-8'), undefined, 'another marker');
});
