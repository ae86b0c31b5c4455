// Strict FHIR R4 validation from HL7's definitions: the JSON schema (via Ajv), then one walk
// over the structure definitions for cardinality, choice elements, ele-1, required bindings,
// the narrative and the error-level invariants (via FHIRPath). Everything is loaded, compiled
// and expanded once per process, on first use.
import { fhirJsonSchema, structureDefinitions, terminologyResources } from './definitions';
import { unsafeStructure } from './guard';
import { InstanceWalk } from './instance-walk';
import type { FhirIssue } from './issues';
import { FhirJsonSchema } from './json-schema';
import { buildModel, type FhirModel } from './structure';
import { Terminology } from './terminology';

export type { FhirIssue } from './issues';
export { MAX_DEPTH } from './guard';

/**
 * A key JavaScript treats specially or too deep a nesting, checked before the input is copied:
 * the only checks that are safe on arbitrary input.
 */
export function unsafeFhirInput(value: unknown): FhirIssue | null {
  return unsafeStructure(value, rootName(value));
}

/** Paths start with the resource type when it looks like one (it is echoed). */
function rootName(value: unknown): string {
  const type = (value as { resourceType?: unknown } | null)?.resourceType;
  return typeof type === 'string' && /^[A-Z][A-Za-z]{0,63}$/.test(type) ? type : 'Resource';
}
export { SKIPPED_INVARIANTS } from './invariants';

interface Loaded {
  model: FhirModel;
  schema: FhirJsonSchema;
  terminology: Terminology;
  loadMs: number;
}

let loaded: Loaded | undefined;

/**
 * Loads the definitions once per process: ~1.1-1.5 s on an idle 2-core machine, most of it
 * parsing profiles-resources.json (34 MB). Each resource type's JSON-schema validator compiles on
 * its first use (~0.3-0.7 s for the first, which brings the shared data types; ~50 ms after).
 */
export function loadFhirValidation(): { loadMs: number } {
  if (!loaded) {
    const started = performance.now();
    const model = buildModel(structureDefinitions());
    const terminology = new Terminology(terminologyResources());
    // Expanding every required binding now keeps the first request as fast as the rest.
    for (const shape of walkShapes(model)) {
      for (const element of shape.elements) {
        if (element.requiredValueSet) terminology.expand(element.requiredValueSet);
      }
    }
    const schema = new FhirJsonSchema(fhirJsonSchema());
    for (const type of [...model.resources.keys()]) {
      if (!schema.defines(type)) model.resources.delete(type);
    }
    loaded = { model, schema, terminology, loadMs: performance.now() - started };
  }
  return { loadMs: loaded.loadMs };
}

function* walkShapes(model: FhirModel) {
  const seen = new Set<unknown>();
  const stack = [...model.resources.values(), ...model.types.values()];
  while (stack.length > 0) {
    const shape = stack.pop()!;
    if (seen.has(shape)) continue;
    seen.add(shape);
    yield shape;
    for (const element of shape.elements) if (element.shape) stack.push(element.shape);
  }
}

function state(): Loaded {
  loadFhirValidation();
  return loaded!;
}

/** Whether `type` names a concrete FHIR R4 resource type. */
export function isR4ResourceType(type: string): boolean {
  return state().model.resources.has(type);
}

/**
 * The element that names a resource's patient: `subject` or `patient` when it may refer to a
 * Patient, else null.
 */
export function patientElement(type: string): 'subject' | 'patient' | null {
  const shape = state().model.resources.get(type);
  for (const name of ['subject', 'patient'] as const) {
    const slot = shape?.properties.get(name);
    if (slot?.type === 'Reference' && slot.element.targets.includes('Patient')) return name;
  }
  return null;
}

/**
 * Everything wrong with `resource` as a FHIR R4 resource (at most a few issues), or an empty
 * list. Paths start with the resource type, e.g. `Observation.component[0].code`.
 */
export function fhirIssues(resource: unknown): FhirIssue[] {
  if (typeof resource !== 'object' || resource === null || Array.isArray(resource)) {
    return [{ path: 'Resource', rule: 'must be a JSON object' }];
  }
  const root = rootName(resource);
  const unsafe = unsafeStructure(resource, root);
  if (unsafe) return [unsafe];
  const { model, schema, terminology } = state();
  const walk = new InstanceWalk(model, schema, terminology);
  walk.resource(resource as Record<string, unknown>, root);
  // Missing elements first: the field a client is pointed to is usually the one to add.
  const missing = (i: FhirIssue) => Number(i.rule.startsWith('required element missing'));
  return walk.issues.sort((a, b) => missing(b) - missing(a));
}
