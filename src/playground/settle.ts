// When has the proxy applied a change? When its view (GET /debug/proxy/state) holds the same
// service ports and endpoints as the explainer's model computes from the objects in the API
// server (stateFromManifests: the same model code the proxy runs). Comparing views, rather than
// counting syncs, also answers "this change needed no sync". Pure.
import { field, isRecord } from '../model/validate.ts';

/** Service ports and endpoints of a state dump, in a canonical text (the selection left out). */
export function fingerprint(dump: unknown): string {
  const families = field(dump, 'families');
  if (!Array.isArray(families)) return '';
  return JSON.stringify(
    families.map((family: unknown) => {
      const ports = field(family, 'servicePorts');
      return [
        field(family, 'family'),
        (Array.isArray(ports) ? ports : [])
          .filter(isRecord)
          .map((sp) => {
            const { selection: _selection, endpoints, ...rest } = sp;
            const eps = Array.isArray(endpoints) ? endpoints.map((ep) => JSON.stringify(ep)).sort() : [];
            return JSON.stringify([Object.entries(rest).sort(([a], [b]) => a.localeCompare(b)), eps]);
          })
          .sort(),
      ];
    }),
  );
}
