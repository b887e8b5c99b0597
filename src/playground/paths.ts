// Where the playground's helper scripts and the repository root are, whether this code runs as
// TypeScript from src/ (tests, the demo) or compiled from dist/ (`kube-proxy playground`): both
// trees keep the same layout, two levels below the root.
import { fileURLToPath } from 'node:url';

const EXTENSION = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

/** A script next to this module (`echo-server`, `probe`, `apiserver-main`, `relay`), runnable by node. */
export function siblingScript(name: string): string {
  return fileURLToPath(new URL(`./${name}${EXTENSION}`, import.meta.url));
}

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
