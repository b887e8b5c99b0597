// What a proxy mode is to the rest of the program: the shape every mode folder exports from its
// mode.ts and that dataplane/modes.ts collects. Nothing outside a mode folder names a mode; the
// daemon and the CLI see only this.
import type { IPFamily } from '../../model/types.ts';
import type { Registry } from '../../metrics/registry.ts';
import type { Backend, Cleaner } from '../../sync/backend.ts';
import type { ExecOptions, ExecResult } from '../../util/exec.ts';
import type { XtablesOwner } from '../xtables/index.ts';
import type { ModeExplainer } from './explain.ts';
import type { DataplaneSettings, NodeInfo } from './settings.ts';
import type { ModeVerifier } from './verify.ts';

/** Runs a system tool; tests pass one that runs inside a network namespace. */
export type ToolRunner = (
  file: string,
  args: readonly string[],
  options?: ExecOptions,
) => Promise<ExecResult>;

/** What one daemon gives its mode when setting it up. */
export interface ModeSetup {
  /** The daemon's registry: the mode registers its own metrics here (upstream names and labels). */
  readonly registry: Registry;
  readonly settings: DataplaneSettings;
  /** Default: execTool. */
  readonly run?: ToolRunner;
}

/** What a backend is created with besides its family. */
export interface BackendContext {
  readonly node: NodeInfo;
  /** This host's interface addresses (both families) when the backend is created. */
  readonly hostAddresses: readonly string[];
  /**
   * This host's interface addresses (both families) as they are now, for a backend whose rules
   * follow them (Backend.followsHostAddresses). Cheap (no tool runs); absent in tests that fix them.
   */
  readonly currentHostAddresses?: () => readonly string[];
}

/** A mode set up for one daemon: its metrics are registered, its host-wide choices shared. */
export interface ModeInstance {
  /** Whether this host can program the family (the daemon checks IPv6 availability first). */
  supportsFamily(family: IPFamily): Promise<boolean>;
  /** One backend per family; it counts its own failures in the mode's metrics. */
  createBackend(family: IPFamily, context: BackendContext): Promise<Backend>;
}

export interface ModeDefinition {
  /** As the config spells it and /proxyMode reports it. */
  readonly name: string;
  /**
   * Why this mode cannot run in this build, as the error the CLI prints before touching
   * anything; undefined for a mode that runs.
   */
  readonly unavailable?: string;
  /**
   * Upstream deprecated this mode: at start the daemon logs `note` as a warning and records it as
   * a Warning Event on the Node with `reason` (action ProxyModeCheck), as upstream does.
   */
  readonly deprecation?: { readonly reason: string; readonly note: string };
  /**
   * What this mode puts into x_tables (iptables and IPVS share chain names such as nat
   * KUBE-SERVICES): the cleaners of other modes keep these while this mode runs. Empty for a mode
   * that writes no x_tables rules.
   */
  readonly xtablesOwners: readonly XtablesOwner[];
  /**
   * Removes everything this mode ever created (--cleanup), or, on a switch to another mode, all of
   * it but the chains and jumps the `keep` owners (the running mode's) use as well.
   */
  cleaner(run?: ToolRunner, keep?: readonly XtablesOwner[]): Cleaner;
  /** Registers the mode's metrics on the daemon's registry and returns what creates backends. */
  setUp(setup: ModeSetup): ModeInstance;
  /** Its rules and tracer for `kube-proxy explain`; absent for a mode the explainer cannot trace. */
  readonly explainer?: ModeExplainer;
  /** Reads its rules back from the kernel for `kube-proxy verify`; absent when it cannot. */
  readonly verifier?: ModeVerifier;
}

/** A mode the config accepts but this program does not implement yet. Its cleaner has nothing to remove. */
export function notImplementedMode(name: string, unavailable: string): ModeDefinition {
  const fail = (): never => {
    throw new Error(`proxy mode ${name} is not implemented yet`);
  };
  return {
    name,
    unavailable,
    xtablesOwners: [],
    cleaner: () => ({ mode: name, cleanup: () => Promise.resolve() }),
    setUp: () => ({
      supportsFamily: () => Promise.resolve(false),
      createBackend: () => Promise.resolve().then(fail),
    }),
  };
}

/** Whether a tool runs at all here (a family's support check): true when it exits 0 within 10 s. */
export async function toolWorks(run: ToolRunner, file: string, args: readonly string[]): Promise<boolean> {
  try {
    await run(file, args, { timeoutMs: 10_000 });
    return true;
  } catch {
    return false;
  }
}
