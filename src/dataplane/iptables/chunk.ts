// A large full sync as a sequence of small restores. iptables-nft-restore is quadratic in the
// number of chains declared in one input (kernel-notes.md: 1k Services 5 s, 4k 4 min 38 s, 10k
// about half an hour), so one input of 10k Services never finishes; the same rules in inputs of
// about a thousand chains cost a fraction of a second each.
//
// Every Service stays all-or-nothing at every moment: the chains of one Service (its service,
// local, external and firewall chains and the endpoint chains they jump to) always travel in the
// same input, which the kernel commits atomically; those inputs come first, while the old
// KUBE-SERVICES (and the other entry chains) still point at whatever was there before; the last
// input rewrites the entry chains, so new Services become reachable only once every chain they
// need exists, and deletes the stale chains, now unreferenced. The filter table travels whole in
// the last input. Pure.

/** The chains that belong to one Service port (and its endpoints). */
const PER_SERVICE_CHAIN = /^KUBE-(SVC|SVL|EXT|FW|SEP)-/;

interface Section {
  readonly table: string;
  readonly lines: string[];
}

function sections(text: string): Section[] | undefined {
  const out: Section[] = [];
  let current: Section | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('*')) {
      if (current !== undefined) return undefined;
      current = { table: line.slice(1), lines: [] };
    } else if (line === 'COMMIT') {
      if (current === undefined) return undefined;
      out.push(current);
      current = undefined;
    } else if (current === undefined) {
      return undefined;
    } else {
      current.lines.push(line);
    }
  }
  return current === undefined ? out : undefined;
}

/** `-A CHAIN ... -j TARGET` / `-g TARGET` → TARGET. */
function jumpTarget(rule: string): string | undefined {
  const match = / -[jg] (\S+)/.exec(rule);
  return match?.[1];
}

class UnionFind {
  private readonly parent = new Map<string, string>();
  find(x: string): string {
    let root = x;
    for (let p = this.parent.get(root); p !== undefined && p !== root; p = this.parent.get(root)) root = p;
    // Path compression.
    for (let y = x; y !== root;) {
      const next = this.parent.get(y) ?? root;
      this.parent.set(y, root);
      y = next;
    }
    return root;
  }
  union(a: string, b: string): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent.set(rb, ra);
  }
}

/**
 * The inputs to apply one after another in place of `text` (a full iptables-restore input), each
 * declaring about `maxChains` chains at most (a Service whose chains are more goes whole in its own
 * input). `[text]` when splitting would not help or the text is not of the expected shape.
 */
export function chunkRestore(text: string, maxChains: number): string[] {
  const parsed = sections(text);
  const nat = parsed?.find((s) => s.table === 'nat');
  if (parsed === undefined || nat === undefined) return [text];

  const declared = new Set<string>();
  const declaration = new Map<string, string>();
  const rules = new Map<string, string[]>();
  /** Stale chains (declared to flush them, then `-X`): deleted in the last input, with the rest. */
  const deleted = new Set<string>();
  for (const line of nat.lines) {
    if (line.startsWith('-X ')) deleted.add(line.slice(3).trim());
  }
  for (const line of nat.lines) {
    if (line.startsWith(':')) {
      const chain = line.slice(1).split(' ', 1)[0] ?? '';
      declared.add(chain);
      declaration.set(chain, line);
    } else if (line.startsWith('-A ')) {
      const chain = line.split(' ', 3)[1] ?? '';
      let list = rules.get(chain);
      if (list === undefined) rules.set(chain, (list = []));
      list.push(line);
    }
  }
  const perService = [...declared].filter((chain) => PER_SERVICE_CHAIN.test(chain) && !deleted.has(chain));
  if (perService.length <= maxChains) return [text];

  // Group the per-Service chains that jump to each other; note the other chains they need.
  const groups = new UnionFind();
  const helpers = new Set<string>();
  for (const chain of perService) {
    for (const rule of rules.get(chain) ?? []) {
      const target = jumpTarget(rule);
      if (target === undefined || !target.startsWith('KUBE-')) continue;
      if (PER_SERVICE_CHAIN.test(target)) {
        // A jump to a Service chain this text does not write: not a full sync's shape.
        if (!declared.has(target) || deleted.has(target)) return [text];
        groups.union(chain, target);
      } else {
        if (!declared.has(target)) return [text];
        helpers.add(target);
      }
    }
  }
  const members = new Map<string, string[]>();
  for (const chain of perService) {
    const root = groups.find(chain);
    let list = members.get(root);
    if (list === undefined) members.set(root, (list = []));
    list.push(chain);
  }

  const chunks: string[] = [];
  let decls: string[] = [];
  let body: string[] = [];
  let count = 0;
  const flush = () => {
    if (count === 0) return;
    // The chains Service chains jump to (KUBE-MARK-MASQ) first: constant content, rewritten
    // atomically, and present from the first input on.
    const helperLines =
      chunks.length === 0
        ? [...helpers].flatMap((chain) => [declaration.get(chain) ?? '', ...(rules.get(chain) ?? [])])
        : [];
    chunks.push(['*nat', ...helperLines, ...decls, ...body, 'COMMIT', ''].join('\n'));
    decls = [];
    body = [];
    count = 0;
  };
  for (const group of members.values()) {
    if (count > 0 && count + group.length > maxChains) flush();
    for (const chain of group) {
      decls.push(declaration.get(chain) ?? '');
      body.push(...(rules.get(chain) ?? []));
    }
    count += group.length;
  }
  flush();
  if (chunks.length <= 1) return [text];

  // The last input: everything else, in the original order (filter whole; nat's entry chains,
  // helpers again, and the deletions of stale chains).
  const moved = new Set(perService);
  const last = parsed.map((section) => {
    const lines =
      section === nat
        ? section.lines.filter((line) => {
            if (line.startsWith(':')) return !moved.has(line.slice(1).split(' ', 1)[0] ?? '');
            if (line.startsWith('-A ')) return !moved.has(line.split(' ', 3)[1] ?? '');
            return true;
          })
        : section.lines;
    return [`*${section.table}`, ...lines, 'COMMIT'].join('\n');
  });
  chunks.push(`${last.join('\n')}\n`);
  return chunks;
}
