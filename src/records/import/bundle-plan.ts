// What importing a FHIR R4 Bundle would store, decided before anything is written: every entry
// checked, given its record id, its references rewritten and its resource validated, so that
// one invalid entry rejects the whole bundle (naming `entry[i]`) and nothing is half-imported.
// Pure (no database, no Nest) but for yielding to the event loop as it goes; the CLI runs it
// too, to show progress and fail early.
//
// Rules (documented in the README of this folder's service, importBundle):
// * Bundle.type is transaction, batch or collection, with only the elements of R4's Bundle and
//   entries. A transaction's or batch's entries each carry a request (a collection's may),
//   which creates (POST or PUT; GET, DELETE, PATCH and HEAD are refused), names the type of
//   its resource, and asks for no condition (ifNoneExist, `Type?search`) unless its entry is
//   skipped. fullUrl is absolute (a URL or a `urn:uuid:`).
// * The bundle is one patient's data. Its Patient entry (at most one) becomes the owner: it is
//   stored as a Patient record whose id is the owner's, and every reference to it names the
//   owner. Without a Patient entry, the one patient (`Patient/<id>` or `urn:uuid:`) that all
//   the entries' subject/patient name, outside the bundle, is taken as the owner.
// * Types that cannot hold a patient's data (no subject/patient element that may name a
//   Patient: Organization, Practitioner, PractitionerRole, Location, Medication, Provenance, …)
//   are skipped and counted, exactly the types createRecord refuses; so is the Consent of a
//   Custodia grant (a grant is made on the ledger by the patient, never imported). A Bundle
//   entry is refused: its own entries would be dropped unseen.
// * `urn:uuid:` (fullUrl), relative (`Type/id`) and absolute references to imported entries
//   are rewritten to `Type/<record id>`. A skipped Medication a record refers to (Synthea's
//   MedicationRequest.medicationReference) is contained in that record, the reference made
//   local (`#med1`), so the record still says which drug. A `urn:` or relative reference to
//   another skipped entry (a Practitioner, an Organization, …) would name nothing once stored:
//   it becomes a logical reference, the entry's type, first identifier and name (`display`)
//   in place of the `reference` (an entry with neither identifier nor name is contained, as a
//   Medication is). Absolute references to skipped entries, and references to resources
//   outside the bundle, are kept as they are. A relative reference of an entry with a RESTful
//   fullUrl names a resource on that entry's server (FHIR's rule): an entry of another server
//   with that type and id is not it, and the reference resolves as a later bundle's would; one
//   that entries of several servers answer to, from an entry of no server, is refused as
//   ambiguous; so is a
//   RESTful fullUrl naming another type than its resource. Neither the bundle's Patient nor,
//   without one, the patient its records name may be another patient of this server (the
//   service checks).
// * meta.versionId and meta.lastUpdated are the source server's and are dropped (once checked:
//   an invalid id or meta refuses the entry, as createRecord refuses it).
// * A record's category is its meta.tag of Custodia's category system (urn:custodia:record-
//   category, which exportMyData writes where a record's category is not its content's; the
//   tag is then dropped), else derived from its content as createRecord derives it; it is
//   restricted when meta.security says R or V (exportMyData writes R for a restricted record).
import { randomUUID } from 'node:crypto';
import { setImmediate } from 'node:timers/promises';
import { BadUserInputError } from '../../common/errors';
import { MAX_BODY, MAX_BODY_BYTES } from '../../common/json-bodies';
import { isGrantConsent, RECORD_CATEGORY_SYSTEM } from '../../consent';
import {
  checkedCategory,
  deriveCategory,
  FhirResource,
  labelledRestricted,
  validatePatientResource,
} from '../fhir';
import { fullUrlIdentity, type ImportSource } from '../crypto';
import { fhirIssues, isR4ResourceType, patientElement, unsafeFhirInput } from '../fhir/index';

/**
 * The most entries one bundle may hold. A Synthea lifetime is a few thousand, but a patient's
 * own export of a long history reaches 18,000 and more, and must import whole: split, its
 * references between the parts would be lost. The 64 MB body limit (MAX_IMPORT_BODY) holds
 * this many records of an export, at the size Synthea's take.
 */
export const MAX_BUNDLE_ENTRIES = 50_000;
/**
 * The largest resource an entry may hold, as serialised JSON: what createRecord's whole
 * request may be (MAX_BODY). A bundle's larger limit is for many resources, not for one that
 * createRecord would refuse (and that every later read of the patient's records would carry).
 */
