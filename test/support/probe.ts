// Moved to src/playground/probe.ts (the playground ships it). Run as a script, this file runs the
// probe from its command line, as that one does.
import '../../src/playground/probe.ts';
