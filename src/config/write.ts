// --write-config-to: the configuration as a kubeproxy.config.k8s.io/v1alpha1 YAML file, every
// field present, keys sorted as upstream's encoder writes them, durations as Go text. Strings
// are quoted wherever YAML 1.1 (what Go's decoder and ours read) would take them for something
// else, so that reading the file back gives the same configuration.
import { stringify } from 'yaml';
import type { KubeProxyConfiguration } from './types.ts';

export function renderConfigYAML(config: KubeProxyConfiguration): string {
  return stringify(config, {
    version: '1.1',
    sortMapEntries: true,
    lineWidth: 0,
    defaultStringType: 'PLAIN',
    defaultKeyType: 'PLAIN',
  });
}
