// FHIR R4 transaction bundles built from the shared corpus (real Synthea and HL7 resources),
// the way Synthea writes them: a Patient entry, the practitioners and organisations the
// records name, and every record with its source fullUrl (Synthea's urn:uuid, HL7's canonical
// URL and id), so that the references between corpus resources resolve inside the bundle.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { corpusFiles, corpusResource, FHIR_CORPUS_DIR, Resource } from './fhir-corpus';

export interface BundleEntry {
  fullUrl?: string;
  resource: Resource;
  request?: { method: string; url: string };
}

export interface CorpusBundle {
  resourceType: 'Bundle';
  type: string;
  entry: BundleEntry[];
}

export const PATIENT_FULL_URL = 'urn:uuid:7c1e5a0e-3b7d-4f0b-9c1a-2a6f3e9d8b41';

/** The source fullUrl (Synthea) or id (HL7) of each corpus file, from MANIFEST.tsv. */
function manifest(): Map<string, string> {
  const lines = readFileSync(join(FHIR_CORPUS_DIR, '..', 'MANIFEST.tsv'), 'utf8')
    .trim()
    .split('\n')
    .slice(1);
  return new Map(lines.map((l) => l.split('\t')).map((c) => [c[0], c[5]]));
}

const OWNER: Record<string, string> = {
  AllergyIntolerance: 'patient',
  Immunization: 'patient',
  NutritionOrder: 'patient',
};

/**
 * Every corpus resource as one transaction bundle for one patient: entry 0 is the Patient,
 * entries 1 and 2 an Organization and a Practitioner (skipped by an import), then the corpus
 * files in name order, each with its owner field naming the bundle's Patient.
 */
export function corpusBundle(files = corpusFiles()): CorpusBundle {
  const sources = manifest();
  const entry: BundleEntry[] = [
    {
      fullUrl: PATIENT_FULL_URL,
      resource: {
        resourceType: 'Patient',
        id: PATIENT_FULL_URL.slice('urn:uuid:'.length),
        gender: 'female',
        birthDate: '1970-04-01',
      },
      request: { method: 'POST', url: 'Patient' },
    },
    {
      fullUrl: 'urn:uuid:0b8d2c1e-9d55-4c44-8a4b-1f0f5e2a7c33',
      resource: { resourceType: 'Organization', name: 'General Hospital' },
      request: { method: 'POST', url: 'Organization' },
    },
    {
      fullUrl: 'urn:uuid:5d3e9b7a-4c21-4e8f-b6a0-9e7d1c2b3a44',
      resource: { resourceType: 'Practitioner', name: [{ family: 'Hilpert' }] },
      request: { method: 'POST', url: 'Practitioner' },
    },
  ];
  for (const file of files) {
    const resource = corpusResource(file);
    const source = sources.get(file)!;
    const type = resource.resourceType;
    let fullUrl: string;
    if (file.startsWith('synthea-')) {
      fullUrl = source;
      resource.id = source.slice('urn:uuid:'.length);
    } else {
      fullUrl = `http://hl7.org/fhir/${type}/${source}`;
      resource.id = source;
    }
    resource[OWNER[type] ?? 'subject'] = { reference: PATIENT_FULL_URL };
    entry.push({ fullUrl, resource, request: { method: 'POST', url: type } });
  }
  return { resourceType: 'Bundle', type: 'transaction', entry };
}

/**
 * A bundle of `n` entries (n > 333): the corpus bundle, then its records again under fresh
 * fullUrls and without ids, as a long Synthea history repeats the same kinds of records;
 * their references still resolve, to the first copy's entries.
 */
export function largeBundle(n: number): CorpusBundle {
  const base = corpusBundle();
  const records = base.entry.slice(3);
  const entry = [...base.entry];
  for (let i = 0; entry.length < n; i++) {
    const { resource, request } = structuredClone(records[i % records.length]);
    delete resource.id;
    entry.push({ fullUrl: `urn:uuid:${randomUUID()}`, resource, request });
  }
  return { resourceType: 'Bundle', type: 'transaction', entry };
}
