// Settings of the IPVS mode and their validation (modes-ipvs-userspace.md 1.3, 1.12). Like
// upstream since v1.27, any scheduler the kernel can load is accepted: the proxier probes it at
// start (a virtual server created with it), so a name the kernel does not know fails there with
// a clear error. The name ends up in `ipvsadm` arguments and a kernel module name, so it must
// look like one (the kernel's limit is 15 characters).
import type { IPFamily } from '../../model/types.ts';
import type { LocalTrafficDetector } from '../../plan/local-traffic.ts';
import { localTrafficDetectorProblems } from '../../plan/local-traffic.ts';
import { parseCIDR } from '../../util/ip.ts';

/** ipvsadm 1.31's list, each loaded by the kernel as ip_vs_<name> (newer kernels add more). */
export const IPVS_SCHEDULERS = [
  'rr',
  'wrr',
  'lc',
  'wlc',
  'lblc',
  'lblcr',
  'dh',
  'sh',
  'sed',
  'nq',
  'fo',
  'ovf',
  'mh',
] as const;

/** A scheduler name as the kernel knows it (ip_vs_<name>). */
export type IpvsScheduler = string;

export const DEFAULT_SCHEDULER: IpvsScheduler = 'rr';

const SCHEDULER_NAME = /^[a-z0-9_]{1,15}$/;

/** What --ipvs-* flags and the ipvs config section give the mode (config/effective.ts EffectiveIPVS). */
export interface IpvsSettings {
  /** '' means rr. */
  readonly scheduler: string;
  readonly excludeCIDRs: readonly string[];
  readonly strictARP: boolean;
  readonly tcpTimeoutSeconds: number;
  readonly tcpFinTimeoutSeconds: number;
  readonly udpTimeoutSeconds: number;
}

export const DEFAULT_IPVS_SETTINGS: IpvsSettings = {
  scheduler: '',
  excludeCIDRs: [],
  strictARP: false,
  tcpTimeoutSeconds: 0,
  tcpFinTimeoutSeconds: 0,
  udpTimeoutSeconds: 0,
};

/** The scheduler the flag names ('' is rr), or an error naming the flag. */
export function parseScheduler(text: string): { scheduler: IpvsScheduler } | { error: string } {
  if (text === '') return { scheduler: DEFAULT_SCHEDULER };
  return SCHEDULER_NAME.test(text)
    ? { scheduler: text }
    : {
        error: `--ipvs-scheduler (ipvs.scheduler): ${JSON.stringify(text)} is not an IPVS scheduler name (a kernel module ip_vs_<name>, e.g. ${IPVS_SCHEDULERS.join(', ')})`,
      };
}

/** What the renderers need for one family. */
export interface IpvsOptions {
  readonly family: IPFamily;
  readonly scheduler: IpvsScheduler;
  readonly masqueradeBit: number;
  readonly masqueradeAll: boolean;
  readonly localDetector: LocalTrafficDetector;
  /** MASQUERADE gets `--random-fully`. */
  readonly randomFully: boolean;
}

/** Problems with options, each naming the field; empty when usable. */
export function validateIpvsOptions(options: IpvsOptions, settings: IpvsSettings): string[] {
  const errors: string[] = [];
  if (!Number.isInteger(options.masqueradeBit) || options.masqueradeBit < 0 || options.masqueradeBit > 31)
    errors.push(`masqueradeBit: ${options.masqueradeBit} is not an integer in 0..31`);
  errors.push(...localTrafficDetectorProblems(options.localDetector, options.family));
  const scheduler = parseScheduler(settings.scheduler);
  if ('error' in scheduler) errors.push(scheduler.error);
  for (const cidr of settings.excludeCIDRs)
    if (!parseCIDR(cidr)) errors.push(`ipvs.excludeCIDRs: ${JSON.stringify(cidr)} is not a CIDR`);
  for (const [field, value] of [
    ['ipvs.tcpTimeout', settings.tcpTimeoutSeconds],
    ['ipvs.tcpFinTimeout', settings.tcpFinTimeoutSeconds],
    ['ipvs.udpTimeout', settings.udpTimeoutSeconds],
  ] as const)
    if (!Number.isInteger(value) || value < 0)
      errors.push(`${field}: ${value} is not a whole number of seconds >= 0`);
  return errors;
}
