// The ipvs mode: accepted by the configuration, not implemented yet. The CLI refuses it with this
// message before touching the host; its cleaner has nothing of ours to remove.
import { notImplementedMode } from '../common/mode.ts';

export const ipvsMode = notImplementedMode(
  'ipvs',
  'proxy mode "ipvs" is not implemented yet; use --proxy-mode=nftables or iptables',
);
