// Moved to src/playground/netns.ts (`kube-proxy playground` ships it); kept here so tests import it
// from where they always did.
export * from '../../src/playground/netns.ts';
