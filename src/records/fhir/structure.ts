// The shape of every R4 resource and data type, built once from the structure definitions'
// snapshots: for each JSON property, the element it belongs to (cardinality, type, required
// binding, error-level invariants), with backbone elements inlined and choice elements
// (`value[x]`) expanded into their JSON names (`valueQuantity`, `valueString`, ...).
import type { ConstraintDefinition, ElementDefinition, StructureDefinition } from './definitions';

/** An error-level invariant, evaluated with FHIRPath where `base` says what the focus is. */
export interface Invariant {
  key: string;
  human: string;
  expression: string;
  base: string;
}

export interface ElementRule {
  /** As in the structure definition: `status`, `value[x]`. */
  name: string;
  /** The definition's path, e.g. `Observation.referenceRange`: FHIRPath's base there. */
  path: string;
  min: number;
  max: number;
  choice: boolean;
  /** The value set an R4 `required` binding names (version dropped), if any. */
  requiredValueSet?: string;
  /**
   * Invariants defined on this element itself (its type's own come with the type), lifted to
   * its parent (`name.where((expression) = false).empty()`): evaluated once per parent, and
   * FHIRPath.js cannot
   * take a bare primitive (RiskAssessment's ras-1 on `probabilityDecimal`) as its focus.
   */
  invariants: Invariant[];
  /** Invariants of a profile its type is constrained to (e.g. SimpleQuantity's sqty-1). */
  profileInvariants: Invariant[];
  /** Children defined inline (backbone elements, or a contentReference's target). */
  shape?: Shape;
  /** Resource types a Reference here may point to (from targetProfile). */
  targets: string[];
}

export interface Slot {
  element: ElementRule;
  /** The FHIR type of the value in this JSON property, e.g. `Quantity`, `dateTime`. */
  type: string;
}

export interface Shape {
  /** The type's name, or the backbone element's path. */
  name: string;
  elements: ElementRule[];
  /** JSON property name (without a leading `_`) → element and type. */
  properties: Map<string, Slot>;
  /** The type's own invariants (at its root element), checked on every instance. */
  invariants: Invariant[];
}

export interface FhirModel {
  /** Concrete R4 resource types. */
  resources: Map<string, Shape>;
  /** Complex data types, plus `Element` for primitives' `_name` companions. */
  types: Map<string, Shape>;
  primitives: Set<string>;
}

const FHIR_TYPE_EXTENSION = 'http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type';
const PROFILE_PREFIX = 'http://hl7.org/fhir/StructureDefinition/';

/** The narrative rules need an XHTML parser, not FHIRPath; ele-1 is checked on every node. */
const CHECKED_NATIVELY = new Set(['ele-1', 'txt-1', 'txt-2']);

export function buildModel(definitions: StructureDefinition[]): FhirModel {
  const model: FhirModel = { resources: new Map(), types: new Map(), primitives: new Set() };
  const profiles = new Map<string, StructureDefinition>();
  for (const sd of definitions) {
    if (sd.kind === 'logical') continue;
    if (sd.derivation === 'constraint') profiles.set(sd.url, sd);
    else if (sd.kind === 'primitive-type') model.primitives.add(sd.id);
  }
  for (const sd of definitions) {
    if (sd.kind === 'logical' || sd.kind === 'primitive-type' || sd.derivation === 'constraint') {
      continue;
    }
    const shape = shapeOf(sd, profiles);
    if (sd.kind === 'resource') {
      if (!sd.abstract) model.resources.set(sd.id, shape);
    } else model.types.set(sd.id, shape);
  }
  return model;
}

