// Problems found while reading API objects at the model border. The model never throws on bad
// input: it skips what it cannot trust and reports why, naming the object and the field, so an
// operator can find and fix the object (architecture.md, rule 5).
import { field } from './validate.ts';

export type ProblemKind = 'Service' | 'EndpointSlice' | 'Node' | 'ServiceCIDR';

export interface Problem {
  readonly kind: ProblemKind;
  /** As found in the object; may itself be malformed, so print it with formatProblem. */
  readonly namespace: string;
  readonly name: string;
  /** Path of the offending field, e.g. `spec.ports[1].protocol`. */
  readonly field: string;
  /** What is wrong; values inside are already quoted by describeValue. */
  readonly message: string;
}

const MAX_VALUE_TEXT = 80;
// JSON.stringify answers undefined for functions and symbols, which its declared type omits.
const stringify: (value: unknown) => string | undefined = JSON.stringify;
const PLAIN_NAME = /^[A-Za-z0-9._-]{0,253}$/;

/**
 * Quotes a value from an API object for a message: JSON text (so newlines and quotes are
 * escaped and cannot forge log lines), cut to a bounded length so a huge value cannot flood logs.
 */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'missing';
  let text: string;
  try {
    text = stringify(value) ?? typeof value;
  } catch {
    text = typeof value;
  }
  return text.length > MAX_VALUE_TEXT ? `${text.slice(0, MAX_VALUE_TEXT)}...` : text;
}

function printableName(name: string): string {
  return PLAIN_NAME.test(name) ? name : describeValue(name);
}

/** `Service default/web: spec.ports[1].protocol: unsupported value "ICMP"`. */
export function formatProblem(problem: Problem): string {
  const object = problem.namespace
    ? `${printableName(problem.namespace)}/${printableName(problem.name)}`
    : printableName(problem.name);
  return `${problem.kind} ${object}: ${problem.field}: ${problem.message}`;
}

/**
 * Starts the problem list of one untrusted object: reads its namespace and name defensively
 * (anything but a string counts as empty) and returns the list with a function adding to it.
 */
export function problemsOf(
  kind: ProblemKind,
  raw: unknown,
): {
  namespace: string;
  name: string;
  problems: Problem[];
  problem: (field: string, message: string) => void;
} {
  const metadata = field(raw, 'metadata');
  const namespaceValue = field(metadata, 'namespace');
  const nameValue = field(metadata, 'name');
  const namespace = typeof namespaceValue === 'string' ? namespaceValue : '';
  const name = typeof nameValue === 'string' ? nameValue : '';
  const problems: Problem[] = [];
  return {
    namespace,
    name,
    problems,
    problem: (fieldPath, message) => {
      problems.push({ kind, namespace, name, field: fieldPath, message });
    },
  };
}
