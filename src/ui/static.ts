// The web page's three files (index.html, app.js, app.css), read once at start and served with a
// strict Content-Security-Policy: scripts and styles only from this origin, nothing inline, no
// framing, no form posts elsewhere. The page inserts every name from the API as text (never as
// HTML); the CSP is the second line should that ever slip.
import { readFileSync } from 'node:fs';
import { getAsset, isSea } from 'node:sea';
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { log } from '../log/log.ts';
import type { PageRoute } from '../server/debug-routes.ts';

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Headers every page response carries (the JSON routes add their own). */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Frame-Options': 'DENY',
};

/** The page's files and their media types (scripts/release/build.ts embeds the same names). */
export const FILES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

/** The single executable's key for a page file (its sea-config `assets`). */
export const seaAssetKey = (name: string): string => `ui/${name}`;

/**
 * Reads the files from `dir` (default: assets/ beside this module, which the build copies to
 * dist/; inside the single executable from `make release`, the assets embedded in it). A missing
 * file is logged and the page answers 503: the proxy runs without it.
 */
export function loadAssets(dir?: URL): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  // import.meta is empty in the bundled executable: the directory is looked up only when needed.
  const read = (name: string): Buffer =>
    dir === undefined && isSea()
      ? Buffer.from(getAsset(seaAssetKey(name)))
      : readFileSync(new URL(name, dir ?? new URL('./assets/', import.meta.url)));
  for (const [name, type] of Object.entries(FILES)) {
    try {
      const body = read(name);
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
      assets.set(name, { body, type, etag });
    } catch (error) {
      log.error('Web page file missing: /ui will answer 503', error, { file: name });
    }
  }
  return assets;
}

function serve(asset: Asset | undefined, req: IncomingMessage, res: ServerResponse): void {
  if (asset === undefined) {
    res.writeHead(503, { ...PAGE_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('the web page files are not installed with this build\n');
    return;
  }
  const headers = {
    ...PAGE_HEADERS,
    'Content-Type': asset.type,
    ETag: asset.etag,
    'Cache-Control': 'no-cache',
  };
  if (req.headers['if-none-match'] === asset.etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  res.writeHead(200, { ...headers, 'Content-Length': String(asset.body.length) });
  res.end(req.method === 'HEAD' ? undefined : asset.body);
}

/** /ui, /ui/, /ui/app.js, /ui/app.css. */
export function pageRoutes(assets: ReadonlyMap<string, Asset>): Record<string, PageRoute> {
  const index: PageRoute = (req, res) => serve(assets.get('index.html'), req, res);
  return {
    '/ui': index,
    '/ui/': index,
    '/ui/app.js': (req, res) => serve(assets.get('app.js'), req, res),
    '/ui/app.css': (req, res) => serve(assets.get('app.css'), req, res),
  };
}
