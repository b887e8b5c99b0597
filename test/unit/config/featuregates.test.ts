// Feature gates as v1.36 (issue 14, item 9).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeFeatureGates, featureEnabled, gateStates } from '../../../src/config/featuregates.ts';
import { renderHelp } from '../../../src/config/flags/help.ts';
import { parseCommandLine } from '../../../src/config/load.ts';
import { noFiles } from './helpers.ts';

describe('feature gates (v1.36)', () => {
  it('--help lists the settable gates with their v1.36 stage and default, GA ones hidden', () => {
    const help = renderHelp();
    for (const line of [
      'AllAlpha=true|false (ALPHA - default=false)',
      'AllBeta=true|false (BETA - default=false)',
      'ComponentFlagz=true|false (BETA - default=true)',
      'ComponentStatusz=true|false (BETA - default=true)',
      'LoggingAlphaOptions=true|false (ALPHA - default=false)',
    ]) {
      assert.ok(help.includes(line), line);
    }
    assert.ok(!describeFeatureGates().some((line) => line.startsWith('PreferSameTrafficDistribution')));
  });

  it('rejects turning off a GA gate, as upstream (locked to its default)', () => {
    const result = parseCommandLine(['--feature-gates=PreferSameTrafficDistribution=false'], noFiles);
    assert.equal(result.kind, 'error');
    assert.match(
      JSON.stringify(result),
      /cannot set feature gate PreferSameTrafficDistribution to false, feature is locked to true/,
    );
    assert.equal(
      parseCommandLine(['--feature-gates=PreferSameTrafficDistribution=true'], noFiles).kind,
      'run',
    );
  });

  it('AllAlpha turns on ALPHA gates not set on their own', () => {
    assert.equal(featureEnabled({ AllAlpha: true }, 'LoggingAlphaOptions'), true);
    assert.equal(
      featureEnabled({ AllAlpha: true, LoggingAlphaOptions: false }, 'LoggingAlphaOptions'),
      false,
    );
    assert.equal(featureEnabled({ AllBeta: false }, 'ComponentFlagz'), true);
  });

  it('gate states feed kubernetes_feature_enabled', () => {
    const flagz = gateStates({ ComponentFlagz: false }).find((g) => g.name === 'ComponentFlagz');
    assert.equal(flagz?.enabled, false);
    assert.equal(flagz.spec.stage, 'BETA');
  });
});
