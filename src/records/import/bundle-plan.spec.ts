/* eslint-disable @typescript-eslint/no-explicit-any -- variants edit arbitrary JSON */
import { BadUserInputError } from '../../common/errors';
import { corpusBundle, largeBundle, PATIENT_FULL_URL } from '../../../test/helpers/fhir-bundle';
import {
  MAX_BUNDLE_ENTRIES,
  MAX_ENTRY_RESOURCE_BYTES,
  outsideReferenceNames,
  planImport,
  sameFacts,
  samePerson,
  sourcesOf,
} from './bundle-plan';

const OWNER = '6f0d3a4e-1f5b-4c1e-9d7a-2b8e5c3a9f10';
const plan = (bundle: unknown) => planImport(bundle, OWNER);

/** The BadUserInputError the plan rejects with; any other outcome fails the test. */
async function badUserInput(planned: Promise<unknown>): Promise<BadUserInputError> {
  const e = await planned.then(
    () => new Error('expected BAD_USER_INPUT, but the plan succeeded'),
    (err: unknown) => err,
  );
  if (e instanceof BadUserInputError) return e;
  throw e;
}

describe('planning a bundle import', () => {
  it('imports every corpus resource and the Patient, skipping what holds no patient data', async () => {
    const bundle = corpusBundle();
    const p = await plan(bundle);
    expect(p.records).toHaveLength(bundle.entry.length - 2);
    expect(p.skipped).toBe(2);
    expect(p.skippedTypes).toEqual(['Organization', 'Practitioner']);
    const patient = p.records.find((r) => r.resource.resourceType === 'Patient')!;
    expect(patient.resource.id).toBe(OWNER);
    for (const r of p.records.filter((x) => x.resource.resourceType !== 'Patient')) {
      const owner = (r.resource.subject ?? r.resource.patient) as { reference: string };
      expect(owner.reference).toBe(`Patient/${OWNER}`);
      expect(r.resource.id).toBe(r.id);
    }
  });

  it('rewrites urn:uuid, relative and absolute references to the new record ids', async () => {
    const bundle = corpusBundle();
    const p = await plan(bundle);
    const idOfEntry = new Map(p.records.map((r) => [r.entry, r.id]));
    const entryOf = new Map<string, number>();
    bundle.entry.forEach((e, i) => {
      entryOf.set(e.fullUrl!, i);
      if (e.resource.id) entryOf.set(`${e.resource.resourceType}/${e.resource.id}`, i);
    });
    let rewritten = 0;
    for (const r of p.records) {
      const original = JSON.stringify(bundle.entry[r.entry].resource);
      for (const [, ref] of original.matchAll(/"reference":"([^"]+)"/g)) {
        const target = entryOf.get(ref);
        if (target === undefined || target === 0 || !idOfEntry.has(target)) continue;
        const type = bundle.entry[target].resource.resourceType;
        expect(JSON.stringify(r.resource)).toContain(
          `"reference":"${type}/${idOfEntry.get(target)}"`,
        );
        expect(JSON.stringify(r.resource)).not.toContain(`"reference":"${ref}"`);
        rewritten++;
      }
    }
    // The corpus holds references between its own resources (DiagnosticReport.result, …).
    expect(rewritten).toBeGreaterThan(50);
  });

  it('describes a urn:uuid or relative reference to a skipped entry, which would name nothing once stored', async () => {
    const bundle = corpusBundle();
    const [, organization, practitioner] = bundle.entry;
    organization.resource.identifier = [
      { system: 'urn:ietf:rfc:3986', value: 'urn:oid:1.2.3' },
      { use: 'official', system: 'http://hl7.org/fhir/sid/us-npi', value: '9999947893' },
    ];
    practitioner.resource.id = 'p-7';
    bundle.entry.push({
      fullUrl: 'urn:uuid:3f2e1d0c-5b4a-4c3d-8e2f-1a0b9c8d7e6f',
      resource: { resourceType: 'Practitioner', active: true },
      request: { method: 'POST', url: 'Practitioner' },
    });
    const anonymous = bundle.entry[bundle.entry.length - 1];
    const obs = bundle.entry.find((e) => e.resource.resourceType === 'Observation')!;
    obs.resource.performer = [
      { reference: practitioner.fullUrl },
      { reference: 'Practitioner/p-7', display: 'Dr Hilpert, on call' },
      { reference: organization.fullUrl },
      { reference: anonymous.fullUrl },
      { reference: 'Practitioner/elsewhere' },
      { reference: 'https://other.example/fhir/Practitioner/1' },
    ];
    const r = (await plan(bundle)).records.find((x) => x.entry === bundle.entry.indexOf(obs))!;
    expect(r.resource.performer).toEqual([
      { type: 'Practitioner', display: 'Hilpert' },
      { type: 'Practitioner', display: 'Dr Hilpert, on call' },
      {
        type: 'Organization',
        identifier: { system: 'http://hl7.org/fhir/sid/us-npi', value: '9999947893' },
        display: 'General Hospital',
      },
      // Nothing to describe it by: the record keeps a copy of it.
      { reference: '#practitioner1' },
      // Outside the bundle: kept as they are.
      { reference: 'Practitioner/elsewhere' },
      { reference: 'https://other.example/fhir/Practitioner/1' },
    ]);
    expect(r.resource.contained).toEqual([
      { resourceType: 'Practitioner', id: 'practitioner1', active: true },
    ]);
  });

  it('names each entry by its source, and rewrites references to entries imported before', async () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        {
          fullUrl: 'https://lab.example/fhir/Observation/7',
          resource: {
            resourceType: 'Observation',
            status: 'final',
            code: { text: 'glucose' },
            subject: { reference: `Patient/${OWNER}` },
            focus: [
              { reference: 'Encounter/3' },
              { reference: 'urn:uuid:0d8c2f4e-6a1b-4c3d-9e8f-7a6b5c4d3e2f' },
              { reference: 'urn:uuid:11111111-2222-4333-8444-555555555555' },
            ],
          },
        },
        {
          resource: {
            resourceType: 'Condition',
            subject: { reference: `Patient/${OWNER}` },
            code: { text: 'x' },
          },
        },
      ],
    };
    expect(sourcesOf(bundle)).toEqual([
      { resourceType: 'Observation', fullUrl: 'https://lab.example/fhir/Observation/7' },
    ]);
    // Every reference that could name an earlier entry: relative ones on their entry's server.
    expect((await outsideReferenceNames(bundle)).sort()).toEqual([
      'https://lab.example/fhir/Encounter/3',
      `https://lab.example/fhir/Patient/${OWNER}`,
      'urn:uuid:0d8c2f4e-6a1b-4c3d-9e8f-7a6b5c4d3e2f',
      'urn:uuid:11111111-2222-4333-8444-555555555555',
    ]);
    const asked: string[][] = [];
    const p = await planImport(bundle, OWNER, {
      newId: (source) => (source ? 'a0000000-0000-4000-8000-000000000001' : 'random'),
      imported: (names) => {
        asked.push([...names]);
        if (names.includes('https://lab.example/fhir/Encounter/3')) return 'Encounter/e1';
        if (names.includes('urn:uuid:0d8c2f4e-6a1b-4c3d-9e8f-7a6b5c4d3e2f')) return 'Encounter/e2';
        return undefined;
      },
    });
    expect(p.records.map((r) => r.id)).toEqual(['a0000000-0000-4000-8000-000000000001', 'random']);
    // Resolved where a record was imported before; left as it was where none was.
    expect(p.records[0].resource.focus).toEqual([
      { reference: 'Encounter/e1' },
      { reference: 'Encounter/e2' },
      { reference: 'urn:uuid:11111111-2222-4333-8444-555555555555' },
    ]);
    // Only references to no entry of the bundle are asked about (the subject is the owner).
    expect(asked).toHaveLength(3);
  });

  it('refuses one urn:uuid spelt in two cases as two entries: it is one fullUrl', async () => {
    const bundle = corpusBundle();
    const later = bundle.entry.findIndex((e, i) => i > 2 && e.fullUrl?.startsWith('urn:uuid:'));
    const earlier = bundle.entry.findIndex(
      (e, i) => i > 2 && i !== later && e.fullUrl?.startsWith('urn:uuid:'),
    );
    bundle.entry[Math.max(later, earlier)].fullUrl = bundle.entry[Math.min(later, earlier)]
      .fullUrl!.toUpperCase()
      .replace('URN:UUID:', 'urn:uuid:');
    const e = await badUserInput(plan(bundle));
    expect(e.message).toMatch(/repeats the fullUrl of an earlier entry/);
  });

  it('keeps an absolute reference to a skipped entry, which still resolves at its server', async () => {
    const bundle = corpusBundle();
    bundle.entry[2].fullUrl = 'https://source.example/fhir/Practitioner/p-9';
    const obs = bundle.entry.find((e) => e.resource.resourceType === 'Observation')!;
    obs.resource.performer = [{ reference: 'https://source.example/fhir/Practitioner/p-9' }];
    const r = (await plan(bundle)).records.find((x) => x.entry === bundle.entry.indexOf(obs))!;
    expect(r.resource.performer).toEqual(obs.resource.performer);
  });

  it('contains a skipped Medication in the records that refer to it, and still counts it', async () => {
    const bundle = corpusBundle();
    const medication = {
      fullUrl: 'urn:uuid:9a8b7c6d-1234-4cde-8f90-0a1b2c3d4e5f',
      resource: {
        resourceType: 'Medication',
        id: '9a8b7c6d-1234-4cde-8f90-0a1b2c3d4e5f',
        code: {
          coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '313782' }],
        },
      },
      request: { method: 'POST', url: 'Medication' },
    };
    bundle.entry.push(medication);
    const requests = bundle.entry.filter(
      (e) =>
        e.resource.resourceType === 'MedicationRequest' && e.resource.medicationCodeableConcept,
    );
    for (const e of requests.slice(0, 2)) {
      delete e.resource.medicationCodeableConcept;
      e.resource.medicationReference = { reference: medication.fullUrl };
    }
    const p = await plan(bundle);
    expect(p.skippedTypes).toEqual(['Medication', 'Organization', 'Practitioner']);
    for (const e of requests.slice(0, 2)) {
      const r = p.records.find((x) => x.entry === bundle.entry.indexOf(e))!;
      expect(r.resource.medicationReference).toEqual({ reference: '#med1' });
      expect(r.resource.contained).toEqual([{ ...medication.resource, id: 'med1' }]);
    }
  });

  it('takes the one patient the entries name as the owner when there is no Patient entry', async () => {
    const bundle = corpusBundle();
    bundle.entry.shift();
    for (const e of bundle.entry) {
      for (const k of ['subject', 'patient']) {
        if ((e.resource[k] as { reference?: string })?.reference === PATIENT_FULL_URL) {
          e.resource[k] = { reference: 'Patient/old-id' };
        }
      }
    }
    const p = await plan(bundle);
    expect(p.records).toHaveLength(bundle.entry.length - 2);
  });

  it('names the first invalid entry, with the path inside it', async () => {
    const bundle = corpusBundle();
    const i = bundle.entry.findIndex((e) => e.resource.resourceType === 'Observation');
    bundle.entry[i].resource.status = 'not-a-status';
    const e = await badUserInput(plan(bundle));
    expect(e.message).toContain(`entry[${i}]`);
    expect(e.message).not.toContain('not-a-status');
    expect(e.details.field).toBe(`bundle.entry[${i}].resource.status`);
  });

  it('plans two versions of one Patient whatever they give, for the service to compare', async () => {
    const patient = (fields: Record<string, unknown>) => ({
      resource: { resourceType: 'Patient', id: 'p1', ...fields },
    });
    await expect(
      plan({
        resourceType: 'Bundle',
        type: 'collection',
        entry: [
          patient({ birthDate: '1970-01-01', gender: 'female' }),
          patient({ birthDate: '1985-06-06', gender: 'male' }),
        ],
      }),
    ).resolves.toMatchObject({ records: [expect.anything(), expect.anything()] });
  });

  it('takes two Patients for one person unless a birth date or sex both give differs', () => {
    const p = (fields: Record<string, unknown>) => ({ resourceType: 'Patient', ...fields });
    expect(
      samePerson(p({ birthDate: '1970-01-01' }), p({ birthDate: '1970-01', gender: 'female' })),
    ).toBe(true);
    expect(samePerson(p({}), p({ birthDate: '1985-06-06', gender: 'male' }))).toBe(true);
    expect(samePerson(p({ gender: 'unknown' }), p({ gender: 'male' }))).toBe(true);
    expect(samePerson(p({ birthDate: '1970-01-01' }), p({ birthDate: '1970-01-02' }))).toBe(false);
    expect(samePerson(p({ gender: 'female' }), p({ gender: 'male' }))).toBe(false);
    // The same facts: what each gives, exactly (a blank record is no licence to fill it in).
    expect(
      sameFacts(
        p({ birthDate: '1970-01-01', name: [{ family: 'A' }] }),
        p({ birthDate: '1970-01-01' }),
      ),
    ).toBe(true);
    expect(sameFacts(p({ gender: 'unknown' }), p({}))).toBe(true);
    expect(sameFacts(p({}), p({ birthDate: '1985-06-06' }))).toBe(false);
    expect(sameFacts(p({ birthDate: '1970-01' }), p({ birthDate: '1970-01-01' }))).toBe(false);
  });

  it('refuses an entry whose resource is larger than createRecord takes, naming it', async () => {
    const bundle = corpusBundle();
    const i = bundle.entry.findIndex((e) => e.resource.resourceType === 'Observation');
    (bundle.entry[i].resource as any).code.text = 'x'.repeat(MAX_ENTRY_RESOURCE_BYTES);
    const e = await badUserInput(plan(bundle));
    expect(e.message).toMatch(
      new RegExp(`^entry\\[${i}\\] holds a resource of 1\\.\\d\\dMB, past the 1MB a record may be`),
    );
    expect(e.details.field).toBe(`bundle.entry[${i}].resource`);
    // Just within it: taken.
    const fits = corpusBundle();
    const text = MAX_ENTRY_RESOURCE_BYTES - JSON.stringify(fits.entry[i].resource).length - 20;
    (fits.entry[i].resource as any).code.text = 'x'.repeat(text);
    await expect(plan(fits)).resolves.toMatchObject({ skipped: expect.any(Number) });
  });

  it.each([
    ['a bundle of another type', (b: any) => (b.type = 'searchset'), 'bundle.type'],
    ['not a bundle', (b: any) => (b.resourceType = 'Observation'), 'bundle'],
    [
      'an entry that deletes',
      (b: any) => (b.entry[5].request.method = 'DELETE'),
      'bundle.entry[5].request.method',
    ],
    [
      "a transaction's entry without a request",
      (b: any) => delete b.entry[5].request,
      'bundle.entry[5].request',
    ],
    [
      'a request naming another type than its resource',
      (b: any) => (b.entry[5].request.url = 'Patient'),
      'bundle.entry[5].request.url',
    ],
    [
      'a conditional update of a record',
      (b: any) =>
        (b.entry[5].request = { method: 'PUT', url: `${b.entry[5].resource.resourceType}?code=x` }),
      'bundle.entry[5].request.url',
    ],
    [
      'a conditional create of a record',
      (b: any) => (b.entry[5].request.ifNoneExist = 'identifier=x'),
      'bundle.entry[5].request.ifNoneExist',
    ],
    ['an element no Bundle has', (b: any) => (b.extension = []), 'bundle.extension'],
    [
      'an element no Bundle entry has',
      (b: any) => (b.entry[5].modifierExtension = []),
      'bundle.entry[5].modifierExtension',
    ],
    [
      'a relative fullUrl',
      (b: any) => (b.entry[5].fullUrl = 'Observation/1'),
      'bundle.entry[5].fullUrl',
    ],
    [
      'an entry without a resource',
      (b: any) => delete b.entry[4].resource,
      'bundle.entry[4].resource',
    ],
    [
      'an unknown resource type',
      (b: any) => (b.entry[6].resource.resourceType = 'Nonsense'),
      'bundle.entry[6].resource.resourceType',
    ],
    [
      'a repeated fullUrl',
      (b: any) => (b.entry[7].fullUrl = b.entry[6].fullUrl),
      'bundle.entry[7].fullUrl',
    ],
    // The server replaces them, but they are part of what was sent: refused as createRecord would.
    ['an empty meta', (b: any) => (b.entry[9].resource.meta = {}), 'bundle.entry[9].resource.meta'],
    [
      'a meta.lastUpdated that is no instant',
      (b: any) => (b.entry[9].resource.meta = { lastUpdated: 'yesterday' }),
      'bundle.entry[9].resource.meta.lastUpdated',
    ],
    [
      'an id that is no FHIR id',
      (b: any) => (b.entry[9].resource.id = 'bad id!'),
      'bundle.entry[9].resource.id',
    ],
    [
      // Skipped, it would drop whatever patient data it holds without a word.
      'a Bundle nested as an entry',
      (b: any) =>
        (b.entry[8] = {
          resource: { resourceType: 'Bundle', type: 'collection' },
          request: { method: 'POST', url: 'Bundle' },
        }),
      'bundle.entry[8].resource',
    ],
    [
      'a second, different Patient',
      (b: any) =>
        b.entry.push({
          resource: { resourceType: 'Patient', id: 'someone-else' },
          request: { method: 'POST', url: 'Patient' },
        }),
      `bundle.entry[${corpusBundle().entry.length}].resource`,
    ],
    [
      'a record of another patient',
      (b: any) => (b.entry[8].resource.subject = { reference: 'Patient/someone-else' }),
      'bundle.entry[8].resource.subject',
    ],
  ])('refuses %s', async (_, mutate, field) => {
    const bundle = corpusBundle();
    mutate(bundle);
    const e = await badUserInput(plan(bundle));
    expect(e).toBeInstanceOf(BadUserInputError);
    expect(e.details.field).toBe(field);
  });

  describe('references between entries of different servers', () => {
    const obs = (extra: Record<string, unknown> = {}) => ({
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'glucose' },
      ...extra,
    });
    const twoServers = (referrer: string) => ({
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        { fullUrl: 'http://a.org/fhir/Observation/1', resource: obs({ id: '1' }) },
        { fullUrl: 'http://b.org/fhir/Observation/1', resource: obs({ id: '1' }) },
        {
          fullUrl: referrer,
          resource: obs({ id: '2', hasMember: [{ reference: 'Observation/1' }] }),
        },
      ],
    });

    it("resolves a relative reference against its own entry's server (FHIR's rule)", async () => {
      const p = await plan(twoServers('http://a.org/fhir/Observation/2'));
      const [a, , referrer] = p.records;
      expect(referrer.resource.hasMember).toEqual([{ reference: `Observation/${a.id}` }]);
      const fromB = await plan(twoServers('http://b.org/fhir/Observation/2'));
      expect(fromB.records[2].resource.hasMember).toEqual([
        { reference: `Observation/${fromB.records[1].id}` },
      ]);
    });

    it('refuses a relative reference two entries answer to, from an entry of no server', async () => {
      const e = await badUserInput(
        plan(twoServers('urn:uuid:2b6b3c5e-0d1f-4a8e-9c7d-1e2f3a4b5c6d')),
      );
      expect(e.details.field).toBe('bundle.entry[2].resource.hasMember[0].reference');
    });

    it("leaves a relative reference naming no entry of its own server to that server, as a later bundle's would be", async () => {
      const p = await plan(twoServers('http://c.org/fhir/Observation/2'));
      // Neither a.org's nor b.org's Observation/1 is c.org's: no refusal, no wrong link.
      expect(p.records[2].resource.hasMember).toEqual([{ reference: 'Observation/1' }]);
      const one = twoServers('http://c.org/fhir/Observation/2');
      one.entry.splice(1, 1);
      const single = await plan(one);
      expect(single.records[1].resource.hasMember).toEqual([{ reference: 'Observation/1' }]);
      // From an entry of no server, the one entry that answers to it is taken.
      const loose = twoServers('urn:uuid:2b6b3c5e-0d1f-4a8e-9c7d-1e2f3a4b5c6d');
      loose.entry.splice(1, 1);
      const fromNowhere = await plan(loose);
      expect(fromNowhere.records[1].resource.hasMember).toEqual([
        { reference: `Observation/${fromNowhere.records[0].id}` },
      ]);
    });

    it('refuses a fullUrl that names another type than the resource it holds', async () => {
      const bundle = twoServers('http://a.org/fhir/Observation/2');
      bundle.entry[1].fullUrl = 'http://b.org/fhir/Condition/1';
      const e = await badUserInput(plan(bundle));
      expect(e.details.field).toBe('bundle.entry[1].fullUrl');
    });
  });

  it('says which patient it took for the owner: the Patient entry, or the one records name', async () => {
    const bundle = corpusBundle();
    bundle.entry = bundle.entry.filter((e) => e.resource.resourceType !== 'Patient');
    const p = await plan(bundle);
    expect(p.adopted?.reference).toBe(PATIENT_FULL_URL);
    expect(p.adopted?.entry).toBeGreaterThanOrEqual(0);
    const whole = corpusBundle();
    const at = whole.entry.findIndex((e) => e.resource.resourceType === 'Patient');
    expect((await plan(whole)).adopted).toEqual({
      reference: `Patient/${whole.entry[at].resource.id}`,
      entry: at,
    });
  });

  it('plans 1,000 entries well within the import budget (CPU time)', async () => {
    const bundle = largeBundle(1000);
    const started = process.cpuUsage();
    const p = await plan(bundle);
    const used = process.cpuUsage(started);
    expect(p.records.length + p.skipped).toBe(1000);
    // A loose bound (the budget is 10 s end to end; the e2e suite logs the measured time).
    expect(used.user + used.system).toBeLessThan(10_000_000);
  });

  it('takes an export of a long history whole, and refuses past the limit before reading an entry', async () => {
    // A patient's export of 18,000 records must import as one bundle: split, the references
    // between its parts would be lost.
    expect(MAX_BUNDLE_ENTRIES).toBeGreaterThanOrEqual(20_000);
    const entry = { resource: { resourceType: 'Observation' } };
    const over = { resourceType: 'Bundle', type: 'collection', entry: [] as unknown[] };
    over.entry = Array.from({ length: MAX_BUNDLE_ENTRIES + 1 }, () => entry);
    const e = await badUserInput(plan(over));
    expect(e.message).toContain(`more than ${MAX_BUNDLE_ENTRIES} entries`);
  });

  it("takes conditions on the entries it skips (Synthea's practitioners), and a collection without requests", async () => {
    const bundle = corpusBundle();
    const practitioner = bundle.entry.findIndex((e) => e.resource.resourceType === 'Practitioner');
    bundle.entry[practitioner].request = {
      method: 'PUT',
      url: 'Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999',
    } as never;
    expect((await plan(bundle)).skipped).toBe(2);
    // A request url written absolute, as some senders do, names its type too.
    const absolute = corpusBundle();
    const k = absolute.entry.findIndex((e) => e.resource.resourceType === 'Observation');
    absolute.entry[k].request = {
      method: 'POST',
      url: 'https://ehr.example.org/fhir/Observation',
    } as never;
    expect((await plan(absolute)).records.length).toBe(absolute.entry.length - 2);
    const collection = { ...corpusBundle(), type: 'collection' };
    for (const e of collection.entry) delete (e as { request?: unknown }).request;
    expect((await plan(collection)).records.length).toBe(collection.entry.length - 2);
  });
});
