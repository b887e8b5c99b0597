// Issue 12's proof: the real kube-proxy in userspace mode passes the traffic scenarios of the
// kernel modes, with the differences traffic-scenarios.ts lists (the proxy's own connection to an
// endpoint leaves from the node).
import { defineTrafficSuite } from './traffic-scenarios.ts';

defineTrafficSuite('userspace');
