// The registry of proxy modes: one line per mode folder. A mode the configuration accepts but that
// is missing here is a compile error, so adding a mode is one folder and one line.
import type { ProxyMode } from '../config/types.ts';
import type { ModeDefinition } from './common/mode.ts';
import { iptablesMode } from './iptables/mode.ts';
import { ipvsMode } from './ipvs/mode.ts';
import { nftablesMode } from './nftables/mode.ts';
import { userspaceMode } from './userspace/mode.ts';

/** Every mode the configuration can name. */
export type ModeName = ProxyMode;

export const MODES: Readonly<Record<ModeName, ModeDefinition>> = {
  iptables: iptablesMode,
  nftables: nftablesMode,
  ipvs: ipvsMode,
  userspace: userspaceMode,
};

/** Every registered mode except `name`: their leftovers would shadow or duplicate our rules. */
export function otherModes(name: ModeName): ModeDefinition[] {
  return Object.entries(MODES)
    .filter(([key]) => key !== name)
    .map(([, mode]) => mode);
}
