// The userspace mode: planned, not implemented yet. The CLI refuses it with this message before
// touching the host; its cleaner has nothing of ours to remove.
import { notImplementedMode } from '../common/mode.ts';

export const userspaceMode = notImplementedMode(
  'userspace',
  'proxy mode "userspace" is not implemented yet; use --proxy-mode=nftables or iptables',
);
