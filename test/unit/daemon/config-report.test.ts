import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  IGNORED_FIELDS_METRIC,
  IGNORED_FIELDS_REASON,
  reportIgnoredConfigFields,
} from '../../../src/daemon/config-report.ts';
import { configureLogging } from '../../../src/log/log.ts';
import { createRegistry } from '../../../src/metrics/registry.ts';

function fakeRecorder() {
  const events: { type: string; reason: string; note: string }[] = [];
  return {
    events,
    nodeEvent: (type: 'Normal' | 'Warning', reason: string, _action: string, note: string) => {
      events.push({ type, reason, note });
      return Promise.resolve(true);
    },
  };
}

describe('ignored config fields (issue 14, item 1)', () => {
  it('logs each field, posts one Warning Event on the Node naming them all, and exports a series per field', async () => {
    const lines: string[] = [];
    configureLogging({ write: (line) => lines.push(line) });
    const registry = createRegistry({ defaultMetrics: false });
    const recorder = fakeRecorder();
    reportIgnoredConfigFields({
      file: '/var/lib/kube-proxy/config.conf',
      fields: ['conntrack.max', 'resourceContainer'],
      registry,
      recorder,
    });
    configureLogging({ write: (line) => process.stderr.write(line) });
    assert.equal(lines.filter((l) => l.includes('Ignoring a field of the config file')).length, 2);
    assert.ok(lines.some((l) => l.includes('field="conntrack.max"')));
    assert.equal(recorder.events.length, 1);
    const [event] = recorder.events;
    assert.ok(event);
    assert.equal(event.type, 'Warning');
    assert.equal(event.reason, IGNORED_FIELDS_REASON);
    assert.match(event.note, /conntrack\.max, resourceContainer/);
    const text = await registry.metrics();
    assert.match(text, new RegExp(`${IGNORED_FIELDS_METRIC}\\{field="conntrack.max"\\} 1`));
    assert.match(text, new RegExp(`${IGNORED_FIELDS_METRIC}\\{field="resourceContainer"\\} 1`));
  });

  it('posts no Event when nothing was ignored', () => {
    const recorder = fakeRecorder();
    reportIgnoredConfigFields({
      file: '',
      fields: [],
      registry: createRegistry({ defaultMetrics: false }),
      recorder,
    });
    assert.equal(recorder.events.length, 0);
  });
});
