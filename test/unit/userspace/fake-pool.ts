// A fake data path for the userspace proxier's tests: listeners by key, ports handed out from
// 41000 when the kernel would choose, and the events in order.
import assert from 'node:assert/strict';
import type { ListenerPool } from '../../../src/dataplane/userspace/proxier.ts';
import type {
  BalancerSettings,
  ListenerSpec,
  Route,
  Router,
} from '../../../src/dataplane/userspace/route.ts';

export class FakePool implements ListenerPool {
  readonly listeners = new Map<string, { spec: ListenerSpec; router: Router; balancer: BalancerSettings }>();
  readonly events: string[] = [];
  nextPort = 41000;
  /** Ports someone else holds: binding them fails with EADDRINUSE. */
  readonly busy = new Set<number>();
  failKeys = new Set<string>();

  open(spec: ListenerSpec): Promise<{ port: number }> {
    if (this.failKeys.has(spec.key)) return Promise.reject(new Error(`listen EACCES ${spec.port}`));
    if (this.busy.has(spec.port)) {
      return Promise.reject(
        Object.assign(new Error(`listen EADDRINUSE ${spec.port}`), { code: 'EADDRINUSE' }),
      );
    }
    const port = spec.port === 0 ? this.nextPort++ : spec.port;
    this.listeners.set(spec.key, { spec, router: spec.router, balancer: spec.balancer });
    this.events.push(`open ${spec.key} ${spec.protocol} ${spec.host}:${port}`);
    return Promise.resolve({ port });
  }
  update(key: string, router: Router, balancer: BalancerSettings): void {
    const listener = this.listeners.get(key);
    assert.ok(listener, `update of unknown ${key}`);
    this.listeners.set(key, { ...listener, router, balancer });
    this.events.push(`update ${key}`);
  }
  close(key: string): Promise<void> {
    this.listeners.delete(key);
    this.events.push(`close ${key}`);
    return Promise.resolve();
  }
  route(key: string, ip: string): Route {
    const listener = this.listeners.get(key);
    assert.ok(listener, key);
    return listener.router({ ip, port: 1234 });
  }
}
