// Reading deploy/ and checking objects against the Kubernetes API schemas, for the deploy tests.
//
// Schema validation uses the kubernetes-models package: one ajv validator per API type, generated
// from the official OpenAPI schemas and shipped inside the npm package (works offline). Those
// schemas do not forbid unknown fields (the API server does that itself, in strict field
// validation), so a typo such as `readOnlyy: true` would pass them. To catch that too, the object
// is validated through a Proxy that records which fields the validator looks up: a field of a
// struct that the validator never looked up is not in the schema. Objects whose keys the validator
// enumerates (maps such as labels or ConfigMap data) accept any key.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const DEPLOY_DIR = join(REPO_ROOT, 'deploy');
export const KUSTOMIZATION = 'kustomization.yaml';

export type Json = Record<string, unknown>;

export interface Manifest {
  /** File name inside deploy/. */
  readonly file: string;
  /** Position of the document in the file. */
  readonly index: number;
  readonly object: Json;
}

export function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses every document of a YAML text strictly (duplicate keys and syntax errors throw). */
export function parseYamlDocuments(text: string, where: string): unknown[] {
  return parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true }).map((doc, index) => {
    const problems = [...doc.errors, ...doc.warnings];
    if (problems.length > 0) {
      throw new Error(`${where} document ${index}: ${problems.map((p) => p.message).join('; ')}`);
    }
    return doc.toJS() as unknown;
  });
}

export function deployYamlFiles(): string[] {
  return readdirSync(DEPLOY_DIR)
    .filter((name) => /\.ya?ml$/.test(name))
    .sort();
}

/** Every Kubernetes object in deploy/*.yaml (the kustomization is not one). */
export function loadManifests(): Manifest[] {
  const manifests: Manifest[] = [];
  for (const file of deployYamlFiles()) {
    if (file === KUSTOMIZATION) continue;
    const docs = parseYamlDocuments(readFileSync(join(DEPLOY_DIR, file), 'utf8'), file);
    docs.forEach((object, index) => {
      if (object === null || object === undefined) return; // an empty document between `---`
      if (!isRecord(object)) throw new Error(`${file} document ${index}: not a mapping`);
      manifests.push({ file, index, object });
    });
  }
  return manifests;
}

export function describeManifest(m: Manifest): string {
  const meta = isRecord(m.object['metadata']) ? m.object['metadata'] : {};
  return `${m.file}#${m.index} ${String(m.object['kind'])} ${String(meta['name'])}`;
}

/** The one object of this kind and name; fails the test otherwise. */
export function findObject(manifests: readonly Manifest[], kind: string, name: string): Json {
  const found = manifests.filter((m) => {
    const meta = m.object['metadata'];
    return m.object['kind'] === kind && isRecord(meta) && meta['name'] === name;
  });
  if (found.length !== 1) {
    throw new Error(`expected exactly one ${kind} ${name} in deploy/, found ${found.length}`);
  }
  return found[0]!.object;
}

/** Walks a path of keys and array indexes; throws naming the path when a step is missing. */
export function at(value: unknown, ...path: (string | number)[]): unknown {
  let current = value;
  const walked: string[] = [];
  for (const step of path) {
    walked.push(String(step));
    if (typeof step === 'number') {
      if (!Array.isArray(current) || step >= current.length) {
        throw new Error(`missing ${walked.join('.')}`);
      }
      current = current[step] as unknown;
    } else {
      if (!isRecord(current) || !(step in current)) throw new Error(`missing ${walked.join('.')}`);
      current = current[step];
    }
  }
  return current;
}

export function asArray(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new Error(`${what} is not a list`);
  return value;
}