export const MAX_ENTRY_RESOURCE_BYTES = MAX_BODY_BYTES;

const BUNDLE_TYPES = new Set(['transaction', 'batch', 'collection']);
/** The elements of FHIR R4's Bundle, and of its entries: anything else is no Bundle of R4's. */
const BUNDLE_ELEMENTS = new Set([
  'resourceType',
  'id',
  'meta',
  'implicitRules',
  'language',
  'identifier',
  'type',
  'timestamp',
  'total',
  'link',
  'entry',
  'signature',
]);
const ENTRY_ELEMENTS = new Set([
  'id',
  'extension',
  'link',
  'fullUrl',
  'resource',
  'search',
  'request',
  'response',
]);
/** A conditional request's elements: what they ask cannot be honoured by an import. */
const CONDITIONS = ['ifNoneExist', 'ifMatch', 'ifNoneMatch', 'ifModifiedSince'];
const CREATING = new Set(['POST', 'PUT']);
/** Skipped types a record keeps as a contained copy when it refers to them. */
const CONTAINABLE = new Set(['Medication']);
const FIELD = 'bundle';
/** Entries validated between two turns of the event loop. */
const YIELD_EVERY = 25;

export interface PlannedRecord {
  /** The entry's index in Bundle.entry. */
  entry: number;
  id: string;
  resource: FhirResource;
  category: string | null;
  /**
   * Whether the bundle files the record under another category (its category tag) than its
   * content carries: only the patient may (as with createRecord's category).
   */
  refiled: boolean;
  /** Whether the bundle names the record's category (its category tag). */
  tagged: boolean;
  sensitivity: 'NORMAL' | 'RESTRICTED';
}

export interface ImportPlan {
  records: PlannedRecord[];
  /**
   * Without a Patient entry, the reference (outside the bundle) that every record names as
   * its patient, taken to be the owner; the service refuses it when it names another patient
   * of this server. Null when the bundle has its Patient, or its records name none.
   */
  adopted: { reference: string; entry: number } | null;
  skipped: number;
  /** The distinct resource types skipped, sorted. */
  skippedTypes: string[];
}

export interface PlanOptions {
  /**
   * The record id of an entry, given where it came from (null for an entry without a
   * fullUrl); random UUIDs unless given.
   */
  newId?: (source: ImportSource | null) => string;
  /**
   * Where a reference to no entry of the bundle names a record imported before (an earlier
   * bundle's entry, by its fullUrl): `Type/<record id>`, given the names the reference goes by
   * (see outsideReferenceNames). Such a reference is rewritten to it.
   */
  imported?: (names: readonly string[]) => string | undefined;
  /** Told after each entry is checked: (entries checked, entries in all). */
  onEntry?: (done: number, total: number) => void;
}

type Entry = { resource: Record<string, unknown> & { resourceType: string }; fullUrl?: string };

