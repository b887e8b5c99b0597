// Rules as `iptables-save` prints them and as we write them, brought to one form so that the two
// compare equal exactly when the kernel holds the rule we wrote. iptables-save reorders matches
// (`-d` and `-p` first), adds `/32` (`/128`) to addresses, re-quotes comments, prints
// probabilities with 11 decimals, spells `--or-mark 0x00004000` as `--set-xmark 0x4000/0x4000`
// and adds options that are defaults (`--reject-with icmp-port-unreachable`, `--mask
// 255.255.255.255 --rsource`). Checked against iptables 1.8.9 (nft and legacy backends) by the
// unit test's captured save output and the end-to-end verify test.
import { parseCIDR } from '../../util/ip.ts';

/** Splits a rule line into arguments as a shell would (double quotes, with `\"` escapes). */
export function ruleArgs(line: string): string[] {
  const args: string[] = [];
  let current = '';
  let quoted = false;
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const char = line[i] as string;
    if (char === '\\' && quoted && line[i + 1] === '"') {
      current += '"';
      i++;
    } else if (char === '"') {
      quoted = !quoted;
      inWord = true;
    } else if (char === ' ' && !quoted) {
      if (inWord) args.push(current);
      current = '';
      inWord = false;
    } else {
      current += char;
      inWord = true;
    }
  }
  if (inWord) args.push(current);
  return args;
}

function hex(text: string): string {
  const value = Number(text);
  return Number.isFinite(value) ? `0x${(value >>> 0).toString(16)}` : text;
}

function markValue(text: string): string {
  const [value = '', mask] = text.split('/');
  return mask === undefined ? hex(value) : `${hex(value)}/${hex(mask)}`;
}

function address(text: string): string {
  const withPrefix = text.includes('/') ? text : `${text}/${text.includes(':') ? 128 : 32}`;
  return parseCIDR(withPrefix)?.text ?? text;
}

/** Options that iptables-save adds with their default value: dropped on both sides. */
const DEFAULTS = new Set([
  '--reject-with icmp-port-unreachable',
  '--reject-with icmp6-port-unreachable',
  '--mask 255.255.255.255',
  '--mask ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
  '--rsource',
]);

/**
 * A rule's canonical text: its option groups (an option with its values, `!` included),
 * normalised and sorted. `-A CHAIN` is not part of it.
 */
export function canonicalRule(args: readonly string[]): string {
  const groups: string[][] = [];
  let negate = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '!') {
      negate = true;
      continue;
    }
    if (arg === '-A' || arg === '--append') {
      i++;
      continue;
    }
    if (arg.startsWith('-')) {
      groups.push(negate ? ['!', arg] : [arg]);
      negate = false;
    } else {
      groups[groups.length - 1]?.push(arg);
    }
  }
  const texts = groups.map((group) => {
    const bang = group[0] === '!' ? '! ' : '';
    const [option = '', ...values] = bang ? group.slice(1) : group;
    let normalised: string[] = values;
    let name = option;
    switch (option) {
      case '-s':
      case '--source':
        name = '-s';
        normalised = values.map(address);
        break;
      case '-d':
      case '--destination':
        name = '-d';
        normalised = values.map(address);
        break;
      case '--probability':
        normalised = values.map((v) => Number(v).toFixed(6));
        break;
      case '--mark':
      case '--set-xmark':
        normalised = values.map(markValue);
        break;
      case '--or-mark': {
        const mark = hex(values[0] ?? '');
        name = '--set-xmark';
        normalised = [`${mark}/${mark}`];
        break;
      }
      case '--xor-mark':
        name = '--set-xmark';
        normalised = [`${hex(values[0] ?? '')}/0x0`];
        break;
      default:
    }
    return `${bang}${[name, ...normalised].join(' ')}`;
  });
  // nfacct counter matches count packets and decide nothing: whether a host has the counters
  // (iptables/nfacct.ts) is no difference in what the rules do.
  return texts
    .filter((text) => !DEFAULTS.has(text) && text !== '-m nfacct' && !text.startsWith('--nfacct-name '))
    .sort()
    .join(' ');
}

/** The comment of a rule, if it has one. */
export function ruleComment(args: readonly string[]): string | undefined {
  const index = args.indexOf('--comment');
  return index < 0 ? undefined : args[index + 1];
}

/** Rules by chain, in order, from restore or save text (`:CHAIN` declarations included). */
export function rulesByChain(text: string): Map<string, string[][]> {
  const chains = new Map<string, string[][]>();
  for (const line of text.split('\n')) {
    if (line.startsWith(':')) {
      const name = line.slice(1).split(' ')[0] ?? '';
      if (!chains.has(name)) chains.set(name, []);
    } else if (line.startsWith('-A ')) {
      const args = ruleArgs(line);
      const chain = args[1] ?? '';
      const list = chains.get(chain) ?? [];
      list.push(args);
      chains.set(chain, list);
    }
  }
  return chains;
}
