// What the last successful sync of one family applied: the service port states it rendered, by
// key, the same objects the backend saw (kept by identity, never copied). The debug endpoint and
// the explainer read it; nothing writes it but FamilySync.
//
// The model updates its snapshot's servicePorts map in place at its next snapshot(), so we cannot
// keep that map. Copying it per sync costs about 1 ms at 10k Services, a tenth of the change
// latency budget; so when the applied snapshot directly follows the previous applied one, we
// apply only its changedServicePorts, and copy only when the sequence was broken (the first
// sync, a failed sync in between, a snapshot without change keys).
import type { ProxySnapshot, ServicePortState } from '../model/types.ts';

/** A read-only view of what the dataplane of one family holds after the last successful sync. */
export interface AppliedState {
  /**
   * Service port states by ServicePortName.key. Unlike a snapshot's map, it does not iterate in
   * key order (entries added by later syncs come last): sort the keys when order matters.
   */
  readonly servicePorts: ReadonlyMap<string, ServicePortState>;
  /** The model generation of the snapshot last applied; undefined when it had none. */
  readonly generation: number | undefined;
  /** The service CIDRs of the snapshot last applied (empty before the first sync). */
  readonly serviceCIDRs: readonly string[];
}

export class AppliedRecord implements AppliedState {
  #servicePorts = new Map<string, ServicePortState>();
  #generation: number | undefined;
  #serviceCIDRs: readonly string[] = [];
  #valid = false;

  get serviceCIDRs(): readonly string[] {
    return this.#serviceCIDRs;
  }

  get servicePorts(): ReadonlyMap<string, ServicePortState> {
    return this.#servicePorts;
  }

  get generation(): number | undefined {
    return this.#generation;
  }

  /** Records a snapshot the backend applied successfully. */
  applied(snapshot: ProxySnapshot): void {
    const { generation, changedServicePorts } = snapshot;
    const follows =
      this.#valid &&
      generation !== undefined &&
      this.#generation !== undefined &&
      generation === this.#generation + 1 &&
      changedServicePorts !== undefined;
    if (follows) {
      for (const key of changedServicePorts) {
        const state = snapshot.servicePorts.get(key);
        if (state) this.#servicePorts.set(key, state);
        else this.#servicePorts.delete(key);
      }
    } else {
      this.#servicePorts = new Map(snapshot.servicePorts);
    }
    this.#generation = generation;
    this.#serviceCIDRs = snapshot.serviceCIDRs;
    this.#valid = true;
  }

  /**
   * A snapshot was taken but not applied: the model has moved past the recorded generation, so
   * the next applied snapshot's change keys do not cover the gap. The view itself stays what the
   * kernel had before the failed sync.
   */
  skipped(): void {
    this.#generation = undefined;
  }
}
