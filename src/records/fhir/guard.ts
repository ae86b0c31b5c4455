// Checks that run before anything else touches the input: no key that JavaScript treats
// specially (`__proto__`, `constructor`, `prototype`), and a bounded depth, so that copying,
// schema checking and FHIRPath never meet a prototype-pollution gadget or a stack overflow.
import { MAX_INPUT_DEPTH } from '../../common/well-formed';
import { type FhirIssue, safeName } from './issues';

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * The API's one nesting limit for any input (deeper than any real resource, contained
 * resources and nested extensions included), also applied here for callers that do not come
 * through the GraphQL argument check.
 */
export const MAX_DEPTH = MAX_INPUT_DEPTH;

/** The first unsafe spot in a JSON value, or null. Iterative: depth cannot overflow it. */
export function unsafeStructure(value: unknown, root: string): FhirIssue | null {
  const stack: [unknown, string, number][] = [[value, root, 0]];
  while (stack.length > 0) {
    const [node, path, depth] = stack.pop()!;
    if (typeof node !== 'object' || node === null) continue;
    if (depth >= MAX_DEPTH) {
      const shown = path.length > 120 ? `${path.slice(0, 120)}…` : path;
      return { path: shown, rule: `nested deeper than ${MAX_DEPTH} levels` };
    }
    if (Array.isArray(node)) {
      for (let i = node.length - 1; i >= 0; i--) stack.push([node[i], `${path}[${i}]`, depth + 1]);
      continue;
    }
    for (const key of Object.keys(node)) {
      if (FORBIDDEN_KEYS.has(key)) {
        return { path: `${path}.${key}`, rule: 'a property with this name is not allowed' };
      }
      const child = (node as Record<string, unknown>)[key];
      stack.push([child, `${path}.${safeName(key)}`, depth + 1]);
    }
  }
  return null;
}
