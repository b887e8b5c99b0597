// The IPVS mode's ipsets as `ipset restore` text (modes-ipvs-userspace.md 1.9): every set created
// with `-exist` (hash sets per family, bitmap sets over all ports), then the members that differ
// from what the kernel holds added or deleted, all in one process instead of upstream's one
// `ipset` run per entry. `ipset save` output is read back for the kernel's view.
import type { IPFamily } from '../../model/types.ts';
import { SET_KEYS, SETS, setName, type SetKey } from './names.ts';

/** The `create` line of a set (used with `ipset restore -exist`, so existing sets are kept). */
export function createLine(key: SetKey, family: IPFamily): string {
  const spec = SETS[key];
  const name = setName(key, family);
  if (spec.type === 'bitmap:port') return `create ${name} bitmap:port range 0-65535\n`;
  return `create ${name} ${spec.type} family ${family === 'IPv4' ? 'inet' : 'inet6'} hashsize 1024 maxelem 65536\n`;
}

/** Members of each set as `ipset save` lists them, by set name (sets we do not know are kept too). */
export function parseIpsetSave(text: string): Map<string, Set<string>> {
  const sets = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const args = line.trim().split(/\s+/);
    if (args[0] === 'create' && args[1]) sets.set(args[1], sets.get(args[1]) ?? new Set());
    else if (args[0] === 'add' && args[1] && args[2]) {
      const members = sets.get(args[1]) ?? new Set<string>();
      members.add(args[2]);
      sets.set(args[1], members);
    }
  }
  return sets;
}

export interface IpsetDiffCounts {
  added: number;
  deleted: number;
}

/**
 * `ipset restore -exist` input: `create` for every set (when `create`), then `del` for members
 * the kernel has and we do not want, `add` for the missing ones. `current` undefined for a set
 * means unknown: every desired member is added (`-exist` makes that harmless).
 */
export function renderIpsetRestore(
  family: IPFamily,
  desired: Readonly<Record<SetKey, ReadonlySet<string>>>,
  current: ReadonlyMap<string, ReadonlySet<string>> | undefined,
  create: boolean,
): { text: string; counts: IpsetDiffCounts } {
  let text = '';
  const counts: IpsetDiffCounts = { added: 0, deleted: 0 };
  if (create) for (const key of SET_KEYS) text += createLine(key, family);
  for (const key of SET_KEYS) {
    const name = setName(key, family);
    const want = desired[key];
    const have = current?.get(name);
    if (have) {
      for (const member of have)
        if (!want.has(member)) {
          text += `del ${name} ${member}\n`;
          counts.deleted++;
        }
    }
    for (const member of want)
      if (!have?.has(member)) {
        text += `add ${name} ${member}\n`;
        counts.added++;
      }
  }
  return { text, counts };
}
