// Issue 4's proof: the real kube-proxy in nftables mode passes the same traffic scenarios as
// iptables mode (upstream nftables differences: node ports on the node's primary IP by default).
import { defineTrafficSuite } from './traffic-scenarios.ts';

defineTrafficSuite('nftables');
