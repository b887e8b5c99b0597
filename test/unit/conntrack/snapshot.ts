// Snapshots for the conntrack and service health tests, built by the real model from API objects.
import type { Service } from 'kubernetes-types/core/v1.d.ts';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.d.ts';
import { ProxyModel } from '../../../src/model/tracker.ts';
import type { IPFamily, ProxySnapshot } from '../../../src/model/types.ts';

export const NODE = 'node1';

export function modelWith(family: IPFamily, objects: readonly (Service | EndpointSlice)[] = []): ProxyModel {
  const model = new ProxyModel({
    family,
    nodeName: NODE,
    proxyStartTimeMs: 0,
    onProblem: (problem) => {
      throw new Error(`unexpected problem: ${JSON.stringify(problem)}`);
    },
  });
  for (const obj of objects) {
    if ('addressType' in obj) model.upsertSlice(obj);
    else model.upsertService(obj);
  }
  return model;
}

export function snapshotOf(family: IPFamily, objects: readonly (Service | EndpointSlice)[]): ProxySnapshot {
  return modelWith(family, objects).snapshot();
}
