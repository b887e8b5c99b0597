// Go's net.SplitHostPort, shared by the flag kinds (--healthz-bind-address, --metrics-bind-address),
// validation and the effective values, so all three read `IP:port` text the same way.

/** Splits `host:port` or `[host]:port`; undefined when the text is neither. */
export function splitHostPort(text: string): { host: string; port: string } | undefined {
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') return undefined;
    const host = text.slice(1, close);
    const port = text.slice(close + 2);
    if (port.includes(':') || port.includes('[') || port.includes(']')) return undefined;
    return { host, port };
  }
  const colon = text.lastIndexOf(':');
  if (colon < 0) return undefined;
  const host = text.slice(0, colon);
  if (host.includes(':') || host.includes('[') || host.includes(']')) return undefined;
  return { host, port: text.slice(colon + 1) };
}
