// The members of R4's own value sets, expanded from the definitions package (FHIR's and HL7 v3's
// code systems). A value set that draws on a system the package does not hold in full (SNOMED CT,
// LOINC, UCUM, BCP-47, ...) or on a filter we do not evaluate is unresolvable: its binding cannot
// be checked here, and is not.
import type {
  CodeSystem,
  CodeSystemConcept,
  ValueSet,
  ValueSetFilter,
  ValueSetInclude,
} from './definitions';

export interface ValueSetMembers {
  /** Every member code, whatever its system: what a `code` element is checked against. */
  codes: Set<string>;
  bySystem: Map<string, Set<string>>;
}

export class Terminology {
  private readonly valueSets = new Map<string, ValueSet>();
  private readonly codeSystems = new Map<string, CodeSystem>();
  private readonly expanded = new Map<string, ValueSetMembers | null>();

  constructor(resources: (ValueSet | CodeSystem)[]) {
    for (const r of resources) {
      if (r.resourceType === 'ValueSet') this.valueSets.set(r.url, r);
      else this.codeSystems.set(r.url, r);
    }
  }

  /** The members of a value set, or null when the package cannot say. Cached. */
  expand(url: string): ValueSetMembers | null {
    const key = url.replace(/\|.*$/, '');
    if (!this.expanded.has(key)) {
      this.expanded.set(key, null); // a value set that includes itself resolves to nothing
      this.expanded.set(key, this.expandUncached(key));
    }
    return this.expanded.get(key)!;
  }

  private expandUncached(url: string): ValueSetMembers | null {
    const compose = this.valueSets.get(url)?.compose;
    if (!compose?.include?.length) return null;
    const pairs: [string, string][] = [];
    for (const include of compose.include) {
      const part = this.selection(include);
      if (!part) return null;
      pairs.push(...part);
    }
    const excluded = new Set<string>();
    for (const exclude of compose.exclude ?? []) {
      const part = this.selection(exclude);
      if (!part) return null;
      for (const [system, code] of part) excluded.add(`${system}|${code}`);
    }
    const members: ValueSetMembers = { codes: new Set(), bySystem: new Map() };
    for (const [system, code] of pairs) {
      if (excluded.has(`${system}|${code}`)) continue;
      members.codes.add(code);
      let codes = members.bySystem.get(system);
      if (!codes) members.bySystem.set(system, (codes = new Set()));
      codes.add(code);
    }
    return members;
  }

  /** The (system, code) pairs one include or exclude clause selects, or null if unknown. */
  private selection(clause: ValueSetInclude): [string, string][] | null {
    if (clause.valueSet?.length) {
      if (clause.system) return null; // an intersection; R4's core sets do not need it
      const pairs: [string, string][] = [];
      for (const url of clause.valueSet) {
        const members = this.expand(url);
        if (!members) return null;
        for (const [system, codes] of members.bySystem) {
          for (const code of codes) pairs.push([system, code]);
        }
      }
      return pairs;
    }
    const system = clause.system;
    if (!system) return null;
    if (clause.concept?.length) return clause.concept.map((c) => [system, c.code]);
    const cs = this.codeSystems.get(system);
    if (!cs?.concept || (cs.content !== undefined && cs.content !== 'complete')) return null;
    let codes = flatten(cs.concept);
    for (const filter of clause.filter ?? []) {
      const kept = applyFilter(cs.concept, filter);
      if (!kept) return null;
      codes = codes.filter((c) => kept.has(c));
    }
    return codes.map((code) => [system, code]);
  }
}

function flatten(concepts: CodeSystemConcept[], out: string[] = []): string[] {
  for (const c of concepts) {
    out.push(c.code);
    if (c.concept) flatten(c.concept, out);
  }
  return out;
}

/** The hierarchy filters (is-a, descendent-of, is-not-a) over a code system's nesting. */
function applyFilter(concepts: CodeSystemConcept[], filter: ValueSetFilter): Set<string> | null {
  if (filter.property !== 'concept') return null;
  const find = (list: CodeSystemConcept[]): CodeSystemConcept | undefined => {
    for (const c of list) {
      if (c.code === filter.value) return c;
      const inner = c.concept && find(c.concept);
      if (inner) return inner;
    }
    return undefined;
  };
  const root = find(concepts);
  if (!root) return null;
  const below = new Set(flatten(root.concept ?? []));
  switch (filter.op) {
    case 'is-a':
      return below.add(root.code);
    case 'descendent-of':
      return below;
    case 'is-not-a':
      below.add(root.code);
      return new Set(flatten(concepts).filter((c) => !below.has(c)));
    default:
      return null;
  }
}
