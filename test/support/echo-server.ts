// Moved to src/playground/echo-server.ts (`kube-proxy playground` starts it in pod namespaces).
// Run as a script, this file starts the server from its command line, as that one does.
import '../../src/playground/echo-server.ts';
