// Manifests as apply and delete read them: files, directories or the text after `-f -`, YAML or
// JSON, several documents, Lists flattened; and what apply compares to say `unchanged`.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { field, isRecord, stringField } from '../model/validate.ts';
import type { KubeObj } from './apiserver.ts';
import { ManifestError } from './workloads.ts';

/** Every document of a file, a directory's .yaml/.yml/.json files, or the given text (`-`). */
export function readDocuments(file: string, stdin: string | undefined): { docs: unknown[]; where: string } {
  const parse = (text: string, where: string): unknown[] =>
    parseAllDocuments(text).map((doc, i) => {
      const error = doc.errors[0];
      if (error) throw new ManifestError(`${where}: document ${i + 1}: ${error.message}`);
      return doc.toJS() as unknown;
    });
  if (file === '-') return { docs: parse(stdin ?? '', 'stdin'), where: 'stdin' };
  let names: string[] | undefined;
  try {
    names = statSync(file).isDirectory() ? readdirSync(file).sort() : undefined;
  } catch (error) {
    throw new ManifestError(`the path "${file}" does not exist (${(error as Error).message})`);
  }
  if (names === undefined) return { docs: parse(readFileSync(file, 'utf8'), file), where: file };
  return {
    docs: names
      .filter((n) => /\.(ya?ml|json)$/.test(n))
      .flatMap((n) => parse(readFileSync(join(file, n), 'utf8'), join(file, n))),
    where: file,
  };
}

/** Objects of the documents, `List`s flattened. */
export function objectsOf(docs: readonly unknown[], where: string): KubeObj[] {
  const out: KubeObj[] = [];
  const visit = (doc: unknown): void => {
    if (doc === null || doc === undefined) return;
    if (!isRecord(doc)) throw new ManifestError(`${where}: a manifest must be a mapping`);
    const kind = stringField(doc, 'kind') ?? '';
    const items = field(doc, 'items');
    if (kind.endsWith('List') && Array.isArray(items)) items.forEach(visit);
    else out.push(doc);
  };
  docs.forEach(visit);
  return out;
}

export function sameContent(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** What apply compares to say `unchanged`: the fields a user sets. */
export function userFields(obj: KubeObj): unknown {
  const record = obj as Record<string, unknown>;
  const meta = obj.metadata ?? {};
  const { status: _status, apiVersion: _a, kind: _k, metadata: _m, ...rest } = record;
  return [meta.labels ?? {}, meta.annotations ?? {}, rest];
}
