// Shared helpers for the k8s tests: a client for a fake server, tiny reflector timings, a
// handler that records what it saw, and log capture.
import type { Service } from 'kubernetes-types/core/v1.d.ts';
import { configureLogging } from '../../../src/log/log.ts';
import { KubeClient } from '../../../src/k8s/client.ts';
import type { ClientConfig } from '../../../src/k8s/kubeconfig.ts';
import type { ReflectorHandlers, ReflectorOptions } from '../../../src/k8s/reflector.ts';
import type { FakeApiServer } from '../../support/apiserver.ts';

export function clientFor(server: { url: string }, extra: Partial<ClientConfig> = {}): KubeClient {
  return new KubeClient({ server: server.url, insecureSkipTLSVerify: false, source: 'test', ...extra });
}

/** Timings small enough that every recovery path runs in milliseconds. */
export const FAST = {
  backoff: { initialMs: 5, maxMs: 40, resetAfterMs: 2_000 },
  minWatchDurationMs: 30,
  idleTimeoutMs: 5_000,
  listTimeoutMs: 5_000,
} satisfies Partial<ReflectorOptions<Service>>;

export function service(name: string, labels: Record<string, string> = {}, namespace = 'default'): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, labels },
    spec: { clusterIP: '10.0.0.1', ports: [{ port: 80, protocol: 'TCP' }] },
  };
}

/** Records handler calls as readable strings and mirrors the state the handlers describe. */
export class Recorder<
  T extends { metadata?: { name?: string; namespace?: string; resourceVersion?: string } },
> {
  readonly events: string[] = [];
  readonly state = new Map<string, T>();
  synced = 0;

  static key(obj: { metadata?: { name?: string; namespace?: string } }): string {
    const ns = obj.metadata?.namespace ?? '';
    return ns === '' ? (obj.metadata?.name ?? '') : `${ns}/${obj.metadata?.name ?? ''}`;
  }

  handlers(): ReflectorHandlers<T> {
    return {
      onAdd: (obj) => {
        this.events.push(`add ${Recorder.key(obj)}`);
        this.state.set(Recorder.key(obj), obj);
      },
      onUpdate: (_old, obj) => {
        this.events.push(`update ${Recorder.key(obj)}`);
        this.state.set(Recorder.key(obj), obj);
      },
      onDelete: (obj) => {
        this.events.push(`delete ${Recorder.key(obj)}`);
        this.state.delete(Recorder.key(obj));
      },
      onSynced: () => {
        this.events.push('synced');
        this.synced++;
      },
    };
  }

  /** `key@resourceVersion`, sorted: compare with the server's view. */
  view(): string[] {
    return [...this.state.values()]
      .map((o) => `${Recorder.key(o)}@${o.metadata?.resourceVersion ?? ''}`)
      .sort();
  }
}

export function serverView(server: FakeApiServer, kind: string): string[] {
  return server
    .list(kind)
    .map((o) => `${Recorder.key(o)}@${o.metadata?.resourceVersion ?? ''}`)
    .sort();
}

/** Requests to a collection path that are lists (not watches). */
export function listRequests(server: FakeApiServer, path: string): URL[] {
  return server.requests
    .map((r) => new URL(r.url, 'http://x'))
    .filter((u) => u.pathname === path && u.searchParams.get('watch') === null);
}

export function watchRequests(server: FakeApiServer, path: string): URL[] {
  return server.requests
    .map((r) => new URL(r.url, 'http://x'))
    .filter((u) => u.pathname === path && u.searchParams.get('watch') !== null);
}

/** Captures log lines until the returned function is called (which restores stderr). */
export function captureLogs(): { lines: string[]; restore: () => void } {
  const lines: string[] = [];
  configureLogging({ write: (line) => lines.push(line), verbosity: 4 });
  return {
    lines,
    restore: () => {
      configureLogging({ write: (line) => process.stderr.write(line), verbosity: 0 });
    },
  };
}
