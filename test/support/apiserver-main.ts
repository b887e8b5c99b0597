// Moved to src/playground/apiserver-main.ts (`kube-proxy playground` ships it); kept here so tests
// import it, or run it as a script, from where they always did.
import { runApiServerMain } from '../../src/playground/apiserver-main.ts';

export { readManifests, runApiServerMain } from '../../src/playground/apiserver-main.ts';

if (import.meta.main) runApiServerMain();
