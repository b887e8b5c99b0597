// An Endpoint as the plan hands it to the userspace data path, for the data-path tests.
import type { Endpoint } from '../../../src/model/types.ts';

export function endpointAt(ip: string, port: number): Endpoint {
  return {
    ip,
    port,
    endpoint: ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`,
    ready: true,
    serving: true,
    terminating: false,
    nodeName: '',
    isLocal: false,
    zoneHints: undefined,
    nodeHints: undefined,
  };
}
