// Reading and writing /proc/sys. The root is injectable so tests can use a temporary directory.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface Sysctl {
  read(key: string): Promise<string>;
  write(key: string, value: string): Promise<void>;
}

/** `key` uses slashes, as upstream names them: `net/netfilter/nf_conntrack_max`. */
export function procSysctl(root = '/proc/sys'): Sysctl {
  return {
    read: async (key) => (await readFile(join(root, key), 'utf8')).trim(),
    write: async (key, value) => {
      await writeFile(join(root, key), `${value}\n`);
    },
  };
}