export function asString(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new Error(`${what} is not a string`);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Schema validation

interface Lookups {
  readonly read: Set<string>;
  enumerated: boolean;
}

/** Wraps `root` so that every object's looked-up and enumerated keys are recorded. */
function tracked(root: unknown): { proxy: unknown; lookups: Map<object, Lookups> } {
  const lookups = new Map<object, Lookups>();
  const proxies = new Map<object, object>();
  const wrap = (value: unknown): unknown => {
    if (typeof value !== 'object' || value === null) return value;
    const existing = proxies.get(value);
    if (existing) return existing;
    const record: Lookups = { read: new Set(), enumerated: false };
    lookups.set(value, record);
    const proxy = new Proxy(value, {
      get(target, key, receiver): unknown {
        if (typeof key === 'string') record.read.add(key);
        return wrap(Reflect.get(target, key, receiver));
      },
      has(target, key): boolean {
        if (typeof key === 'string') record.read.add(key);
        return Reflect.has(target, key);
      },
      getOwnPropertyDescriptor(target, key): PropertyDescriptor | undefined {
        if (typeof key === 'string') record.read.add(key);
        return Reflect.getOwnPropertyDescriptor(target, key);
      },
      ownKeys(target): (string | symbol)[] {
        record.enumerated = true;
        return Reflect.ownKeys(target);
      },
    });
    proxies.set(value, proxy);
    return proxy;
  };
  return { proxy: wrap(root), lookups };
}

function unknownFields(value: unknown, path: string, lookups: Map<object, Lookups>): string[] {
  if (Array.isArray(value)) {
    return value.flatMap((item, i) => unknownFields(item, `${path}[${i}]`, lookups));
  }
  if (!isRecord(value)) return [];
  const record = lookups.get(value);
  // Never reached by the validator: its schema accepts anything (e.g. RawExtension).
  if (record === undefined) return [];
  const found: string[] = [];
  for (const [key, child] of Object.entries(value)) {
    const childPath = path === '' ? key : `${path}.${key}`;
    if (!record.enumerated && !record.read.has(key)) found.push(`${childPath}: unknown field`);
    else found.push(...unknownFields(child, childPath, lookups));
  }
  return found;
}

const API_VERSION = /^(?:[a-z0-9]([a-z0-9.-]*[a-z0-9])?\/)?v[0-9]+(?:(?:alpha|beta)[0-9]+)?$/;
const KIND = /^[A-Z][A-Za-z0-9]*$/;

type ModelClass = (abstract new (...args: never[]) => unknown) & {
  readonly apiVersion?: unknown;
  readonly kind?: unknown;
  readonly prototype: { validate?: unknown };
};

async function modelFor(apiVersion: string, kind: string): Promise<ModelClass | string> {
  if (!API_VERSION.test(apiVersion)) return `apiVersion ${JSON.stringify(apiVersion)} is malformed`;
  if (!KIND.test(kind)) return `kind ${JSON.stringify(kind)} is malformed`;
  let module: unknown;
  try {
    module = (await import(`kubernetes-models/${apiVersion}/${kind}`)) as unknown;
  } catch {
    return `unknown apiVersion/kind: ${apiVersion} ${kind}`;
  }
  const exported: unknown = isRecord(module) ? module[kind] : undefined;
  if (typeof exported !== 'function') return `unknown apiVersion/kind: ${apiVersion} ${kind}`;
  const model = exported as ModelClass;
  // Types that only appear inside objects (PodSpec, Container ...) carry no apiVersion/kind.
  if (model.apiVersion !== apiVersion || model.kind !== kind) {
    return `${apiVersion} ${kind} is not a top-level API object`;
  }
  return model;
}

/**
 * Checks one object against the schema of its apiVersion/kind: types, enums, formats, required
 * fields, then unknown fields. Returns the problems (empty when valid), each naming the field.
 */
export async function schemaProblems(object: unknown): Promise<string[]> {
  if (!isRecord(object)) return ['not a mapping'];
  const apiVersion = object['apiVersion'];
  const kind = object['kind'];
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') {
    return ['apiVersion and kind must be set (strings)'];
  }
  const model = await modelFor(apiVersion, kind);
  if (typeof model === 'string') return [model];
  const validate = model.prototype.validate;
  if (typeof validate !== 'function') return [`${apiVersion} ${kind}: the model has no validator`];
  const { proxy, lookups } = tracked(object);
  try {
    Reflect.apply(validate, proxy, []);
  } catch (error) {
    // With schema errors the validator may stop early, so unknown fields are not judged then.
    return [error instanceof Error ? error.message : String(error)];
  }
  return unknownFields(object, '', lookups);
}
