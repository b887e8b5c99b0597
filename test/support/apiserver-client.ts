// Moved to src/playground/apiserver-client.ts (`kube-proxy playground` ships it); kept here so tests import it
// from where they always did.
export * from '../../src/playground/apiserver-client.ts';
