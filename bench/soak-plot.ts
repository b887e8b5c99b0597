// The soak chart page to PNG with the browser the web page test already drives (Debian's
// chromium through playwright-core): no plotting dependency. The browser runs inside a namespace
// of its own with only loopback, so whatever it might try to reach, it reaches nothing.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { createNetns, deleteNetns, uniquePrefix } from '../test/support/netns.ts';

const CHROMIUM = '/usr/bin/chromium';

/** Screenshots `html` to `pngPath`; returns the namespace prefix it used (for leak checks). */
export async function screenshotPage(html: string, pngPath: string): Promise<string> {
  const prefix = uniquePrefix('kpsp');
  const ns = await createNetns(`${prefix}plot`);
  const dir = mkdtempSync(join(tmpdir(), 'kube-proxy-soak-plot-'));
  try {
    const wrapper = join(dir, 'chromium-isolated');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${ns.name} ${CHROMIUM} "$@"\n`);
    chmodSync(wrapper, 0o755);
    const browser = await chromium.launch({
      executablePath: wrapper,
      timeout: 120_000,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
      await page.setContent(html, { waitUntil: 'load' });
      await page.screenshot({ path: pngPath, fullPage: true });
    } finally {
      await browser.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await deleteNetns(ns);
  }
  return prefix;
}
