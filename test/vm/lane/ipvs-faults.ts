// Issue 15 in IPVS mode, on the VM lane's kernel: the tool faults every mode passes
// (test/e2e/tool-faults-suite.ts) with `ipvsadm -R` failing and hanging, and `ipset restore`
// (every sync's first write: the sets the iptables rules match) failing. (Its restarts run on the
// traffic suite's cluster, in ipvs-traffic.ts.)
import { defineToolFaults } from '../../e2e/tool-faults-suite.ts';
import { ipvsSkipReason } from './kernel.ts';

const skip = ipvsSkipReason();
/** The lane's share of a core for the integrity checks (see ipvs-traffic.ts). */
const ENV = { KUBE_PROXY_CHECK_COST_FACTOR: '5' };

defineToolFaults(
  {
    mode: 'ipvs',
    label: 'ipvs',
    tag: 'kpvf',
    tools: ['ipvsadm', 'ipset'],
    // Only the batches that change the IPVS table or the sets fail or hang; listings pass.
    onlyWhen: { ipvsadm: '[ "$1" = -R ]', ipset: '[ "$1" = restore ]' },
    syncPeriodFlag: '--ipvs-sync-period',
    env: ENV,
  },
  skip,
);
