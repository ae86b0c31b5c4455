// HL7's FHIR R4 JSON schema (fhir.schema.json, as bundled by Medplum) compiled with Ajv: JSON
// types, primitive formats (dateTime with a timezone, id, ...), code enums and unknown properties.
// Medplum's copy needs three repairs before it compiles and means what HL7 meant: it references
// `integer64` and `Resource` without defining them, and its complex types do not say they are
// objects (so `code: 7` passed as a CodeableConcept).
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import type { JsonSchemaDocument } from './definitions';
import { type FhirIssue, safeName } from './issues';

const SCHEMA_ID = 'urn:custodia:fhir-r4';

/** FHIR's integer types: 32-bit signed, and never below their own minimum. */
const INT32_MAX = 2_147_483_647;
const WHOLE_NUMBERS: Record<string, { name: string; min: number }> = {
  '^-?([0]|([1-9][0-9]*))$': { name: 'integer', min: -2_147_483_648 },
  '^[1-9][0-9]*$': { name: 'positiveInt', min: 1 },
  '^[0]|([1-9][0-9]*)$': { name: 'unsignedInt', min: 0 },
};

export class FhirJsonSchema {
  private readonly ajv: Ajv;
  private readonly validators = new Map<string, ValidateFunction>();
  /** Definition schema object → its name, to name the primitive a pattern error is about. */
  private readonly names = new Map<unknown, string>();
  private readonly definitionsByName: Record<string, unknown>;
  /** Some properties repeat a primitive's pattern inline instead of referring to it. */
  private readonly patterns = new Map<string, string>();

  constructor(document: JsonSchemaDocument) {
    const definitions: Record<string, Record<string, unknown>> = {};
    for (const [name, raw] of Object.entries(document.definitions)) {
      const definition = this.wholeNumbers(raw);
      const repaired = definition.properties ? { type: 'object', ...definition } : definition;
      definitions[name] = repaired;
      this.names.set(repaired, name);
      if (typeof definition.pattern === 'string' && !this.patterns.has(definition.pattern)) {
        this.patterns.set(definition.pattern, name);
      }
    }
    // R5's integer64 (a string of digits in JSON) is only used by Medplum's own resources.
    definitions.integer64 = { type: 'string', pattern: '^-?([0]|([1-9][0-9]*))$' };
    // Contained resources are checked, each against its own type, by the instance walk: a oneOf
    // over every resource type would cost ~150 attempts per contained resource.
    const anyResource = {
      type: 'object',
      required: ['resourceType'],
      properties: { resourceType: { type: 'string' } },
    };
    definitions.Resource = anyResource;
    definitions.ResourceList = anyResource;
    this.definitionsByName = definitions;

    this.ajv = new Ajv({
      strict: false,
      // All errors, so that a caller learns of a missing element and a wrong type at once.
      allErrors: true,
      verbose: true,
      validateSchema: false,
      // One function per definition, shared by every type that uses it, and no optimisation
      // passes: compiling Observation takes ~0.3 s instead of ~0.9 s, validating costs the same.
      inlineRefs: false,
      code: { optimize: false },
    });
    this.ajv.addSchema({ $id: SCHEMA_ID, definitions });
  }

  /**
   * The schema gives integer, positiveInt and unsignedInt as numbers with a pattern, which JSON
   * Schema applies to strings only: -1, 0 or 1.5 passed as a positiveInt. Each becomes a whole
   * number in its FHIR range, wherever it appears (named, or inline in a choice element).
   */
  private wholeNumbers<T extends Record<string, unknown>>(definition: T): T {
    const replaced = (schema: Record<string, unknown>): Record<string, unknown> => {
      const range = typeof schema.pattern === 'string' ? WHOLE_NUMBERS[schema.pattern] : undefined;
      if (schema.type !== 'number' || !range) return schema;
      const { pattern: _pattern, ...rest } = schema;
      const whole = { ...rest, type: 'integer', minimum: range.min, maximum: INT32_MAX };
      this.names.set(whole, range.name);
      return whole;
    };
    const own = replaced(definition);
    if (own !== definition) return own as T;
    const properties = definition.properties as Record<string, Record<string, unknown>> | undefined;
    if (!properties) return definition;
    const out: Record<string, Record<string, unknown>> = {};
    for (const [key, property] of Object.entries(properties)) {
      const items = property.items as Record<string, unknown> | undefined;
      out[key] = items ? { ...property, items: replaced(items) } : replaced(property);
    }
    return { ...definition, properties: out };
  }

  /** Medplum's structure definitions add R4B's SubscriptionStatus, which R4's schema lacks. */
  defines(type: string): boolean {
    return Object.hasOwn(this.definitionsByName, type);
  }

  /** What a resource of the given (known R4) type breaks. */
  check(resource: unknown, type: string, path: string): FhirIssue[] {
    const validate = this.validator(type);
    if (validate(resource)) return [];
    return validate.errors!.map((e) => this.issue(e, path));
  }

  /**
   * A type's validator is compiled on its first use, once per process: compiling all ~146
   * resource types up front would add ~2 s to every start for types few patients store.
   */
  private validator(type: string): ValidateFunction {
    let validate = this.validators.get(type);
    if (!validate) {
      validate = this.ajv.getSchema(`${SCHEMA_ID}#/definitions/${type}`);
      if (!validate) throw new Error(`FHIR JSON schema has no definition for ${type}`);
      this.validators.set(type, validate);
    }
    return validate;
  }

  /** An issue that names the path and the rule, never the value (it may be PHI). */
  private issue(error: ErrorObject, root: string): FhirIssue {
    const path = root + pointerToPath(error.instancePath);
    const params = error.params as Record<string, unknown>;
    const defined = this.names.get(error.parentSchema);
    switch (error.keyword) {
      case 'additionalProperties':
        return {
          path: `${path}.${safeName(String(params.additionalProperty))}`,
          rule: 'unknown element (not defined by FHIR R4 here)',
        };
      case 'required':
        return {
          path: `${path}.${String(params.missingProperty)}`,
          rule: 'required element missing (min 1)',
        };
      case 'type':
        return {
          path,
          rule:
            params.type === 'array'
              ? 'must be an array'
              : `must be a JSON ${String(params.type)}${defined ? ` (FHIR ${defined})` : ''}`,
        };
      case 'pattern': {
        const primitive = defined ?? this.patterns.get(String(params.pattern)) ?? 'value';
        return { path, rule: `not a valid FHIR ${primitive} (wrong format)` };
      }
      case 'enum':
        return { path, rule: 'not one of the codes its required value set allows' };
      case 'minimum':
      case 'maximum':
        return { path, rule: `out of range for FHIR ${defined ?? 'number'}` };
      default:
        return { path, rule: `fails JSON schema rule '${error.keyword}'` };
    }
  }
}

/** `/component/0/code` → `.component[0].code`. */
function pointerToPath(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(part) ? `[${part}]` : `.${part}`;
  }
  return out;
}
