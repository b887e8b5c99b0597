// Which IP families this node runs, and one backend per family (dual-stack is two backends side by
// side, architecture rule 8). The primary family comes from the Node; the other one is added when
// the kernel has it and the mode can program it on this host.
import type { ModeInstance } from '../dataplane/common/mode.ts';
import type { Host } from '../host/host.ts';
import { log } from '../log/log.ts';
import type { IPFamily } from '../model/types.ts';
import type { Backend } from '../sync/backend.ts';
import type { NodeInfo } from './node.ts';

export async function chooseFamilies(info: NodeInfo, mode: ModeInstance, host: Host): Promise<IPFamily[]> {
  const families: IPFamily[] = [info.primaryFamily];
  const secondary: IPFamily = info.primaryFamily === 'IPv4' ? 'IPv6' : 'IPv4';
  const ipv6Available = secondary !== 'IPv6' || host.ipv6Available();
  if (ipv6Available && (await mode.supportsFamily(secondary))) families.push(secondary);
  else log.info('Running in single-stack mode', { ipFamily: info.primaryFamily });
  return families;
}

/**
 * One backend per family. If creating one fails, those already created are closed before the
 * error goes on, so nothing they opened outlives the failed start.
 */
export async function createBackends(
  families: readonly IPFamily[],
  mode: ModeInstance,
  node: NodeInfo,
  hostAddresses: readonly string[],
  currentHostAddresses?: () => readonly string[],
): Promise<Backend[]> {
  const context = { node, hostAddresses, ...(currentHostAddresses ? { currentHostAddresses } : {}) };
  const results = await Promise.allSettled(families.map((family) => mode.createBackend(family, context)));
  const failed = results.find((result) => result.status === 'rejected');
  const created = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  if (failed) {
    await closeBackends(created);
    throw failed.reason;
  }
  return created;
}

/** Closes every backend that has something to close; a failure is logged, never thrown. */
export async function closeBackends(backends: readonly Backend[]): Promise<void> {
  await Promise.all(
    backends.map(async (backend) => {
      try {
        await backend.close?.();
      } catch (error) {
        log.error('Failed to close the backend', error, { ipFamily: backend.family, mode: backend.mode });
      }
    }),
  );
}
