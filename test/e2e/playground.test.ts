// The lessons of docs/playground.md, end to end: each lesson's commands, taken from the document
// itself, are fed to the real `kube-proxy playground` on stdin, and every line the lesson says the
// learner sees ("what you should see" blocks) must appear in the output, in order. So the doc
// cannot drift from what the playground does. Also: no namespace outlives the playground, after
// `exit` or after Ctrl-C.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KUBE_PROXY_BIN } from '../support/cluster.ts';
import { kernelSkipReason, pollUntil, TIMEOUT_SCALE } from '../support/netns.ts';
import { hereDocument } from '../../src/playground/commands.ts';
import { PROMPT } from '../../src/playground/repl.ts';
import { REPO_ROOT } from '../../src/playground/paths.ts';

interface Step {
  /** The lines typed at the prompt, here-document bodies included. */
  readonly input: string[];
  /** How many of them the playground echoes as commands (here-document bodies are not). */
  readonly commands: number;
  readonly expected: string[];
}

interface Lesson {
  readonly title: string;
  readonly steps: Step[];
}

/** `## Lesson N: …` sections; each ```playground block a step, the next ```output block its expectations. */
function lessonsOf(markdown: string): Lesson[] {
  const lessons: Lesson[] = [];
  let lesson: Lesson | undefined;
  let block: { kind: string; lines: string[] } | undefined;
  for (const line of markdown.split('\n')) {
    if (block) {
      if (line.startsWith('```')) {
        if (lesson && block.kind === 'playground') lesson.steps.push(stepOf(block.lines));
        const last = lesson?.steps.at(-1);
        if (lesson && block.kind === 'output') {
          assert.ok(
            last && last.expected.length === 0,
            `${lesson.title}: an output block without its commands`,
          );
          last.expected.push(...block.lines.filter((l) => l.trim() !== ''));
        }
        block = undefined;
      } else block.lines.push(line);
      continue;
    }
    const heading = /^## (Lesson \d+: .*)$/.exec(line);
    if (heading) {
      lesson = { title: heading[1] ?? '', steps: [] };
      lessons.push(lesson);
    } else if (line.startsWith('## ')) lesson = undefined;
    const fence = /^```(\w*)$/.exec(line);
    if (fence) block = { kind: fence[1] ?? '', lines: [] };
  }
  return lessons;
}

function stepOf(lines: string[]): Step {
  let commands = 0;
  let marker: string | undefined;
  for (const line of lines) {
    if (marker !== undefined) {
      if (line.trim() === marker) marker = undefined;
      continue;
    }
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    commands++;
    marker = hereDocument(line)?.marker;
  }
  return { input: lines, commands, expected: [] };
}

/** An expected line matches an output line holding its `…`-separated pieces in order. */
function matches(expected: string, line: string): boolean {
  let at = 0;
  for (const piece of expected.split('…').map((p) => p.trim())) {
    if (piece === '') continue;
    const found = line.indexOf(piece, at);
    if (found === -1) return false;
    at = found + piece.length;
  }
  return true;
}

/** The first expected line (in order) that no later output line matches, or undefined. */
function firstMissing(expected: readonly string[], output: readonly string[]): string | undefined {
  let at = 0;
  for (const want of expected) {
    while (at < output.length && !matches(want, output[at] ?? '')) at++;
    if (at >= output.length) return want;
    at++;
  }
  return undefined;
}

/** Output lines per step: split at the echoed commands, `step.commands` echoes per step. */
function outputsPerStep(transcript: string, steps: readonly Step[]): string[][] {
  const lines = transcript.split('\n');
  const starts = lines.flatMap((line, i) => (line.startsWith(PROMPT) ? [i] : []));
  const out: string[][] = [];
  let command = 0;
  for (const step of steps) {
    const from = starts[command];
    command += step.commands;
    const to = starts[command] ?? lines.length;
    out.push(from === undefined ? [] : lines.slice(from, to));
  }
  return out;
}

function playgroundNamespaces(prefix: string): string[] {
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  return list
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name.startsWith(prefix));
}

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the playground with `input` on stdin (or, with `interrupt`, SIGINT once it is up). */
function runPlayground(
  input: string,
  options: { interrupt?: boolean; args?: readonly string[] } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(KUBE_PROXY_BIN, ['playground', ...(options.args ?? [])], {
      stdio: ['pipe', 'pipe', 'pipe'],
      cwd: REPO_ROOT,
    });
    let stdout = '';
    let stderr = '';
    const limit = 300_000 * TIMEOUT_SCALE;
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error(`the playground did not finish within ${limit} ms:\n${stdout}\n${stderr}`));
    }, limit);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (options.interrupt && stdout.includes('Type help') && child.exitCode === null) child.kill('SIGINT');
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      // Let the pipes drain before resolving.
      setImmediate(() => resolve({ code, signal, stdout, stderr }));
    });
    if (options.interrupt) child.stdin.write('');
    else child.stdin.end(input);
  });
}

function prefixOf(stdout: string): string {
  const prefix = /namespaces (\S+)\*/.exec(stdout)?.[1];
  assert.ok(prefix, `no namespace prefix in the banner:\n${stdout.slice(0, 2000)}`);
  return prefix;
}

const skip = kernelSkipReason();
const doc = readFileSync(join(REPO_ROOT, 'docs', 'playground.md'), 'utf8');
const lessons = lessonsOf(doc);

test('docs/playground.md has the three lessons, each step with commands and what to see', () => {
  assert.deepEqual(
    lessons.map((l) => l.title.replace(/:.*/, '')),
    ['Lesson 1', 'Lesson 2', 'Lesson 3'],
  );
  for (const lesson of lessons) {
    assert.ok(lesson.steps.length > 0, lesson.title);
    for (const step of lesson.steps) {
      assert.ok(step.commands > 0, `${lesson.title}: a step without commands`);
      assert.ok(step.expected.length > 0, `${lesson.title}: a step without "what you should see"`);
    }
  }
});

async function checkLesson(lesson: Lesson, args: readonly string[], expected: (step: Step) => string[]) {
  const input = `${lesson.steps.flatMap((s) => s.input).join('\n')}\n`;
  const run = await runPlayground(input, { args });
  const context = `\n--- transcript ---\n${run.stdout}\n--- stderr ---\n${run.stderr.slice(-3000)}`;
  assert.equal(run.code, 0, `the playground exited with ${String(run.code)} (a command failed)${context}`);
  const outputs = outputsPerStep(run.stdout, lesson.steps);
  lesson.steps.forEach((step, i) => {
    const missing = firstMissing(expected(step), outputs[i] ?? []);
    assert.equal(
      missing,
      undefined,
      `${lesson.title}, step ${i + 1}: the learner should see ${JSON.stringify(missing)}${context}`,
    );
  });
  assert.match(run.stdout, /every namespace of the playground is gone/);
  assert.deepEqual(playgroundNamespaces(prefixOf(run.stdout)), [], 'namespaces left behind');
}

for (const lesson of lessons) {
  test(`playground: ${lesson.title}`, { skip }, () => checkLesson(lesson, [], (step) => step.expected));
}

// The doc says the lessons behave the same in iptables mode, with iptables-save rule lines: the
// first lesson in that mode, every expected line but the nft rule lines.
test('playground: Lesson 1 in iptables mode', { skip }, async () => {
  const [first] = lessons;
  assert.ok(first);
  await checkLesson(first, ['--proxy-mode', 'iptables'], (step) =>
    step.expected.filter((line) => !/^[+-] \[/.test(line.trim())),
  );
});

test('playground: Ctrl-C removes every namespace it made', { skip }, async () => {
  const run = await runPlayground('', { interrupt: true });
  const prefix = prefixOf(run.stdout);
  assert.ok(run.code !== 0 || run.signal !== null, 'the playground should stop on SIGINT');
  await pollUntil('the namespaces to be gone', () =>
    playgroundNamespaces(prefix).length === 0 ? true : undefined,
  );
});

test(
  'playground: a bad command or manifest is an error naming it, and the session goes on',
  { skip },
  async () => {
    const input = [
      'frobnicate',
      'get widgets',
      'apply -f - <<EOF',
      'apiVersion: networking.k8s.io/v1',
      'kind: Ingress',
      'metadata: { name: web }',
      'EOF',
      'apply -f - <<EOF',
      'apiVersion: v1',
      'kind: Pod',
      'metadata: { name: bad }',
      'spec: { nodeName: node7 }',
      'EOF',
      'curl --from nobody 10.96.0.10:80',
      'get pods',
      '',
    ].join('\n');
    const run = await runPlayground(input);
    assert.equal(run.code, 1, `failed commands make a scripted run exit 1:\n${run.stdout}`);
    const want = [
      'error: unknown command "frobnicate"',
      'error: the server doesn\'t have a resource type "widgets"',
      'no matches for kind "Ingress" in version "networking.k8s.io/v1"',
      'error: Pod bad: spec.nodeName: the playground has node1 and node2, not "node7"',
      'error: --from "nobody": no such pod',
      'client  1/1',
    ];
    assert.equal(firstMissing(want, run.stdout.split('\n')), undefined, run.stdout);
    assert.deepEqual(playgroundNamespaces(prefixOf(run.stdout)), []);
  },
);
