// Moved to src/playground/cluster.ts (`kube-proxy playground` ships it); kept here so tests import it
// from where they always did.
export * from '../../src/playground/cluster.ts';
