// The single executable's entry point (scripts/release/build.ts bundles it). src/cli/main.ts runs
// main() only when started as dist/cli/main.js, which a bundled executable never is, so this file
// starts it the same way: exit code from main(), exit 1 with a logged error on a throw.
import { main } from '../../src/cli/main.ts';
import { log } from '../../src/log/log.ts';

// In a single executable application argv[1] is the executable again, as argv[0] is node's.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    log.error('kube-proxy failed', error);
    process.exit(1);
  },
);
