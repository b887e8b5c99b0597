// Shared builders for the config tests: a configuration as parseCommandLine would produce it, and
// an in-memory file system for --config.
import { applyDefaults, applyPlatformDefaults } from '../../../src/config/defaults.ts';
import type { ConfigIO } from '../../../src/config/load.ts';
import type { RawKubeProxyConfiguration } from '../../../src/config/schema.ts';
import type { KubeProxyConfiguration } from '../../../src/config/types.ts';

export const HEADER = 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n';

/** Defaulted + platform-defaulted configuration from a raw (file-shaped) object. */
export function configFrom(raw: RawKubeProxyConfiguration = {}): KubeProxyConfiguration {
  return applyPlatformDefaults(applyDefaults(raw));
}

export function filesIO(files: Readonly<Record<string, string>>): ConfigIO {
  return {
    readFile(path: string): string {
      const text = files[path];
      if (text === undefined) throw new Error(`open ${path}: no such file or directory`);
      return text;
    },
  };
}

export const noFiles: ConfigIO = filesIO({});
