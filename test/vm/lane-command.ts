// The shell command the VM lane runs in the guest: each test file in a Node process of its own,
// one after the other, with kube-proxy's info and warning lines filtered out of the stream (they
// still show in failure messages, indented). A file whose Node process is killed by a signal
// before its tests end is run again, up to three times in all, and says so: Node crashes in the
// emulated guest (SIGSEGV, or V8 internal checks, "Check failed: ...") a few seconds into a file,
// in a different file each time, in about one Node run of ten under load (also with a CPU model
// without AVX: not QEMU's new AVX2 emulation), never on this machine's own CPU. A test that
// fails is not run again. The test files' Node runs with V8's background threads off
// (`--single-threaded`: no concurrent compiling or marking on the other emulated CPU): in one
// trial, 0 of 12 unit-test runs crashed that way against 3 of 16 without; about 10 % slower.

/** The guest's command line for `files`, run from `root` with `node`. */
export function laneCommand(
  root: string,
  files: readonly string[],
  node: string,
  timeoutScale: number,
): string {
  const script = [
    `cd ${root}`,
    'status=0',
    `for f in ${files.join(' ')}; do`,
    '  for attempt in 1 2 3; do',
    `    KUBE_PROXY_TEST_TIMEOUT_SCALE=${String(timeoutScale)} ${node} --single-threaded --test-reporter=spec "$f" 2>&1 | grep -vE '^[IW][0-9]{4} '`,
    // The status of node, not of the filter.
    '    s=${PIPESTATUS[0]}',
    '    [ "$s" -lt 128 ] && break',
    '    echo "vm lane: $f: node was killed by signal $((s - 128)) before its tests ended (attempt $attempt of 3)"',
    '  done',
    '  [ "$s" -eq 0 ] || status=1',
    'done',
    'exit $status',
  ].join('\n');
  return `bash -c '${script.replaceAll("'", "'\\''")}'`;
}
