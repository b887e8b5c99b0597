import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { ExecError, execTool, inSlices, inputText } from '../../../src/util/exec.ts';

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
