// One walk of a resource against the R4 model: what the JSON schema cannot say. Cardinality,
// at most one variant of a choice element, ele-1 (no empty objects, arrays or strings), required
// bindings on code, Coding and CodeableConcept, the narrative rules and the error-level
// invariants. It does not trust JSON types: the JSON schema reports those.
import type { FhirJsonSchema } from './json-schema';
import { onRealCalendarDay } from '../../common/instants';
import { invariantHolds } from './invariants';
import { type FhirIssue, safeName } from './issues';
import { narrativeProblem } from './narrative';
import type { ElementRule, FhirModel, Invariant, Shape, Slot } from './structure';
import type { Terminology } from './terminology';

/** Enough to say what is wrong; the rest would only repeat it. */
export const MAX_ISSUES = 5;

type Json = Record<string, unknown>;

/** Code points below 32 but tab, LF and CR (FHIR's rule for every string). */
// eslint-disable-next-line no-control-regex -- these are what the rule refuses
const C0_BUT_WHITESPACE = /[\u0000-\u0008\u000B\u000C\u000E-\u001F]/;

interface Scope {
  /** The resource an element belongs to (FHIRPath's %resource) … */
  resource: Json;
  /** … and the outermost one, for contained resources (%rootResource). */
  root: Json;
}

interface Coding {
  system?: unknown;
  code?: unknown;
}

export class InstanceWalk {
  readonly issues: FhirIssue[] = [];

  constructor(
    private readonly model: FhirModel,
    private readonly schema: FhirJsonSchema,
    private readonly terminology: Terminology,
  ) {}

  private get full(): boolean {
    return this.issues.length >= MAX_ISSUES;
  }

  private report(path: string, rule: string): void {
    if (this.full || this.issues.some((i) => i.path === path)) return;
    this.issues.push({ path, rule });
  }

  resource(value: Json, path: string, container?: Json): void {
    const type = value.resourceType;
    const shape = typeof type === 'string' ? this.model.resources.get(type) : undefined;
    if (!shape) {
      this.report(`${path}.resourceType`, 'not a FHIR R4 resource type');
      return;
    }
    // The walk runs even when the schema has failed (it tolerates wrong JSON types), so that a
    // caller hears of a missing element and a wrong type in one answer.
    for (const issue of this.schema.check(value, type as string, path)) {
      this.report(issue.path, issue.rule);
    }
    const scope = { resource: value, root: container ?? value };
    this.object(value, shape, path, scope);
    this.invariants(shape.invariants, value, path, scope);
  }

  private object(obj: Json, shape: Shape, path: string, scope: Scope): void {
    let choices: [ElementRule, string][] | undefined;
    let empty = true;
    for (const key in obj) {
      if (this.full) return;
      if (!Object.hasOwn(obj, key) || obj[key] === undefined) continue;
      if (key === 'resourceType' && shape === this.model.resources.get(obj.resourceType as string))
        continue;
      empty = false;
      const underscore = key.charCodeAt(0) === 95; // '_': a primitive's id and extensions
      const name = underscore ? key.slice(1) : key;
      const slot = shape.properties.get(name);
      const at = `${path}.${safeName(key)}`;
      if (!slot) {
        this.report(at, 'unknown element (not defined by FHIR R4 here)');
        continue;
      }
      if (slot.element.choice) (choices ??= []).push([slot.element, name]);
      const value = obj[key];
      if (Array.isArray(value)) {
        if (value.length === 0) this.report(at, 'ele-1: an array must not be empty');
        else if (value.length > slot.element.max) {
          this.report(at, `too many values (at most ${slot.element.max})`);
        }
        for (let i = 0; i < value.length; i++) {
          this.value(value[i], slot, `${at}[${i}]`, underscore, scope);
        }
      } else this.value(value, slot, at, underscore, scope);
    }
    if (empty) this.report(path, 'ele-1: an element must have a value or children');
    if (choices && choices.length > 1) this.choices(choices, path);
    for (const element of shape.elements) {
      if (element.invariants.length > 0 && this.present(obj, shape, element)) {
        this.invariants(element.invariants, obj, `${path}.${element.name}`, scope);
      }
      if (element.min > 0 && !this.present(obj, shape, element)) {
        this.report(`${path}.${element.name}`, `required element missing (min ${element.min})`);
      } else if (element.min > 1 && count(obj[element.name]) < element.min) {
        this.report(`${path}.${element.name}`, `too few values (at least ${element.min})`);
      }
    }
  }

