// Following the host's interface addresses for backends whose rules name them (nftables'
// @nodeport-ips with `primary` or CIDR --nodeport-addresses). There is no netlink in Node.js, so
// the addresses are read on a timer; a read is one getifaddrs() call in the process (no tool
// runs), cheap enough every few seconds. A change asks those backends' sync loops for a sync,
// which re-reads the addresses and updates the set in place.
import { log } from '../log/log.ts';

/** How often the addresses are read (or syncPeriod when that is shorter). */
export const HOST_ADDRESS_POLL_MS = 5_000;

export interface HostAddressWatch {
  stop(): void;
}

/** The addresses as one comparable text (order-free). */
export function addressKey(addresses: readonly string[]): string {
  return [...new Set(addresses)].sort().join(',');
}

/**
 * Calls `onChange` whenever the set of addresses `read` returns differs from the last one seen
 * (the first read is the baseline). A failing read is logged and skipped.
 */
export function watchHostAddresses(
  read: () => readonly string[],
  periodMs: number,
  onChange: () => void,
): HostAddressWatch {
  let known: string | undefined;
  const poll = (): void => {
    let key: string;
    try {
      key = addressKey(read());
    } catch (error) {
      log.error('Failed to read the host addresses', error);
      return;
    }
    if (known !== undefined && key !== known) {
      log.info('The host addresses changed', { addresses: key });
      onChange();
    }
    known = key;
  };
  poll();
  const timer = setInterval(poll, periodMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
