// The nftables proxier's rule-integrity check: one small listing shows whether our table and its
// entry rules are still in the kernel; when they are not, the record is dropped and the next sync
// is full (issue 15: nftables mode used to trust its record forever after `nft flush ruleset`).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  createNftablesProxier,
  integrityIntact,
  integrityScript,
} from '../../../src/dataplane/nftables/proxier.ts';
import { ExecError, inputText, type ExecOptions, type ExecResult } from '../../../src/util/exec.ts';
import { OPTIONS_V4, snapshot } from './fixtures.ts';

const LISTING = [
  'table ip kube-proxy {',
  '\tchain nat-prerouting {',
  '\t\ttype nat hook prerouting priority dstnat; policy accept;',
  '\t\tjump services',
  '\t}',
  '\tchain services {',
  '\t\tip daddr . meta l4proto . th dport vmap @service-ips',
  '\t}',
  '}',
].join('\n');

test('the integrity listing names two small chains of the family table', () => {
  assert.equal(
    integrityScript('IPv6'),
    'list chain ip6 kube-proxy nat-prerouting\nlist chain ip6 kube-proxy services\n',
  );
  assert.equal(integrityIntact(LISTING), true);
  assert.equal(integrityIntact(LISTING.replace('\t\tjump services\n', '')), false, 'jump removed');
  assert.equal(integrityIntact(''), false, 'table gone');
});

test('rulesIntact: a missing table drops the record, so the next sync is full', async () => {
  let tableThere = true;
  const run = (file: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult> => {
    const ok = (stdout = ''): Promise<ExecResult> => Promise.resolve({ stdout, stderr: '', code: 0 });
    if (args[0] === '--version') return ok('nftables v1.0.6 (Lester Gooch #5)');
    if (args[0] === '-f' && inputText(options?.input).startsWith('list chain')) {
      return tableThere
        ? ok(LISTING)
        : Promise.reject(new ExecError(file, 1, '', 'Error: No such file or directory', 'exit status 1'));
    }
    return ok();
  };
  const proxier = await createNftablesProxier(OPTIONS_V4, { run, skipKernelCheck: true });
  assert.equal(await proxier.rulesIntact?.(), true, 'no record yet: nothing to distrust');
  const first = await proxier.sync({ snapshot: snapshot([]), full: false });
  assert.equal(first.full, true);
  assert.equal((await proxier.sync({ snapshot: snapshot([]), full: false })).full, false);
  assert.equal(await proxier.rulesIntact?.(), true);
  tableThere = false;
  assert.equal(await proxier.rulesIntact?.(), false);
  assert.equal(
    (await proxier.sync({ snapshot: snapshot([]), full: false })).full,
    true,
    'the record was dropped',
  );
});
