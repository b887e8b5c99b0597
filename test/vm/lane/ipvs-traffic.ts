// The traffic scenarios every kernel mode passes (test/e2e/traffic-scenarios.ts), with real
// connections through the kernel's IPVS. Runs in the VM lane (make test-vm).
import { defineTrafficSuite } from '../../e2e/traffic-scenarios.ts';
import { ipvsSkipReason } from './kernel.ts';

defineTrafficSuite('ipvs', undefined, ipvsSkipReason());
