import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  ExecError,
  execTool,
  inSlices,
  inputText,
  processCpuMs,
  type ToolProgress,
} from '../../../src/util/exec.ts';

describe('execTool', () => {
  test('a string input reaches the tool whole', async () => {
    const result = await execTool('cat', [], { input: 'one\ntwo\n' });
    assert.equal(result.stdout, 'one\ntwo\n');
  });

  test('pieces are produced only as the pipe takes them, and all arrive in order', async () => {
    let produced = 0;
    const piece = `${'x'.repeat(65_535)}\n`;
    function* pieces(): Generator<string> {
      for (let i = 0; i < 200; i++) {
        produced++;
        yield piece;
      }
    }
    const expected = createHash('sha256').update(piece.repeat(200)).digest('hex');
    // The tool reads slowly at first: the writer must wait for it instead of queueing 13 MB.
    const result = await execTool('sh', ['-c', 'sleep 0.2; sha256sum'], { input: pieces() });
    assert.equal(result.stdout.split(' ')[0], expected);
    assert.equal(produced, 200);
  });

  test('pieces are not all produced before the tool reads (backpressure)', async () => {
    let produced = 0;
    function* pieces(): Generator<string> {
      for (let i = 0; i < 400; i++) {
        produced++;
        yield `${'y'.repeat(65_535)}\n`;
      }
    }
    const run = execTool('sh', ['-c', 'sleep 0.3; wc -c'], { input: pieces() });
    // While the tool sleeps, the pipe (64 KiB) and stream buffer fill, and production stops.
    await new Promise((resolve) => setTimeout(resolve, 150));
    const producedWhenToolStarted = produced;
    const result = await run;
    assert.equal(result.stdout.trim(), String(400 * 65_536));
    assert.ok(producedWhenToolStarted < 50, `produced ${producedWhenToolStarted} pieces before any read`);
  });

  test('a failing producer kills the tool before it sees the end of its input', async () => {
    function* pieces(): Generator<string> {
      yield 'partial\n';
      throw new Error('renderer broke');
    }
    // `cat > file` would keep a truncated copy if it saw the end of its input and exited 0.
    const error = await execTool('sh', ['-c', 'cat >/dev/null && echo finished'], { input: pieces() }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(error instanceof ExecError, String(error));
    assert.match(error.message, /input failed: renderer broke/);
    assert.doesNotMatch(error.stdout, /finished/);
  });

  test('inputText joins pieces', () => {
    assert.equal(inputText(['a', 'b\n']), 'ab\n');
    assert.equal(inputText('x'), 'x');
    assert.equal(inputText(undefined), '');
  });
});

test('inSlices cuts a text into consecutive slices that make it up again', () => {
  const text = 'abcdefghij'.repeat(1000);
  const slices = [...inSlices(text, 3000)];
  assert.deepEqual(
    slices.map((slice) => slice.length),
    [3000, 3000, 3000, 1000],
  );
  assert.equal(slices.join(''), text);
  assert.deepEqual([...inSlices('')], []);
});

test('with stallTimeoutMs, a tool that does nothing (blocked, hung) is killed and says why', async () => {
  const started = Date.now();
  await assert.rejects(
    execTool('sleep', ['30'], { stallTimeoutMs: 400 }),
    (error: unknown) => error instanceof ExecError && /made no progress for \d+ s/.test(error.message),
  );
  assert.ok(Date.now() - started < 10_000, 'killed long before it would have ended');
});

test('with stallTimeoutMs, a tool that keeps working is never killed, however long, and reports progress', async () => {
  const reports: ToolProgress[] = [];
  // Busy for 1.5 s: far beyond the stall limit, but its CPU time moves all along.
  const result = await execTool(
    process.execPath,
    ['-e', 'const t = Date.now(); while (Date.now() - t < 1500); console.log("done")'],
    { stallTimeoutMs: 300, progressEveryMs: 200, onProgress: (p) => reports.push(p) },
  );
  assert.equal(result.stdout.trim(), 'done');
  assert.ok(reports.length >= 2, `progress reported (${String(reports.length)} times)`);
  assert.ok(reports.every((r) => (r.cpuMs ?? 0) >= 0 && r.elapsedMs > 0));
  assert.ok((reports.at(-1)?.cpuMs ?? 0) > 0, 'the CPU time it used is reported');
});

test('processCpuMs reads this process and is undefined for a process that does not exist', () => {
  assert.equal(typeof processCpuMs(process.pid), 'number');
  assert.equal(processCpuMs(2 ** 30), undefined);
});

test('onInputTaken fires once the pipe has taken the whole input, before the tool is done', async () => {
  let takenAt = 0;
  const start = Date.now();
  // The tool reads everything, then works on for a while: the input is taken long before it ends.
  const result = await execTool('sh', ['-c', 'wc -c; sleep 0.5; echo done'], {
    input: 'x'.repeat(1 << 20),
    onInputTaken: () => (takenAt = Date.now()),
  });
  const exitedAt = Date.now();
  assert.match(result.stdout, /^\s*1048576\ndone\n$/);
  assert.ok(takenAt > start, 'called');
  assert.ok(exitedAt - takenAt >= 400, `taken ${String(exitedAt - takenAt)} ms before the exit`);
});
