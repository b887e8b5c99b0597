// The text form of an Explanation: what `kube-proxy explain -o text` prints. A formatter over the
// JSON object only, so the text is the same whether the explanation came from the live proxy, a
// dump or manifests.
import type { Explanation, PathStep } from './types.ts';

const ARRIVAL: Readonly<Record<Explanation['packet']['arrival']['from'], string>> = {
  pod: 'from a pod',
  node: 'from the node itself',
  external: 'from outside the cluster',
};

function fraction(chance: number): string {
  const n = Math.round(1 / chance);
  return Math.abs(1 / n - chance) < 1e-9 ? `1/${n}` : chance.toFixed(3);
}

function table(rows: readonly (readonly string[])[], indent: string): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    `${indent}${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')}`.trimEnd(),
  );
}

function pathLines(path: readonly PathStep[]): string[] {
  const lines: string[] = [];
  let place = '';
  for (const step of path) {
    const here = `${step.hook ?? ''}${step.priority !== undefined ? ` ${step.priority}` : ''}`;
    if (here !== place) {
      lines.push(`  ${here || step.table}`);
      place = here;
    }
    if (step.why !== undefined) lines.push(`    (${step.why})`);
    const kernel = (present: boolean | undefined): string =>
      present === undefined ? '' : present ? '  [in kernel]' : '  [MISSING FROM THE KERNEL]';
    lines.push(
      `    ${step.table} ${step.chain}: ${step.rule}${step.matched ? '' : '  (no match)'}${step.element ? '' : kernel(step.inKernel)}`,
    );
    if (step.element) lines.push(`      @${step.element.set}: ${step.element.text}${kernel(step.inKernel)}`);
  }
  return lines;
}

export function formatExplanation(e: Explanation): string {
  const out: string[] = [];
  const p = e.packet;
  const hook = p.arrival.hook;
  out.push(
    `Packet     ${p.protocol} ${p.src} -> ${p.dst}:${p.dport}, ${ARRIVAL[p.arrival.from]} (${hook}${p.arrival.inferred ? ', inferred' : ''}), ${e.source.family}`,
  );
  out.push(
    `State      ${e.source.kind}${e.source.from ? ` ${e.source.from}` : ''} · node ${e.source.node} · ${e.source.mode}${e.source.modelGeneration !== undefined ? ` · generation ${e.source.modelGeneration}` : ''}`,
  );
  const match = e.match;
  switch (match.kind) {
    case 'none':
      out.push('Service    none: not a Service address this proxy knows');
      for (const skipped of match.notProgrammed ?? [])
        out.push(`           ${skipped.service} is not programmed: ${skipped.reason}`);
      break;
    case 'clusterIPOtherPort':
      out.push(`Service    ${match.servicePort ?? ''}: its cluster IP, but not a port it serves`);
      break;
    default:
      out.push(`Service    ${match.servicePort ?? ''}   (${match.kind})`);
  }
  if (e.decisions.length > 0) {
    out.push('', 'Decisions');
    out.push(
      ...table(
        e.decisions.map((d) => [
          d.step,
          `${d.outcome}: ${d.because}${d.fields.length > 0 ? ` [${d.fields.join(', ')}]` : ''}`,
        ]),
        '  ',
      ),
    );
  }
  if (e.endpoints.length > 0) {
    out.push('', 'Endpoints');
    const rows: string[][] = [['ENDPOINT', 'NODE', 'READY', 'ELIGIBLE', 'SLOT', 'CHANCE', 'WHY']];
    for (const ep of e.endpoints) {
      rows.push([
        ep.endpoint,
        ep.node || '-',
        ep.ready ? 'yes' : ep.serving && ep.terminating ? 'terminating' : 'no',
        ep.eligible ? 'yes' : 'no',
        ep.slot !== undefined ? String(ep.slot) : '-',
        ep.chance !== undefined
          ? `${fraction(ep.chance)}${ep.ruleProbability !== undefined ? ` (rule p=${ep.ruleProbability.toFixed(4)})` : ''}`
          : '-',
        ep.why ?? '',
      ]);
    }
    out.push(...table(rows, '  '));
  }
  const v = e.verdict;
  const to = v.to && v.to.length > 0 ? ` to ${v.to.join(' or ')}` : '';
  out.push(
    '',
    `Verdict    ${v.action}${to}${v.action === 'DNAT' ? (v.snat ? ', source masqueraded' : ', client address kept') : ''}`,
    `           ${v.because}`,
  );
  if (e.path.length > 0) {
    out.push('', `Path (${e.pathSyntax ?? 'rules'}, rules that matched, in order)`);
    out.push(...pathLines(e.path));
  }
  if (e.conntrack) {
    const c = e.conntrack;
    out.push(
      '',
      `Conntrack  ${c.error ? `not read: ${c.error}` : `${c.flows.length} existing flow${c.flows.length === 1 ? '' : 's'} for this tuple`} (${c.read})`,
    );
    for (const flow of c.flows) {
      const where = flow.endpoint ? `DNATed to ${flow.endpoint}` : 'not DNATed';
      out.push(
        `  ${flow.orig}  ${flow.state ?? ''}  ${where}${flow.stale ? '  [STALE: endpoint no longer exists]' : ''}`.replace(
          / {3,}/g,
          '  ',
        ),
      );
    }
  }
  if (e.hints.length > 0) {
    out.push('', 'Hints');
    for (const hint of e.hints) out.push(`  - ${hint}`);
  }
  if (e.caveats.length > 0) {
    out.push('', 'Caveats');
    for (const caveat of e.caveats) out.push(`  - ${caveat}`);
  }
  return `${out.join('\n')}\n`;
}
