// What the validator reports: where (a FHIRPath-like path such as `Observation.component[0].code`)
// and which rule. Never the value: values may be PHI.
export interface FhirIssue {
  path: string;
  rule: string;
}

/** Property names are echoed only when they look like element names, not free text. */
export function safeName(name: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]{0,63}$/.test(name) ? name : '(unnamed element)';
}
