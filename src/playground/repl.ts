// The playground's prompt (node:readline). On a terminal: a `playground>` prompt, Ctrl-C or
// Ctrl-D leave. Otherwise (a pipe, a file, a test): commands are read from stdin one per line and
// echoed before their output, so a transcript reads like a session. `apply -f -` takes the lines
// after it, up to a line `...` (YAML's document end) or the end of input; `apply -f - <<EOF`
// takes them up to the marker.
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { CommandError, hereDocument, parseCommand, type Command } from './commands.ts';

export interface ReplIO {
  readonly input: Readable;
  readonly output: Writable;
  readonly terminal: boolean;
}

export interface CommandRunner {
  run(command: Command, stdin?: string): Promise<boolean>;
}

export const PROMPT = 'playground> ';

/** Reads and runs commands until exit or the end of input; resolves with the number of failed commands. */
export async function runRepl(io: ReplIO, runner: CommandRunner): Promise<number> {
  const rl = createInterface({ input: io.input, output: io.output, terminal: io.terminal, prompt: PROMPT });
  const write = (text: string) => io.output.write(text);
  rl.on('SIGINT', () => {
    write('\n');
    rl.close();
  });
  const lines = rl[Symbol.asyncIterator]();
  const next = async (): Promise<string | undefined> => {
    const result = await lines.next();
    return result.done === true ? undefined : result.value;
  };
  let failed = 0;
  if (io.terminal) rl.prompt();
  for (;;) {
    const raw = await next();
    if (raw === undefined) break;
    if (!io.terminal && raw.trim() !== '' && !raw.trimStart().startsWith('#')) write(`${PROMPT}${raw}\n`);
    let line = raw;
    let body: string | undefined;
    const here = hereDocument(raw);
    try {
      if (here) {
        line = here.line;
        body = await readBody(next, (l) => l.trim() === here.marker);
      }
      const command = parseCommand(line);
      if (command.verb === 'exit') break;
      if (
        (command.verb === 'apply' || command.verb === 'delete') &&
        'file' in command &&
        command.file === '-' &&
        body === undefined
      ) {
        body = await readBody(next, (l) => l.trim() === '...');
      }
      if (!(await runner.run(command, body))) failed++;
    } catch (error) {
      if (!(error instanceof CommandError)) throw error;
      write(`error: ${error.message}\n`);
      failed++;
    }
    if (io.terminal) rl.prompt();
  }
  rl.close();
  return failed;
}

async function readBody(
  next: () => Promise<string | undefined>,
  isEnd: (line: string) => boolean,
): Promise<string> {
  const body: string[] = [];
  for (;;) {
    const line = await next();
    if (line === undefined || isEnd(line)) break;
    body.push(line);
  }
  return `${body.join('\n')}\n`;
}