/** Plans the import of `bundle` into `ownerId`'s records; rejects with BAD_USER_INPUT naming the entry. */
export async function planImport(
  bundle: unknown,
  ownerId: string,
  options: PlanOptions = {},
): Promise<ImportPlan> {
  const newId = options.newId ?? (() => randomUUID());
  const entries = await envelope(bundle);
  const owner = `Patient/${ownerId}`;
  // Where each identity of an entry (its fullUrl, `Type/id`) now lives.
  const targets = new Map<string, string>();
  // `Type/id` names that more than one entry answers to (from different servers' fullUrls):
  // only a reference from an entry of the same server (resolved against its base) may use one.
  const ambiguous = new Set<string>();
  const kinds: ('import' | 'patient' | 'skip')[] = [];
  const ids: string[] = [];
  const fullUrls = new Set<string>();
  const spellings = new Set<string>();
  // The servers whose entries answer to each `Type/id` by their RESTful fullUrl.
  const servers = new Map<string, Set<string>>();
  // Skipped entries that a record referring to them takes in as a contained resource.
  const containable = new Map<string, Entry['resource']>();
  // Other skipped entries, which a record's reference to them describes instead of naming.
  const described = new Map<string, Entry['resource']>();
  let patientEntry = -1;
  entries.forEach((entry, i) => {
    const { resource } = entry;
    const type = resource.resourceType;
    const bytes = Buffer.byteLength(JSON.stringify(resource));
    if (bytes > MAX_ENTRY_RESOURCE_BYTES) {
      throw bad(
        i,
        `holds a resource of ${(bytes / 2 ** 20).toFixed(2)}MB, past the ${MAX_BODY.toUpperCase()} a record may be (as createRecord takes it)`,
        'resource',
      );
    }
    let kind: 'import' | 'patient' | 'skip';
    if (type === 'Patient') {
      // Another version of the same Patient (an export holds each stored one) is the owner too.
      const first = patientEntry >= 0 ? entries[patientEntry].resource.id : undefined;
      if (patientEntry >= 0 && (first === undefined || first !== resource.id)) {
        throw bad(
          i,
          `is a second Patient (the first is entry[${patientEntry}]); a bundle imports one patient's data`,
          'resource',
        );
      }
      // Whether its versions describe one person is the service's to say: an export holds each
      // stored version, and a chart's own may already disagree (refuseAnotherPerson).
      if (patientEntry < 0) patientEntry = i;
      kind = 'patient';
    } else if (type === 'Bundle') {
      // Skipping it would drop whatever patient data it holds without a word.
      throw bad(i, 'is a Bundle inside the bundle; import it as a bundle of its own', 'resource');
    } else if (!patientElement(type) || isGrantConsent(resource)) {
      kind = 'skip';
    } else {
      kind = 'import';
    }
    kinds.push(kind);
    const id = kind === 'import' ? newId(sourceOf(entry)) : kind === 'patient' ? ownerId : '';
    ids.push(id);
    if (entry.fullUrl !== undefined) {
      // One resource however its fullUrl is spelt (a urn:uuid in any case, a host in capitals,
      // a default port): one record id, as fullUrlIdentity reads them.
      const spelt = fullUrlIdentity(entry.fullUrl);
      if (fullUrls.has(entry.fullUrl) || spellings.has(spelt)) {
        throw bad(
          i,
          'repeats the fullUrl of an earlier entry (fullUrls must be unique)',
          'fullUrl',
        );
      }
      fullUrls.add(entry.fullUrl);
      spellings.add(spelt);
      const restful = restfulUrl(entry.fullUrl);
      if (restful) {
        const at = servers.get(restful.relative) ?? new Set<string>();
        servers.set(restful.relative, at.add(restful.base));
      }
      const named = restful?.type;
      if (named !== undefined && named !== type) {
        throw bad(i, `has a fullUrl naming a ${named} but holds a ${type}`, 'fullUrl');
      }
    }
    if (kind === 'skip') {
      if (!CONTAINABLE.has(type)) {
        for (const key of identities(entry)) described.set(key, resource);
      } else if (resource.contained === undefined) {
        for (const key of identities(entry)) containable.set(key, resource);
      }
      return;
    }
    const target = kind === 'patient' ? owner : `${type}/${id}`;
    for (const key of identities(entry)) {
      const earlier = targets.get(key);
      if (earlier !== undefined && earlier !== target && !key.includes(':')) ambiguous.add(key);
      targets.set(key, target);
    }
  });
  for (const key of ambiguous) targets.delete(key);
  let adopted: ImportPlan['adopted'] = null;
  const patientId = patientEntry >= 0 ? entries[patientEntry].resource.id : undefined;
  if (typeof patientId === 'string') {
    // The bundle's Patient maps onto the owner: its id must not be another patient's of this
    // server either (the service checks), as a reference to one must not.
    adopted = { reference: `Patient/${patientId}`, entry: patientEntry };
  } else if (patientEntry < 0) {
    // No Patient entry: the one patient every record names (outside the bundle) is the owner.
    const named = ownerReferences(entries, kinds);
    const known = new Set(entries.flatMap(identities));
    const outside = [...named].filter(
      ([ref]) => !known.has(ref) && /^(Patient\/|urn:uuid:)/.test(ref),
    );
    if (outside.length > 1) {
      const [[, first], [, second]] = outside;
      throw bad(
        second,
        `names another patient than entry[${first}] does (${outside.length} patients in all); a bundle imports one patient's data`,
        'resource',
      );
    }
    if (named.size === 1) {
      const [[only, entry]] = named;
      if (
        !known.has(only) &&
        /^(Patient\/[A-Za-z0-9\-.]{1,64}|urn:uuid:[0-9a-fA-F-]{36})$/.test(only)
      ) {
        targets.set(only, owner);
        adopted = { reference: only, entry };
      }
    }
  }
  const records: PlannedRecord[] = [];
  const skippedTypes = new Set<string>();
  let skipped = 0;
  for (const [i, entry] of entries.entries()) {
    // Validation takes a millisecond or two an entry: other requests get their turn between.
    if (i % YIELD_EVERY === YIELD_EVERY - 1) await setImmediate();
    const kind = kinds[i];
    if (kind === 'skip') {
      skipped++;
      skippedTypes.add(entry.resource.resourceType);
    } else {
      checkSourceIdentity(entry.resource, i);
      const resource = rewritten(entry.resource, ids[i], {
        targets,
        containable,
        described,
        base: entry.fullUrl === undefined ? undefined : restfulUrl(entry.fullUrl)?.base,
        ambiguous,
        fullUrls,
        servers,
        entry: i,
        imported: options.imported,
      });
      const tagged = takeCategoryTag(resource, i);
      const valid = validEntry(resource, ownerId, i);
      const own = categoryOf(valid, i);
      records.push({
        entry: i,
        id: kind === 'patient' ? newId(sourceOf(entry)) : ids[i],
        resource: valid,
        category: tagged ?? own,
        refiled: tagged !== null && own !== null && tagged !== own,
        tagged: tagged !== null,
        sensitivity: labelledRestricted(valid) ? 'RESTRICTED' : 'NORMAL',
      });
    }
    options.onEntry?.(i + 1, entries.length);
  }
  return { records, adopted, skipped, skippedTypes: [...skippedTypes].sort() };
}

