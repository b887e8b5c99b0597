// component-base's z-pages on the metrics server, on by default in v1.36 (ComponentFlagz,
// ComponentStatusz): /flagz lists the command-line flags with their values, /statusz what runs
// and since when. Both are text for people by default; /flagz also answers the structured form
// when the client asks for it by its Accept header.
import type { IncomingMessage, ServerResponse } from 'node:http';

const TEXT = { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' };
const WARNING =
  'Warning: This endpoint is not meant to be machine parseable, has no formatting compatibility ' +
  'guarantees and is for debugging purposes only.';

export interface ZPagesSource {
  readonly component: string;
  /** Every flag with its value (as set, else its default), by name. */
  readonly flags: () => Readonly<Record<string, string>>;
  readonly startTime: Date;
  readonly version: string;
  /** The paths the server answers, for /statusz. */
  readonly paths: readonly string[];
  /** The ComponentFlagz and ComponentStatusz gates (on by default in v1.36). */
  readonly flagz: boolean;
  readonly statusz: boolean;
}

function wantsStructuredFlagz(req: IncomingMessage): boolean {
  const accept = req.headers.accept ?? '';
  return /application\/json/.test(accept) && /as=Flagz/.test(accept);
}

function formatUptime(ms: number): string {
  const total = Math.floor(ms / 1000);
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  return `${hours}hr ${minutes}min ${seconds}sec`;
}

/** Answers whether it handled the request. */
export function zpagesRoutes(source: ZPagesSource, now: () => Date = () => new Date()) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/flagz' && source.flagz) {
      const flags = source.flags();
      const names = Object.keys(flags).sort();
      if (wantsStructuredFlagz(req)) {
        res.writeHead(200, { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' });
        res.end(
          JSON.stringify({
            kind: 'Flagz',
            apiVersion: 'config.k8s.io/v1alpha1',
            metadata: { name: source.component },
            flags: Object.fromEntries(names.map((name) => [name, flags[name] ?? ''])),
          }),
        );
        return true;
      }
      res.writeHead(200, TEXT);
      const lines = names.map((name) => `${name}=${flags[name] ?? ''}`);
      res.end(`\n${source.component} flags\n${WARNING}\n\n${lines.join('\n')}\n`);
      return true;
    }
    if (path === '/statusz' && source.statusz) {
      const at = now();
      res.writeHead(200, TEXT);
      res.end(
        `\n${source.component} statusz\n${WARNING}\n\n` +
          `Started: ${source.startTime.toUTCString()}\n` +
          `Up: ${formatUptime(at.getTime() - source.startTime.getTime())}\n` +
          `Go version: node${process.versions.node}\n` +
          `Binary version: ${source.version}\n` +
          `Emulation version: \n` +
          `Paths: ${[...source.paths].sort().join(' ')}\n`,
      );
      return true;
    }
    return false;
  };
}