function shapeOf(sd: StructureDefinition, profiles: Map<string, StructureDefinition>): Shape {
  const [root, ...elements] = sd.snapshot.element;
  const shapes = new Map<string, Shape>();
  const top: Shape = {
    name: sd.id,
    elements: [],
    properties: new Map(),
    invariants: invariantsOf(root.constraint, sd.id, () => true),
  };
  shapes.set(root.path, top);
  const rules = new Map<string, ElementRule>();
  const deferred: [ElementRule, string][] = [];
  const ownConstraint = (c: ConstraintDefinition) => !c.source || c.source === sd.url;

  for (const def of elements) {
    const cut = def.path.lastIndexOf('.');
    const parentPath = def.path.slice(0, cut);
    let parent = shapes.get(parentPath);
    if (!parent) {
      // The first child of a backbone element: that element gets a shape of its own.
      const owner = rules.get(parentPath);
      if (!owner) throw new Error(`FHIR definitions: ${def.path} has no parent element`);
      parent = { name: parentPath, elements: [], properties: new Map(), invariants: [] };
      owner.shape = parent;
      shapes.set(parentPath, parent);
    }
    const rule = ruleOf(def, profiles, ownConstraint);
    rules.set(def.path, rule);
    parent.elements.push(rule);
    for (const [property, type] of propertiesOf(def, rule)) {
      parent.properties.set(property, { element: rule, type });
    }
    if (def.contentReference) deferred.push([rule, def.contentReference.replace(/^.*#/, '')]);
  }
  for (const [rule, target] of deferred) {
    const shape = shapes.get(target);
    if (!shape) throw new Error(`FHIR definitions: no element ${target} in ${sd.id}`);
    rule.shape = shape;
  }
  return top;
}

function ruleOf(
  def: ElementDefinition,
  profiles: Map<string, StructureDefinition>,
  ownConstraint: (c: ConstraintDefinition) => boolean,
): ElementRule {
  const name = def.path.slice(def.path.lastIndexOf('.') + 1);
  const binding = def.binding;
  const profileInvariants: Invariant[] = [];
  for (const type of def.type ?? []) {
    for (const url of type.profile ?? []) {
      const profile = profiles.get(url);
      if (!profile) continue;
      const base = profile.snapshot.element[0];
      // Only what the profile adds: its base type's invariants are checked with the type.
      const added = (c: ConstraintDefinition) => c.source === undefined || c.source === url;
      profileInvariants.push(...invariantsOf(base.constraint, profile.type, added));
    }
  }
  return {
    name,
    path: def.path,
    min: def.min ?? 0,
    max: def.max === '*' || def.max === undefined ? Infinity : Number(def.max),
    choice: name.endsWith('[x]'),
    requiredValueSet:
      binding?.strength === 'required' && binding.valueSet
        ? binding.valueSet.replace(/\|.*$/, '')
        : undefined,
    invariants: liftedInvariants(def, ownConstraint),
    profileInvariants,
    targets: (def.type ?? []).flatMap((t) =>
      (t.targetProfile ?? [])
        .filter((p) => p.startsWith(PROFILE_PREFIX))
        .map((p) => p.slice(PROFILE_PREFIX.length)),
    ),
  };
}

function liftedInvariants(
  def: ElementDefinition,
  keep: (c: ConstraintDefinition) => boolean,
): Invariant[] {
  const cut = def.path.lastIndexOf('.');
  const name = def.path.slice(cut + 1).replace('[x]', '');
  return invariantsOf(def.constraint, def.path.slice(0, cut), keep).map((invariant) => ({
    ...invariant,
    // An empty result holds, as at any focus: `all()` would count it as false.
    expression: `${name}.where((${invariant.expression}) = false).empty()`,
  }));
}

function invariantsOf(
  constraints: ConstraintDefinition[] | undefined,
  base: string,
  keep: (c: ConstraintDefinition) => boolean,
): Invariant[] {
  return (constraints ?? [])
    .filter(
      (c) => c.severity === 'error' && c.expression && !CHECKED_NATIVELY.has(c.key) && keep(c),
    )
    .map((c) => ({ key: c.key, human: c.human, expression: c.expression!, base }));
}

/** The JSON property names of an element and the FHIR type each one holds. */
function propertiesOf(def: ElementDefinition, rule: ElementRule): [string, string][] {
  const types = (def.type ?? []).map((t) => {
    // FHIRPath system types (Resource.id, Extension.url) name their FHIR type in an extension.
    const fhirType = t.extension?.find((e) => e.url === FHIR_TYPE_EXTENSION)?.valueUrl;
    if (fhirType) return fhirType;
    if (t.code.startsWith('http://hl7.org/fhirpath/System.')) return 'string';
    return t.code;
  });
  if (def.contentReference) return [[rule.name, 'BackboneElement']];
  if (!rule.choice) return [[rule.name, types[0]]];
  const stem = rule.name.slice(0, -3);
  return types.map((type) => {
    const suffix = type[0].toUpperCase() + type.slice(1);
    return [`${stem}${suffix}`, type];
  });
}