/** The names a reference may be an earlier entry's fullUrl by: a URN or an absolute URL. */
function absoluteNames(names: readonly string[]): string[] {
  return names.filter((n) => /^(urn:|https?:\/\/)/i.test(n));
}

/**
 * The names, among every reference of a bundle not yet checked, that may be the fullUrl of an
 * entry imported before (see PlanOptions.imported): each reference as it is, without its
 * version, and a relative one on its entry's server. Reads nothing else.
 */
export async function outsideReferenceNames(bundle: unknown): Promise<string[]> {
  const entries = isObject(bundle) && Array.isArray(bundle.entry) ? bundle.entry : [];
  const names = new Set<string>();
  const walk = (node: unknown, base: string | undefined): void => {
    if (Array.isArray(node)) return node.forEach((n) => walk(n, base));
    if (!isObject(node)) return;
    for (const [key, value] of Object.entries(node)) {
      if (key === 'reference' && typeof value === 'string') {
        const unversioned = value.replace(/\/_history\/[^/]+$/, '');
        const relative = /^[A-Z][A-Za-z]+\/[^/]+$/.test(unversioned);
        for (const n of absoluteNames([value, unversioned])) names.add(n);
        if (relative && base) names.add(base + unversioned);
      } else if (typeof value === 'object' && value !== null) {
        walk(value, base);
      }
    }
  };
  for (const [i, e] of (entries as unknown[]).entries()) {
    // Walking a large bundle takes a while: other requests get their turn between entries.
    if (i % (YIELD_EVERY * 10) === YIELD_EVERY * 10 - 1) await setImmediate();
    if (!isObject(e)) continue;
    const base = typeof e.fullUrl === 'string' ? restfulUrl(e.fullUrl)?.base : undefined;
    walk(e.resource, base);
  }
  return [...names];
}

/** Where an entry came from: its type and fullUrl (null without one). */
export function sourceOf(entry: { resource?: unknown; fullUrl?: unknown }): ImportSource | null {
  const type = isObject(entry.resource) ? entry.resource.resourceType : undefined;
  return typeof type === 'string' && typeof entry.fullUrl === 'string'
    ? { resourceType: type, fullUrl: entry.fullUrl }
    : null;
}

/**
 * Where each entry of a bundle not yet checked came from, for the entries that say (the
 * service derives their record ids before planning). Reads nothing else.
 */
export function sourcesOf(bundle: unknown): ImportSource[] {
  const entries = isObject(bundle) && Array.isArray(bundle.entry) ? bundle.entry : [];
  return entries.flatMap((e: unknown) => {
    const source = isObject(e) ? sourceOf(e) : null;
    return source ? [source] : [];
  });
}

