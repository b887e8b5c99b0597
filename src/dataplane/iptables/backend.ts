// The iptables mode drives the shared xtables backend choice and tools; re-exported here for
// the mode's callers (the dataplane factory, tests).
export {
  BACKEND_ENV,
  chooseIptablesBackend,
  detectIptablesBackend,
  iptablesTools,
  supportsRandomFully,
} from '../xtables/index.ts';
export type { BackendChoice, IptablesBackend, IptablesTools, Runner } from '../xtables/index.ts';
