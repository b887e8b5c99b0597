// Public surface of the iptables mode: what the CLI and sync runner use.
export { createIptablesProxier } from './proxier.ts';
export type {
  IptablesProxier,
  IptablesProxierDeps,
  IptablesProxierInfo,
  IptablesProxierOptions,
} from './proxier.ts';
export { cleanupIptables, iptablesCleaner } from './cleanup.ts';
export type { IptablesCleanupReport } from './cleanup.ts';
export { chooseIptablesBackend, detectIptablesBackend, iptablesTools, BACKEND_ENV } from './backend.ts';
export type { BackendChoice, IptablesBackend, IptablesTools, Runner } from './backend.ts';
export { renderIptables } from './render.ts';
export type { IptablesRenderCache, RenderCounts, RenderInput, RenderOutput } from './render.ts';
export { RestoreError } from '../xtables/index.ts';
export { IPTABLES_OWNER } from './owner.ts';
export { validateIptablesOptions, NO_NFACCT } from './options.ts';
export type { IptablesOptions, LocalDetector, NfacctCounters, NodePortAddresses } from './options.ts';