  private present(obj: Json, shape: Shape, element: ElementRule): boolean {
    if (!element.choice) {
      return obj[element.name] !== undefined || obj[`_${element.name}`] !== undefined;
    }
    for (const key in obj) {
      const name = key.charCodeAt(0) === 95 ? key.slice(1) : key;
      if (shape.properties.get(name)?.element === element) return true;
    }
    return false;
  }

  private choices(choices: [ElementRule, string][], path: string): void {
    const seen = new Map<ElementRule, string>();
    for (const [element, name] of choices) {
      const other = seen.get(element);
      if (other !== undefined && other !== name) {
        this.report(
          `${path}.${element.name}`,
          'only one of the types of a choice element may be present',
        );
        return;
      }
      seen.set(element, name);
    }
  }

  private value(value: unknown, slot: Slot, path: string, underscore: boolean, scope: Scope) {
    if (value === null) {
      // JSON null only holds a place in a primitive array's `_name` twin.
      if (!underscore) this.report(path, 'ele-1: null is not a FHIR value');
      return;
    }
    if (underscore) {
      this.object(value as Json, this.model.types.get('Element')!, path, scope);
      return;
    }
    const { element, type } = slot;
    if (this.model.primitives.has(type) || typeof value !== 'object') {
      this.primitive(value, type, element, path);
      return;
    }
    if (type === 'Resource') {
      this.resource(value as Json, path, scope.root);
      return;
    }
    const shape = element.shape ?? this.model.types.get(type);
    if (!shape) return;
    this.object(value as Json, shape, path, scope);
    if (element.requiredValueSet && (type === 'Coding' || type === 'CodeableConcept')) {
      this.binding(value as Json, type, element.requiredValueSet, path);
    }
    this.invariants(shape.invariants, value, path, scope);
    this.invariants(element.profileInvariants, value, path, scope);
  }

  private primitive(value: unknown, type: string, element: ElementRule, path: string): void {
    if (value === '') {
      this.report(path, 'ele-1: a string must not be empty');
      return;
    }
    // FHIR's string: "SHALL NOT contain Unicode character points below 32, except for u0009
    // (horizontal tab), u0010 (carriage return) and u0013 (line feed)" (the schema's pattern
    // lets them through); an escape sequence in a name would reach whoever prints it.
    if (typeof value === 'string' && C0_BUT_WHITESPACE.test(value)) {
      this.report(path, 'a FHIR string must not hold control characters other than tab, CR and LF');
    }
    if (type === 'code' && element.requiredValueSet) {
      const members = this.terminology.expand(element.requiredValueSet);
      if (members && !members.codes.has(value as string)) {
        this.report(path, `not a code of the required value set ${element.requiredValueSet}`);
      }
    }
    // The schema's patterns take 2019-02-30, which JavaScript would read as 2 March.
    if (
      (type === 'date' || type === 'dateTime' || type === 'instant') &&
      typeof value === 'string' &&
      !onRealCalendarDay(value)
    ) {
      this.report(path, 'not a day the calendar has');
    }
    if (type === 'xhtml' && typeof value === 'string') {
      const problem = narrativeProblem(value);
      if (problem) this.report(path, problem);
    }
  }

  /** A required binding: a Coding must be in the set; a CodeableConcept must hold one that is. */
  private binding(value: Json, type: string, valueSet: string, path: string): void {
    const members = this.terminology.expand(valueSet);
    if (!members) return;
    const inSet = (c: Coding) =>
      typeof c.code === 'string' &&
      typeof c.system === 'string' &&
      members.bySystem.get(c.system)?.has(c.code) === true;
    if (type === 'Coding') {
      if (!inSet(value)) this.report(path, `not a coding of the required value set ${valueSet}`);
      return;
    }
    const codings = Array.isArray(value.coding) ? (value.coding as Coding[]) : [];
    if (!codings.some(inSet)) {
      this.report(path, `needs a coding (system and code) from the required value set ${valueSet}`);
    }
  }

  private invariants(invariants: Invariant[], focus: unknown, path: string, scope: Scope): void {
    for (const invariant of invariants) {
      if (this.full) return;
      if (!invariantHolds(invariant, focus, scope.resource, scope.root)) {
        this.report(path, `${invariant.key}: ${invariant.human}`);
      }
    }
  }
}

function count(value: unknown): number {
  return Array.isArray(value) ? value.length : value === undefined ? 0 : 1;
}
