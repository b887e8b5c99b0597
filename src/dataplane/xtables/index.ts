// The xtables toolkit: what every mode that programs iptables chains shares (backend choice,
// save/restore, ensuring jump rules and canaries, the canary check, cleanup), parametrised by an
// owner description instead of one mode's constants.
export { BACKEND_ENV, chooseIptablesBackend, detectIptablesBackend } from './backend.ts';
export type { BackendChoice } from './backend.ts';
export { awaitCanaryFlush, canaryPresent } from './canary.ts';
export type { FlushWait } from './canary.ts';
export { cleanupOwner, cleanupTableText } from './cleanup.ts';
export type { CleanupOptions, XtablesCleanupReport } from './cleanup.ts';
export { chainExists, ensureChain, ensureRule, positionFlag } from './commands.ts';
export type { RulePosition } from './commands.ts';
export { ensureBase, ensureOneByOne, hasJumpRule, isJumpRuleLine, missingBaseText } from './ensure.ts';
export { jumpArgs, removableChains, removesChain, sameJump, usesChain } from './owner.ts';
export type { CanarySpec, JumpSpec, XtablesOwner } from './owner.ts';
export { RestoreError, linesAround, restore } from './restore.ts';
export { chainsInSave, parseSave, ruleChain, ruleTarget, saveAll, saveTable } from './save.ts';
export type { SavedTable, SavedTables } from './save.ts';
export { RESTORE_ARGS, TABLES, WAIT_ARGS, iptablesTools, supportsRandomFully } from './tools.ts';
export type { IptablesBackend, IptablesTools, Runner, Table } from './tools.ts';