/** The bundle's entries, each checked to be an object holding a resource that creates. */
async function envelope(bundle: unknown): Promise<Entry[]> {
  if (!isObject(bundle) || bundle.resourceType !== 'Bundle') {
    throw new BadUserInputError('bundle must be a FHIR R4 Bundle (resourceType "Bundle")', FIELD);
  }
  if (typeof bundle.type !== 'string' || !BUNDLE_TYPES.has(bundle.type)) {
    throw new BadUserInputError(
      'bundle.type must be transaction, batch or collection',
      `${FIELD}.type`,
    );
  }
  for (const key of Object.keys(bundle)) {
    if (!BUNDLE_ELEMENTS.has(key)) {
      throw new BadUserInputError(
        `bundle.${key} is not an element of a FHIR R4 Bundle`,
        `${FIELD}.${key}`,
      );
    }
  }
  // A transaction's or batch's entries say what each does (FHIR's bdl-3).
  const requested = bundle.type !== 'collection';
  const raw = bundle.entry ?? [];
  if (!Array.isArray(raw))
    throw new BadUserInputError('bundle.entry must be a list', `${FIELD}.entry`);
  if (raw.length > MAX_BUNDLE_ENTRIES) {
    throw new BadUserInputError(
      `bundle.entry holds more than ${MAX_BUNDLE_ENTRIES} entries (the limit); split the bundle`,
      `${FIELD}.entry`,
    );
  }
  const entries: Entry[] = [];
  for (const [i, entry] of (raw as unknown[]).entries()) {
    // Checking an entry's structure walks all of it: other requests get their turn between.
    if (i % YIELD_EVERY === YIELD_EVERY - 1) await setImmediate();
    if (!isObject(entry)) throw bad(i, 'must be an object', '');
    for (const key of Object.keys(entry)) {
      if (!ENTRY_ELEMENTS.has(key)) {
        throw bad(i, `has ${key}, which is not an element of a Bundle entry`, key);
      }
    }
    const { resource, fullUrl, request } = entry;
    if (!isObject(resource)) throw bad(i, 'must hold a resource', 'resource');
    // Before anything reads its keys: no __proto__, no nesting deeper than any real resource.
    const unsafe = unsafeFhirInput(resource);
    if (unsafe) throw bad(i, `is not valid FHIR R4: ${unsafe.path}: ${unsafe.rule}`, 'resource');
    const type = resource.resourceType;
    if (typeof type !== 'string' || !isR4ResourceType(type)) {
      throw bad(
        i,
        'resource.resourceType must name a FHIR R4 resource type',
        'resource.resourceType',
      );
    }
    // An absolute URL or a URN (FHIR's fullUrl), never a relative one.
    if (
      fullUrl !== undefined &&
      (typeof fullUrl !== 'string' || !/^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(fullUrl))
    ) {
      throw bad(i, 'fullUrl must be an absolute URI (a URL or a urn:uuid:)', 'fullUrl');
    }
    if (request === undefined && requested) {
      throw bad(i, `has no request, which every entry of a ${bundle.type} bundle needs`, 'request');
    }
    if (request !== undefined) {
      const method = isObject(request) ? request.method : undefined;
      if (typeof method !== 'string' || !CREATING.has(method)) {
        throw bad(
          i,
          'request.method must be POST or PUT: an import only creates records',
          'request.method',
        );
      }
      checkRequestUrl(request as Record<string, unknown>, type, i);
    }
    entries.push({
      resource: resource as Entry['resource'],
      fullUrl: fullUrl as string | undefined,
    });
  }
  return entries;
}

/**
 * An entry's request.url names the type of its resource (`Observation`, `Observation/1`), and
 * asks for no condition: a conditional create or update (`ifNoneExist`, `Type?search`) would
 * be taken as a plain creation, storing a record the sender meant to match an existing one.
 * Types an import skips (Organization, Practitioner, …) may carry conditions: nothing of them
 * is stored.
 */
function checkRequestUrl(request: Record<string, unknown>, type: string, i: number): void {
  const { url } = request;
  if (typeof url !== 'string' || url.length === 0) {
    throw bad(i, 'request.url must name the resource type it creates', 'request.url');
  }
  // Relative to the server's base, as FHIR has it (`Observation`, `Observation/1`,
  // `Observation?…`), or, as some senders write it, absolute.
  const named = /(?:^|\/)([A-Z][A-Za-z]+)(?:\/[A-Za-z0-9\-.]{1,64})?(?:\?.*)?$/.exec(url)?.[1];
  if (named !== type) {
    throw bad(
      i,
      `request.url names ${named ?? 'no type'} but the entry holds a ${type}`,
      'request.url',
    );
  }
  if (!patientElement(type) && type !== 'Patient') return;
  const condition = url.includes('?') ? 'request.url' : CONDITIONS.find((c) => c in request);
  if (condition !== undefined) {
    throw bad(
      i,
      `is a conditional ${request.method === 'PUT' ? 'update' : 'create'}, which an import cannot honour (it only creates); send it as a plain POST`,
      condition.startsWith('request') ? condition : `request.${condition}`,
    );
  }
}

