// Error-level invariants of the R4 structure definitions, evaluated with HL7's FHIRPath.js over
// its R4 model. Each expression is compiled once, on first use.
import { compile } from 'fhirpath';
import r4 from 'fhirpath/fhir-context/r4';
import type { Invariant } from './structure';

/**
 * Invariants we do not evaluate, and why. Everything else of severity `error` is enforced;
 * the corpus test shows which of them hold on real, HAPI-valid data.
 */
export const SKIPPED_INVARIANTS: ReadonlyMap<string, string> = new Map([]);

/**
 * Expressions R4 wrote for a lenient engine. dom-3 applies `as(canonical)` to all descendants at
 * once; FHIRPath.js (rightly, by the spec) wants a singleton there and throws, so every resource
 * with a contained resource would escape the rule. `ofType()` is what the rule means.
 */
const REPAIRS: ReadonlyMap<string, (expression: string) => string> = new Map([
  ['dom-3', (e: string) => e.replace(/\.as\(/g, '.ofType(')],
]);

type Json = Record<string, unknown> | null | undefined;

/**
 * When the commonest data-type invariants can fail at all, read off their expressions: ref-1
 * only constrains a local (`#`) reference, per-1 a period with both ends, qty-3 a quantity with a
 * code. Elsewhere they hold without running FHIRPath (References alone are ~10 per resource).
 */
const RELEVANT: ReadonlyMap<string, (focus: Json) => boolean> = new Map([
  ['ref-1', (f: Json) => typeof f?.reference === 'string' && f.reference.startsWith('#')],
  ['per-1', (f: Json) => f?.start !== undefined && f?.end !== undefined],
  ['qty-3', (f: Json) => f?.code !== undefined],
]);

type Evaluator = (data: unknown, env: Record<string, unknown>) => unknown[];

const compiled = new Map<string, Evaluator | null>();
const silent = { traceFn: () => undefined };

function evaluatorFor(invariant: Invariant): Evaluator | null {
  const key = `${invariant.base}\u0000${invariant.expression}`;
  let evaluate = compiled.get(key);
  if (evaluate === undefined) {
    try {
      const repair = REPAIRS.get(invariant.key);
      const expression = repair ? repair(invariant.expression) : invariant.expression;
      evaluate = compile({ base: invariant.base, expression }, r4, silent) as Evaluator;
    } catch {
      // An expression FHIRPath.js cannot parse cannot be enforced; treat it as skipped.
      evaluate = null;
    }
    compiled.set(key, evaluate);
  }
  return evaluate;
}

/**
 * Whether the invariant holds on `focus`, inside `resource` (the resource that holds it)
 * within `rootResource` (the outermost one, for contained resources). An empty result holds, as
 * it does in HL7's validator (comparisons of dates of different precision give empty). An
 * expression the engine cannot evaluate is not held against the data.
 */
export function invariantHolds(
  invariant: Invariant,
  focus: unknown,
  resource: unknown,
  rootResource: unknown,
): boolean {
  if (SKIPPED_INVARIANTS.has(invariant.key)) return true;
  const relevant = RELEVANT.get(invariant.key);
  if (relevant && typeof focus === 'object' && !relevant(focus as Json)) return true;
  if (vacuous(invariant, focus)) return true;
  const evaluate = evaluatorFor(invariant);
  if (!evaluate) return true;
  let result: unknown[];
  try {
    result = evaluate(focus, { resource, rootResource });
  } catch {
    return true;
  }
  if (result.length > 0 && result[0] === false) return false;
  return ALSO.get(invariant.key)?.(focus as Json) ?? true;
}

/**
 * What an invariant says where FHIRPath.js lets data through that HL7's validator refuses.
 * rng-2 (low ≤ high): FHIRPath.js compares no quantities without a UCUM unit (a Range of plain
 * numbers, or of one non-UCUM unit, passed whatever its ends); compared here as numbers when
 * both ends name the same unit (or none).
 */
const ALSO: ReadonlyMap<string, (focus: Json) => boolean> = new Map([
  [
    'rng-2',
    (f: Json) => {
      const low = f?.low as Json;
      const high = f?.high as Json;
      if (typeof low?.value !== 'number' || typeof high?.value !== 'number') return true;
      const unit = (q: NonNullable<Json>) =>
        `${String(q.system ?? '')}|${String(q.code ?? q.unit ?? '')}`;
      return unit(low) !== unit(high) || low.value <= high.value;
    },
  ],
]);

const chains = new Map<string, string | null>();

/**
 * Many invariants read `X.<path>.empty()` (dom-2 … dom-5 on every resource: `contained…`).
 * When X is absent such an invariant holds without evaluating it, which keeps the per-resource
 * cost down. Only a plain chain qualifies: member names and where/select/ofType/as/trace, ending
 * in `.empty()`, with no operator at the top level.
 */
function vacuous(invariant: Invariant, focus: unknown): boolean {
  let head = chains.get(invariant.expression);
  if (head === undefined) {
    head = chainHead(invariant.expression);
    chains.set(invariant.expression, head);
  }
  if (head === null || typeof focus !== 'object' || focus === null) return false;
  // `value` is present as `valueQuantity`, and a primitive with only extensions as `_name`.
  for (const key in focus) {
    if (key.startsWith(head) || key.startsWith(`_${head}`)) return false;
  }
  return true;
}

function chainHead(expression: string): string | null {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < expression.length; i++) {
    const c = expression[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === "'") {
      const end = expression.indexOf("'", i + 1);
      if (end < 0) return null;
      i = end;
    } else if (depth === 0 && c === '.') {
      parts.push(expression.slice(start, i));
      start = i + 1;
    } else if (depth === 0 && /\s/.test(c)) return null;
  }
  parts.push(expression.slice(start));
  if (parts.length < 2 || parts[parts.length - 1] !== 'empty()') return null;
  const [head, ...middle] = parts.slice(0, -1);
  if (!/^[a-z][A-Za-z0-9]*$/.test(head)) return null;
  const step = /^([a-z][A-Za-z0-9]*|(where|select|ofType|as|trace)\(.*\))$/s;
  return middle.every((p) => step.test(p)) ? head : null;
}
