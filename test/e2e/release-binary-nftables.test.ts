// Issue 17's proof for the single executable: release/kube-proxy, copied alone into an empty
// directory, passes the nftables traffic scenarios (real kernel, network namespaces).
import { after } from 'node:test';
import { chmodSync } from 'node:fs';
import { kernelSkipReason } from '../support/netns.ts';
import { defineTrafficSuite } from './traffic-scenarios.ts';
import { copyBinaryAlone, missingArtifact, RELEASE_BINARY } from './release-support.ts';

const skip = kernelSkipReason() || missingArtifact(RELEASE_BINARY, 'release');
const alone = skip ? undefined : copyBinaryAlone();
if (alone) chmodSync(alone.binary, 0o755);
defineTrafficSuite(
  'nftables',
  { label: 'release binary alone', args: [], tag: 'krn', proxyCommand: [alone?.binary ?? RELEASE_BINARY] },
  skip,
);
after(() => alone?.remove());