/**
 * A RESTful fullUrl (`https://host/fhir/Observation/1`): its server base (up to and with the
 * `/` before `Type/id`), its type, and its relative form `Type/id`.
 */
function restfulUrl(fullUrl: string): { base: string; type: string; relative: string } | undefined {
  const m = /^(https?:\/\/.+\/)(([A-Z][A-Za-z]+)\/[A-Za-z0-9\-.]{1,64})$/.exec(fullUrl);
  return m ? { base: m[1], relative: m[2], type: m[3] } : undefined;
}

/** The names other entries may use for this one: its fullUrl, and `Type/id`. */
function identities({ resource, fullUrl }: Entry): string[] {
  const keys: string[] = [];
  if (fullUrl) keys.push(fullUrl);
  if (typeof resource.id === 'string') keys.push(`${resource.resourceType}/${resource.id}`);
  // An absolute fullUrl (`https://host/fhir/Observation/1`) also answers to `Observation/1`.
  const tail = fullUrl === undefined ? undefined : restfulUrl(fullUrl)?.relative;
  if (tail) keys.push(tail);
  return keys;
}

/** The distinct references of the imported entries' subject/patient elements, each with the first entry naming it. */
function ownerReferences(entries: Entry[], kinds: string[]): Map<string, number> {
  const named = new Map<string, number>();
  entries.forEach(({ resource }, i) => {
    if (kinds[i] !== 'import') return;
    const element = patientElement(resource.resourceType)!;
    const ref = (resource[element] as { reference?: unknown } | undefined)?.reference;
    if (typeof ref === 'string' && !named.has(ref)) named.set(ref, i);
  });
  return named;
}

/** What rewriting an entry's references needs to know. */
interface Rewriting {
  targets: Map<string, string>;
  imported?: PlanOptions['imported'];
  containable: Map<string, Entry['resource']>;
  /** Skipped entries (not containable) by their identities: a reference to one is described. */
  described: Map<string, Entry['resource']>;
  /** The entry's server base, when its fullUrl is RESTful: its relative references resolve there first. */
  base: string | undefined;
  ambiguous: ReadonlySet<string>;
  fullUrls: ReadonlySet<string>;
  /** For each `Type/id`, the servers of the entries that answer to it by a RESTful fullUrl. */
  servers: ReadonlyMap<string, ReadonlySet<string>>;
  entry: number;
}

/**
 * A copy with the new id, references rewritten, the skipped Medications it refers to contained,
 * and the source server's version meta dropped.
 */
function rewritten(source: Entry['resource'], id: string, how: Rewriting): Record<string, unknown> {
  const resource = structuredClone(source);
  resource.id = id;
  withoutVersionMeta(resource);
  const contained = new Map<Entry['resource'], string>();
  const taken = new Set(
    Array.isArray(resource.contained)
      ? resource.contained.map((c) => (c as { id?: unknown })?.id)
      : [],
  );
  const contain = (target: Entry['resource']): string => {
    let local = contained.get(target);
    if (!local) {
      const prefix =
        target.resourceType === 'Medication' ? 'med' : target.resourceType.toLowerCase();
      for (let n = contained.size + 1; !local || taken.has(local); n++) local = `${prefix}${n}`;
      taken.add(local);
      contained.set(target, local);
    }
    return `#${local}`;
  };
  rewriteReferences(resource, how, contain, 'resource');
  if (contained.size > 0) {
    const own = Array.isArray(resource.contained) ? resource.contained : [];
    resource.contained = [
      ...own,
      ...[...contained].map(([target, local]) => {
        const copy = structuredClone(target);
        copy.id = local;
        withoutVersionMeta(copy);
        return copy;
      }),
    ];
  }
  return resource;
}

/**
 * The entry's own id and meta are replaced by the server's, but they are part of the resource
 * sent: an invalid one refuses the entry as createRecord would. Checked by the FHIR validator
 * itself, on a Basic (which needs nothing else but a code) holding only them.
 */
