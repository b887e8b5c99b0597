// The packet of an explain request, from the CLI flags or the HTTP query: one parser, so both
// accept and refuse the same input with the same messages (naming the flag / parameter).
import { ExplainError, type PacketQuery } from './engine.ts';

/** `get(name)` gives the raw value of `--name` / `?name=`, undefined when absent. */
export function parsePacketQuery(get: (name: string) => string | undefined): PacketQuery {
  const need = (name: string): string => {
    const value = get(name);
    if (value === undefined || value === '') throw new ExplainError(`--${name} is required`);
    return value;
  };
  const dportText = need('dport');
  const dport = /^\d{1,5}$/.test(dportText) ? Number(dportText) : NaN;
  if (!(dport >= 1 && dport <= 65535)) {
    throw new ExplainError(`--dport ${JSON.stringify(dportText)} is not a port number (1-65535)`);
  }
  const protoText = (get('proto') ?? 'tcp').toUpperCase();
  if (protoText !== 'TCP' && protoText !== 'UDP' && protoText !== 'SCTP') {
    throw new ExplainError(`--proto ${JSON.stringify(get('proto'))} is not one of tcp, udp, sctp`);
  }
  const from = get('from');
  if (from !== undefined && from !== 'pod' && from !== 'node' && from !== 'external') {
    throw new ExplainError(`--from ${JSON.stringify(from)} is not one of pod, node, external`);
  }
  const iif = get('iif');
  if (iif !== undefined && !/^[A-Za-z0-9_.@:-]{1,15}$/.test(iif)) {
    throw new ExplainError(`--iif ${JSON.stringify(iif)} is not an interface name`);
  }
  return {
    src: need('src'),
    dst: need('dst'),
    dport,
    proto: protoText,
    ...(from !== undefined ? { from: from } : {}),
    ...(iif !== undefined ? { iif } : {}),
  };
}
