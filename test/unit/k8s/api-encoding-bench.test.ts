// bench/api-encoding.ts at a small size: every figure comes out, finite and positive, and the
// protobuf bodies are the smaller ones (timings are not asserted: the machine is shared).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { measure } from '../../../bench/api-encoding.ts';

test('the JSON vs protobuf bench measures both lists in both encodings', async () => {
  const rows = await measure({ services: 30, endpoints: 3, runs: 1 });
  assert.deepEqual(
    rows.map((r) => `${r.list} ${r.encoding} ${r.items}`),
    ['services json 30', 'services protobuf 30', 'endpointslices json 30', 'endpointslices protobuf 30'],
  );
  for (const row of rows) {
    for (const value of [row.bytes, row.gzipBytes, row.decodeMs, row.gunzipDecodeMs]) {
      assert.ok(Number.isFinite(value) && value > 0, JSON.stringify(row));
    }
  }
  for (const list of ['services', 'endpointslices']) {
    const [json, pb] = rows.filter((r) => r.list === list);
    assert.ok(json && pb && pb.bytes < json.bytes, `${list}: protobuf is smaller`);
  }
});