function checkSourceIdentity(resource: Entry['resource'], i: number): void {
  if (resource.id === undefined && resource.meta === undefined) return;
  const [issue] = fhirIssues({
    resourceType: 'Basic',
    ...(resource.id !== undefined ? { id: resource.id } : {}),
    ...(resource.meta !== undefined ? { meta: resource.meta } : {}),
    code: { text: 'identity' },
  });
  if (!issue) return;
  const path = issue.path.replace(/^Basic\.?/, '');
  throw bad(
    i,
    `has ${path || 'an id or meta'} that is not valid FHIR R4: ${issue.rule}`,
    `resource${path ? `.${path}` : ''}`,
  );
}

function withoutVersionMeta(resource: Record<string, unknown>): void {
  const meta = resource.meta;
  if (!isObject(meta)) return;
  delete meta.versionId;
  delete meta.lastUpdated;
  if (Object.keys(meta).length === 0) delete resource.meta;
}

function rewriteReferences(
  node: unknown,
  how: Rewriting,
  contain: (target: Entry['resource']) => string,
  path: string,
): void {
  if (Array.isArray(node)) {
    node.forEach((item, k) => rewriteReferences(item, how, contain, `${path}[${k}]`));
    return;
  }
  if (!isObject(node)) return;
  for (const [key, value] of Object.entries(node)) {
    if (key === 'reference' && typeof value === 'string') {
      // A version-specific reference names the same resource.
      const unversioned = value.replace(/\/_history\/[^/]+$/, '');
      // A relative reference resolves against its own entry's server first (FHIR R4 Bundle
      // rules), then against any entry that answers to it unambiguously.
      const relative = /^[A-Z][A-Za-z]+\/[^/]+$/.test(unversioned);
      const onBase = relative && how.base ? how.base + unversioned : undefined;
      // On its entry's server, `Type/id` is that server's resource: an entry of another server
      // with that id is not it, and it resolves as it would in a later bundle (on its base).
      const elsewhere =
        onBase !== undefined &&
        !how.fullUrls.has(onBase) &&
        (how.servers.get(unversioned)?.size ?? 0) > 0;
      const names = (elsewhere ? [onBase] : [onBase, value, unversioned]).filter(
        (n): n is string => n !== undefined,
      );
      const target = names.map((n) => how.targets.get(n)).find(Boolean);
      const medication = names.map((n) => how.containable.get(n)).find(Boolean);
      const skipped = /^https?:/i.test(value)
        ? undefined
        : names.map((n) => how.described.get(n)).find(Boolean);
      const earlier =
        target || medication || skipped ? undefined : how.imported?.(absoluteNames(names));
      if (target) node.reference = target;
      else if (medication) node.reference = contain(medication);
      else if (skipped) describe(node, skipped, contain);
      else if (earlier) node.reference = earlier;
      else if (
        relative &&
        !elsewhere &&
        how.ambiguous.has(unversioned) &&
        !(onBase && how.fullUrls.has(onBase))
      ) {
        throw bad(
          how.entry,
          `has a reference that more than one entry of the bundle answers to (entries from different servers); use their fullUrls`,
          `${path}.reference`,
        );
      }
    } else if (typeof value === 'object' && value !== null) {
      rewriteReferences(value, how, contain, `${path}.${key}`);
    }
  }
}

/**
 * Turns a reference to a skipped entry into a logical one: its type, its first identifier and
 * a display name, where the reference has none of its own. An entry that offers neither an
 * identifier nor a name is contained instead, so that the record still says what it named.
 */
function describe(
  reference: Record<string, unknown>,
  target: Entry['resource'],
  contain: (target: Entry['resource']) => string,
): void {
  const identifier = reference.identifier ?? firstIdentifier(target);
  const display = reference.display ?? displayOf(target);
  if (identifier === undefined && display === undefined) {
    // A contained resource may not contain others: such an entry stays referred to as it was.
    if (target.contained === undefined) reference.reference = contain(target);
    return;
  }
  delete reference.reference;
  reference.type ??= target.resourceType;
  if (identifier !== undefined) reference.identifier = identifier;
  if (display !== undefined) reference.display = display;
}

/** The resource's official (else usual, else first) identifier that has a value. */
function firstIdentifier(resource: Entry['resource']): Record<string, unknown> | undefined {
  if (!Array.isArray(resource.identifier)) return undefined;
  const usable = resource.identifier.filter(
    (i): i is Record<string, unknown> => isObject(i) && typeof i.value === 'string',
  );
  const chosen =
    usable.find((i) => i.use === 'official') ?? usable.find((i) => i.use === 'usual') ?? usable[0];
  if (!chosen) return undefined;
  const { system, value, type } = chosen;
  return structuredClone({
    ...(type !== undefined ? { type } : {}),
    ...(typeof system === 'string' ? { system } : {}),
    value,
  });
}

