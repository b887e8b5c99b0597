// Issue 17's proof for the single executable: release/kube-proxy, copied alone into an empty
// directory, passes the iptables traffic scenarios (real kernel, network namespaces) and serves
// the web page from the files it carries.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { chmodSync } from 'node:fs';
import { kernelSkipReason } from '../support/netns.ts';
import { defineTrafficSuite } from './traffic-scenarios.ts';
import { copyBinaryAlone, missingArtifact, RELEASE_BINARY } from './release-support.ts';

const skip = kernelSkipReason() || missingArtifact(RELEASE_BINARY, 'release');
const alone = skip ? undefined : copyBinaryAlone();
if (alone) chmodSync(alone.binary, 0o755);
defineTrafficSuite(
  'iptables',
  {
    label: 'release binary alone',
    args: [],
    tag: 'kri',
    proxyCommand: [alone?.binary ?? RELEASE_BINARY],
    extra: (cluster, skipExtra) => {
      test(
        'the web page is served from the files embedded in the executable',
        { skip: skipExtra },
        async () => {
          for (const [path, type] of [
            ['/ui/', /^text\/html/],
            ['/ui/app.js', /^text\/javascript/],
            ['/ui/app.css', /^text\/css/],
          ] as const) {
            const page = await cluster().httpGet(`http://127.0.0.1:10249${path}`);
            assert.equal(page.status, 200, `${path}: ${page.body}`);
            assert.match(page.contentType, type);
            assert.ok(page.body.length > 100, `${path} has its content`);
          }
        },
      );
    },
  },
  skip,
);
after(() => alone?.remove());
