// The --help text in pflag's layout: every flag sorted by name, type word, usage, default and
// deprecation notice, with continuation lines indented under the usage column.
import type { FlagDef } from './def.ts';
import { FLAGS } from './table.ts';

const HELP_INTRO = `The Kubernetes network proxy runs on each node. It watches Services and EndpointSlices
through the API server and programs the node's packet filter (iptables or nftables) so that
traffic to a Service's cluster IP, node ports, external IPs and load balancer IPs reaches one of
its endpoints.

Usage:
  kube-proxy [flags]

Flags:
`;

/** The --help text: every flag, sorted by name, in pflag's column layout. */
export function renderHelp(): string {
  const help: Pick<FlagDef, 'name' | 'shorthand' | 'typeName' | 'usage' | 'defaultText'> = {
    name: 'help',
    shorthand: 'h',
    typeName: '',
    usage: 'help for kube-proxy',
    defaultText: '',
  };
  const all = [...FLAGS, help].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const heads = all.map((f) => {
    const names = f.shorthand === undefined ? `      --${f.name}` : `  -${f.shorthand}, --${f.name}`;
    return f.typeName === '' ? names : `${names} ${f.typeName}`;
  });
  const width = Math.max(...heads.map((h) => h.length));
  const lines = all.map((f, i) => {
    let usage = f.usage;
    if (f.defaultText !== '') usage += ` (default ${f.defaultText})`;
    if ('deprecated' in f && typeof f.deprecated === 'string') usage += ` (DEPRECATED: ${f.deprecated})`;
    const indent = ' '.repeat(width + 3);
    const head = (heads[i] ?? '').padEnd(width);
    return `${head}   ${usage.replaceAll('\n', `\n${indent}`)}`;
  });
  return `${HELP_INTRO}${lines.join('\n')}\n`;
}