/** A name for the resource, as a person reads it: `name` (a string or a HumanName), else none. */
function displayOf(resource: Entry['resource']): string | undefined {
  const { name } = resource;
  if (typeof name === 'string') return name.trim() || undefined;
  const human = Array.isArray(name) ? name.find(isObject) : undefined;
  if (!human) return undefined;
  if (typeof human.text === 'string' && human.text.trim()) return human.text.trim();
  const words = [human.prefix, human.given, human.family, human.suffix]
    .flatMap((part) => (Array.isArray(part) ? part : [part]))
    .filter((w): w is string => typeof w === 'string' && w.trim() !== '');
  return words.length ? words.join(' ') : undefined;
}

/** Validates as createRecord does; the error names the entry, never a value. */
function validEntry(resource: Record<string, unknown>, ownerId: string, i: number): FhirResource {
  try {
    return validatePatientResource(resource, ownerId);
  } catch (e) {
    if (!(e instanceof BadUserInputError)) throw e;
    const field = typeof e.details.field === 'string' ? e.details.field : 'input.resource';
    throw new BadUserInputError(
      `entry[${i}]: ${e.message}; nothing was imported`,
      field.replace(/^input\.resource/, `${FIELD}.entry[${i}].resource`),
    );
  }
}

/**
 * The category an export labelled the record with (a meta.tag of Custodia's category system,
 * written where the record's category is not its content's), removed from the resource: it
 * is the record's label, not part of its content. Null when there is none.
 */
function takeCategoryTag(resource: Record<string, unknown>, i: number): string | null {
  const meta = resource.meta;
  if (!isObject(meta) || !Array.isArray(meta.tag)) return null;
  const ours = meta.tag.filter((t) => isObject(t) && t.system === RECORD_CATEGORY_SYSTEM);
  if (!ours.length) return null;
  const codes = new Set(ours.map((t) => (t as { code?: unknown }).code));
  const [code] = codes;
  if (codes.size !== 1 || typeof code !== 'string') {
    throw bad(
      i,
      'has more than one record category tag, or one without a code',
      'resource.meta.tag',
    );
  }
  try {
    checkedCategory(code, 'category');
  } catch (e) {
    if (!(e instanceof BadUserInputError)) throw e;
    throw bad(i, `has a record category tag whose ${e.message}`, 'resource.meta.tag');
  }
  const rest = meta.tag.filter((t) => !ours.includes(t));
  if (rest.length) meta.tag = rest;
  else delete meta.tag;
  if (Object.keys(meta).length === 0) delete resource.meta;
  return code;
}

/** The entry's category label, checked as createRecord checks it (so it can be amended later). */
function categoryOf(resource: FhirResource, i: number): string | null {
  try {
    return checkedCategory(deriveCategory(resource), 'category');
  } catch (e) {
    if (!(e instanceof BadUserInputError)) throw e;
    throw bad(i, `has a ${e.message}`, 'resource.category');
  }
}

function bad(i: number, problem: string, path: string): BadUserInputError {
  return new BadUserInputError(
    `entry[${i}] ${problem}; nothing was imported`,
    `${FIELD}.entry[${i}]${path ? `.${path}` : ''}`,
  );
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Whether two Patient resources may be the same person: no birth date or sex that both give
 * differs (a partial birth date agrees with every full one it is the start of).
 */
export function samePerson(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const [bornA, bornB] = [given(a.birthDate), given(b.birthDate)];
  const [sexA, sexB] = [given(a.gender), given(b.gender)];
  const bornDiffer =
    bornA !== null && bornB !== null && !bornA.startsWith(bornB) && !bornB.startsWith(bornA);
  return !bornDiffer && !(sexA !== null && sexB !== null && sexA !== sexB);
}

/** Whether two Patient resources give the same birth date and sex (or both give neither). */
export function sameFacts(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  return given(a.birthDate) === given(b.birthDate) && given(a.gender) === given(b.gender);
}

/** A birth date or sex as compared: null where the resource gives none, or `unknown`. */
function given(value: unknown): string | null {
  return typeof value === 'string' && value !== '' && value !== 'unknown' ? value : null;
}
