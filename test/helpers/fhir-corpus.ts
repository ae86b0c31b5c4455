// Real FHIR R4 resources from the shared corpus (../shared/data/fhir-r4/valid: Synthea patients
// and HL7's examples, all valid by HAPI's validator; see its SOURCES.md), read in place, never
// copied into the project, and one-violation variants derived from them for each rule class.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** The repository root: the nearest directory above this file with our package.json. */
function repoRoot(): string {
  let dir = __dirname;
  while (
    !existsSync(join(dir, 'package.json')) ||
    !readFileSync(join(dir, 'package.json'), 'utf8').includes('"name": "custodia"')
  ) {
    const up = dirname(dir);
    if (up === dir) throw new Error('no custodia package.json above ' + __dirname);
    dir = up;
  }
  return dir;
}

export const FHIR_CORPUS_DIR =
  process.env.FHIR_CORPUS_DIR ?? resolve(repoRoot(), '../shared/data/fhir-r4/valid');

/** The corpus's file names, e.g. `synthea-Observation-1.json`, sorted. */
export function corpusFiles(): string[] {
  return readdirSync(FHIR_CORPUS_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort();
}

export type Resource = Record<string, unknown> & { resourceType: string };

/** A fresh copy of one corpus resource (owner field absent, as in the corpus). */
export function corpusResource(file: string): Resource {
  return JSON.parse(readFileSync(join(FHIR_CORPUS_DIR, file), 'utf8')) as Resource;
}

const XHTML = 'http://www.w3.org/1999/xhtml';
/** Planted in a variant where its value would show: no error message may contain it. */
export const PHI = 'Jane-Q-Public-7731';

export interface FhirVariant {
  /** What the variant breaks, as a sentence fragment. */
  name: string;
  file: string;
  /** Breaks exactly one rule of the real resource in place. */
  mutate(r: Resource): void;
  /** What the error must name: the path, and for invariants the rule key. */
  mentions: string[];
  /** The offending value as it would appear in text; the message must not contain it. */
  secret: string;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- variants edit arbitrary JSON */
const narrative = (div: string) => (r: any) => {
  r.text = { status: 'generated', div };
};

export const FHIR_VARIANTS: FhirVariant[] = [
  // Required bindings on code elements.
  ...(
    [
      ['Observation', 'synthea-Observation-1.json', 'status'],
      ['MedicationRequest', 'synthea-MedicationRequest-1.json', 'status'],
      ['MedicationRequest', 'synthea-MedicationRequest-1.json', 'intent'],
      ['Encounter', 'synthea-Encounter-1.json', 'status'],
      ['Immunization', 'synthea-Immunization-1.json', 'status'],
      ['AllergyIntolerance', 'synthea-AllergyIntolerance-1.json', 'criticality'],
      ['AllergyIntolerance', 'synthea-AllergyIntolerance-1.json', 'type'],
      ['Procedure', 'synthea-Procedure-1.json', 'status'],
      ['DiagnosticReport', 'synthea-DiagnosticReport-1.json', 'status'],
    ] as const
  ).map(([type, file, element]) => ({
    name: `a ${type}.${element} outside its required value set`,
    file,
    mutate: (r: any) => (r[element] = `not-a-code-${PHI}`),
    mentions: [`${type}.${element}`],
    secret: PHI,
  })),
  {
    name: 'an AllergyIntolerance.category outside its required value set',
    file: 'synthea-AllergyIntolerance-1.json',
    mutate: (r: any) => (r.category = [`drink-${PHI}`]),
    mentions: ['AllergyIntolerance.category[0]'],
    secret: PHI,
  },
  // Required bindings on CodeableConcept.
  {
    name: 'a Condition.clinicalStatus coded outside its required value set',
    file: 'synthea-Condition-1.json',
    mutate: (r: any) => (r.clinicalStatus.coding[0].code = `cured-${PHI}`),
    mentions: ['Condition.clinicalStatus'],
    secret: PHI,
  },
  {
    name: 'a Condition.clinicalStatus with the right code in another code system',
    file: 'synthea-Condition-1.json',
    mutate: (r: any) => (r.clinicalStatus.coding[0].system = `http://example.org/${PHI}`),
    mentions: ['Condition.clinicalStatus'],
    secret: PHI,
  },
  {
    name: 'a Condition.verificationStatus given as text only',
    file: 'synthea-Condition-1.json',
    mutate: (r: any) => (r.verificationStatus = { text: `probably ${PHI}` }),
    mentions: ['Condition.verificationStatus'],
    secret: PHI,
  },
  // JSON types and formats.
  {
    name: 'a CodeableConcept given as a number',
    file: 'synthea-Observation-1.json',
    mutate: (r: any) => (r.code = 977317),
    mentions: ['Observation.code'],
    secret: '977317',
  },
  {
    name: 'a decimal given as a string',
    file: 'synthea-Observation-1.json',
    mutate: (r: any) => (r.valueQuantity.value = `176 ${PHI}`),
    mentions: ['Observation.valueQuantity.value'],
    secret: PHI,
  },
  {
    name: 'a dateTime with a time but no timezone',
    file: 'synthea-Observation-1.json',
    mutate: (r: any) => (r.effectiveDateTime = '2011-10-14T23:37:54'),
    mentions: ['Observation.effectiveDateTime', 'dateTime'],
    secret: '23:37:54',
  },
  {
    name: 'an id that is not a FHIR id',
    file: 'synthea-Observation-1.json',
    mutate: (r: any) => (r.id = '../../etc'),
    mentions: ['Observation.id'],
    secret: '../../etc',
  },
  {
    name: 'a contained resource whose id is not a FHIR id',
    file: 'hl7-MedicationRequest-10.json',
    mutate: (r: any) => {
      r.contained[0].id = 'med/0309';
      r.medicationReference.reference = '#med/0309';
    },
    mentions: ['MedicationRequest.contained[0].id'],
    secret: 'med/0309',
  },
  {
    name: 'an element FHIR does not define',
    file: 'synthea-Observation-1.json',
    mutate: (r: any) => (r.nickname = PHI),
    mentions: ['Observation.nickname'],
    secret: PHI,
  },
  // Cardinality and choice elements.
  {
    name: 'a missing required element the JSON schema knows (Observation.code)',
    file: 'synthea-Observation-1.json',
    mutate: (r: any) => delete r.code,
    mentions: ['Observation.code', 'required'],
    secret: PHI,
  },
  {
    name: 'a missing required element only the structure definition knows (Observation.status)',
    file: 'synthea-Observation-1.json',
    mutate: (r: any) => delete r.status,
    mentions: ['Observation.status', 'required'],
    secret: PHI,
  },
  {
    name: 'a missing required choice element (MedicationRequest.medication[x])',
    file: 'synthea-MedicationRequest-1.json',
    mutate: (r: any) => delete r.medicationCodeableConcept,
    mentions: ['MedicationRequest.medication[x]', 'required'],
    secret: PHI,
  },
  {
    name: 'an array for an element of max cardinality 1',
    file: 'synthea-Observation-1.json',
    mutate: (r: any) => (r.effectiveDateTime = [r.effectiveDateTime]),
    mentions: ['Observation.effectiveDateTime'],
    secret: '2011-10-14',
  },
  {
    name: 'an extension without its url',
    file: 'synthea-Observation-1.json',
    mutate: (r: any) => (r.extension = [{ valueString: PHI }]),
    mentions: ['Observation.extension[0].url'],
    secret: PHI,
  },
  {
    name: 'two value[x] variants at once',
    file: 'synthea-Observation-1.json',
    mutate: (r: any) => (r.valueString = PHI),
    mentions: ['Observation.value[x]'],
    secret: PHI,
  },
  // ele-1: no empty objects, arrays or strings.
  {
    name: 'an empty array',
    file: 'synthea-Observation-1.json',
    mutate: (r: any) => (r.category = []),
    mentions: ['Observation.category', 'ele-1'],
    secret: PHI,
  },
  {
    name: 'an empty object',
    file: 'synthea-Observation-1.json',
    mutate: (r: any) => (r.code = {}),
    mentions: ['Observation.code', 'ele-1'],
    secret: PHI,
  },
  {
    name: 'an empty string',
    file: 'synthea-Observation-1.json',
    mutate: (r: any) => (r.code.text = ''),
    mentions: ['Observation.code.text'],
    secret: PHI,
  },
  {
    name: "an empty primitive's extension object (_status)",
    file: 'synthea-Observation-1.json',
    mutate: (r: any) => (r._status = {}),
    mentions: ['Observation._status', 'ele-1'],
    secret: PHI,
  },
  {
    name: 'a JSON null',
    file: 'synthea-Observation-1.json',
    mutate: (r: any) => (r.issued = null),
    mentions: ['Observation.issued'],
    secret: PHI,
  },
  // Invariants (FHIRPath).
  {
    name: 'a period that ends before it starts (per-1)',
    file: 'synthea-Encounter-1.json',
    mutate: (r: any) => (r.period.end = '1991-06-06T23:52:54+00:00'),
    mentions: ['Encounter.period', 'per-1'],
    secret: '1991-06-06',
  },
  {
    name: 'a quantity code without a system (qty-3)',
    file: 'synthea-Observation-1.json',
    mutate: (r: any) => delete r.valueQuantity.system,
    mentions: ['Observation.valueQuantity', 'qty-3'],
    secret: '176.35',
  },
  {
    name: 'a local reference to a contained resource that is not there (ref-1)',
    file: 'hl7-MedicationRequest-10.json',
    mutate: (r: any) => (r.performer = { reference: `#${PHI}` }),
    mentions: ['MedicationRequest.performer', 'ref-1'],
    secret: PHI,
  },
  {
    name: 'a contained resource nothing refers to (dom-3)',
    file: 'hl7-MedicationRequest-10.json',
    mutate: (r: any) => {
      delete r.medicationReference;
      r.medicationCodeableConcept = { text: 'Tylenol PM' };
    },
    mentions: ['MedicationRequest', 'dom-3'],
    secret: 'Tylenol',
  },
  {
    name: 'a contained resource with contained resources of its own (dom-2)',
    file: 'hl7-MedicationRequest-10.json',
    mutate: (r: any) =>
      (r.contained[0].contained = [{ resourceType: 'Substance', id: 's1', code: { text: PHI } }]),
    mentions: ['MedicationRequest', 'dom-2'],
    secret: PHI,
  },
  {
    name: 'an extension with both a value and extensions (ext-1)',
    file: 'synthea-Observation-1.json',
    mutate: (r: any) =>
      (r.extension = [
        {
          url: 'http://example.org/fhir/StructureDefinition/note',
          valueString: PHI,
          extension: [{ url: 'part', valueString: 'x' }],
        },
      ]),
    mentions: ['Observation.extension[0]', 'ext-1'],
    secret: PHI,
  },
  {
    name: 'a data-absent reason next to a value (obs-6)',
    file: 'synthea-Observation-1.json',
    mutate: (r: any) => (r.dataAbsentReason = { text: PHI }),
    mentions: ['Observation', 'obs-6'],
    secret: PHI,
  },
  {
    name: 'a reference range with neither bound nor text (obs-3, on a backbone element)',
    file: 'hl7-Observation-31.json',
    mutate: (r: any) => (r.referenceRange = [{ appliesTo: [{ text: PHI }] }]),
    mentions: ['Observation.referenceRange', 'obs-3'],
    secret: PHI,
  },
  {
    name: 'a comparator on a SimpleQuantity (sqty-1)',
    file: 'hl7-Observation-31.json',
    mutate: (r: any) => (r.referenceRange[0].low.comparator = '>='),
    mentions: ['Observation.referenceRange[0].low', 'sqty-1'],
    secret: '>=',
  },
  {
    name: 'a risk probability above 100 (ras-2)',
    file: 'hl7-RiskAssessment-2.json',
    mutate: (r: any) => (r.prediction[0].probabilityDecimal = 173.31),
    mentions: ['RiskAssessment.prediction', 'ras-2'],
    secret: '173.31',
  },
  // The narrative (txt-1, txt-2).
  {
    name: 'a <script> in the narrative',
    file: 'hl7-MedicationRequest-10.json',
    mutate: narrative(`<div xmlns="${XHTML}"><p>${PHI}</p><script>steal()</script></div>`),
    mentions: ['MedicationRequest.text.div', 'txt-1'],
    secret: PHI,
  },
  {
    name: 'an event-handler attribute in the narrative',
    file: 'synthea-Observation-1.json',
    mutate: narrative(`<div xmlns="${XHTML}"><p onclick="steal()">${PHI}</p></div>`),
    mentions: ['Observation.text.div', 'txt-1'],
    secret: PHI,
  },
  {
    name: 'a javascript: link in the narrative',
    file: 'synthea-Observation-1.json',
    mutate: narrative(`<div xmlns="${XHTML}"><a href=" jav&#x61;script:steal()">${PHI}</a></div>`),
    mentions: ['Observation.text.div', 'txt-1'],
    secret: PHI,
  },
  {
    name: 'a narrative that is not well-formed XHTML',
    file: 'synthea-Observation-1.json',
    mutate: narrative(`<div xmlns="${XHTML}"><p>${PHI}</div>`),
    mentions: ['Observation.text.div', 'txt-1'],
    secret: PHI,
  },
  {
    name: 'a narrative outside the XHTML namespace',
    file: 'synthea-Observation-1.json',
    mutate: narrative(`<div><p>${PHI}</p></div>`),
    mentions: ['Observation.text.div', 'txt-1'],
    secret: PHI,
  },
  {
    name: 'a narrative without content (txt-2)',
    file: 'synthea-Observation-1.json',
    mutate: narrative(`<div xmlns="${XHTML}"> <p> </p> </div>`),
    mentions: ['Observation.text.div', 'txt-2'],
    secret: PHI,
  },
  // Keys JavaScript treats specially, and depth.
  {
    name: 'an own __proto__ property',
    file: 'synthea-Observation-1.json',
    mutate: (r: any) =>
      Object.defineProperty(r.code, '__proto__', {
        value: { polluted: PHI },
        enumerable: true,
        configurable: true,
        writable: true,
      }),
    mentions: ['Observation.code.__proto__'],
    secret: PHI,
  },
  {
    name: 'a constructor property',
    file: 'synthea-Observation-1.json',
    mutate: (r: any) => (r.constructor = { prototype: { polluted: PHI } }),
    mentions: ['Observation.constructor'],
    secret: PHI,
  },
  {
    name: 'extensions nested deeper than any real resource',
    file: 'synthea-Observation-1.json',
    mutate: (r: any) => {
      let inner: any = { url: 'http://example.org/leaf', valueString: PHI };
      for (let i = 0; i < 80; i++) inner = { url: 'http://example.org/level', extension: [inner] };
      r.extension = [inner];
    },
    mentions: ['Observation.extension[0]', 'deeper'],
    secret: PHI,
  },
  // Dates the calendar has not, which the schema's patterns take (and JavaScript rolls over).
  ...(
    [
      [
        'Observation.effectiveDateTime',
        'synthea-Observation-1.json',
        'effectiveDateTime',
        '2011-02-30T23:37:54+00:00',
      ],
      [
        'Observation.issued',
        'synthea-Observation-1.json',
        'issued',
        '2011-04-31T23:37:54.530+00:00',
      ],
      ['Condition.onsetDateTime', 'synthea-Condition-1.json', 'onsetDateTime', '1991-02-29'],
    ] as const
  ).map(([path, file, element, date]) => ({
    name: `a ${path} on a day the calendar has not`,
    file,
    mutate: (r: any) => (r[element] = date),
    mentions: [path, 'calendar'],
    secret: date.slice(0, 10),
  })),
  {
    name: 'a date the calendar has not, inside a datatype',
    file: 'synthea-Encounter-1.json',
    mutate: (r: any) => (r.period = { start: '1991-06-31T23:37:54+00:00' }),
    mentions: ['Encounter.period.start', 'calendar'],
    secret: '1991-06-31',
  },
  // Whole-number types, which the JSON schema gives as numbers with a pattern (applied to
  // strings only): HAPI refuses each.
  ...(
    [
      [
        'a negative positiveInt',
        'timing',
        { repeat: { frequency: -1, period: 1, periodUnit: 'd' } },
        'dosageInstruction[0].timing.repeat.frequency',
        'positiveInt',
      ],
      [
        'a zero positiveInt',
        'timing',
        { repeat: { frequency: 0, period: 1, periodUnit: 'd' } },
        'dosageInstruction[0].timing.repeat.frequency',
        'positiveInt',
      ],
      [
        'a fractional positiveInt',
        'timing',
        { repeat: { frequency: 1.5, period: 1, periodUnit: 'd' } },
        'dosageInstruction[0].timing.repeat.frequency',
        'positiveInt',
      ],
      ['a fractional integer', 'sequence', 1.5, 'dosageInstruction[0].sequence', 'integer'],
    ] as const
  ).map(([name, element, value, path, type]) => ({
    name: `${name} (MedicationRequest.${path})`,
    file: 'synthea-MedicationRequest-1.json',
    mutate: (r: any) => (r.dosageInstruction[0][element] = value),
    mentions: [`MedicationRequest.${path}`, type],
    secret: PHI,
  })),
  {
    name: 'a negative unsignedInt (MedicationRequest.dispenseRequest.numberOfRepeatsAllowed)',
    file: 'synthea-MedicationRequest-1.json',
    mutate: (r: any) => (r.dispenseRequest = { numberOfRepeatsAllowed: -1 }),
    mentions: ['MedicationRequest.dispenseRequest.numberOfRepeatsAllowed', 'unsignedInt'],
    secret: PHI,
  },
  ...(
    [
      ['a fractional', 1.5, 'integer'],
      ['a 33-bit', 2_147_483_648, 'out of range'],
    ] as const
  ).map(([name, value, rule]) => ({
    name: `${name} Observation.valueInteger`,
    file: 'synthea-Observation-1.json',
    mutate: (r: any) => {
      delete r.valueQuantity;
      r.valueInteger = value;
    },
    mentions: ['Observation.valueInteger', rule],
    secret: PHI,
  })),
];
