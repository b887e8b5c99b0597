// Issue 3's proof: the real kube-proxy in iptables mode, real traffic through a real kernel.
import { defineTrafficSuite } from './traffic-scenarios.ts';

defineTrafficSuite('iptables');
