// What the policy decision point permitted during one operation. An operation marked
// @ConsentChecked runs inside a scope; the PDP notes each patient it permitted access to, and
// the ConsentCheckInterceptor refuses to return patient data the scope does not cover.
import { AsyncLocalStorage } from 'node:async_hooks';

export class DecisionScope {
  /** Patients the PDP permitted access to (self, grants or emergency) in this operation. */
  readonly permitted = new Set<string>();
}

const scopes = new AsyncLocalStorage<DecisionScope>();

export function runInDecisionScope<T>(scope: DecisionScope, fn: () => T): T {
  return scopes.run(scope, fn);
}

/** Called by the PDP for every permitting decision; a no-op outside a scope. */
export function notePermitted(patientId: string): void {
  scopes.getStore()?.permitted.add(patientId);
}
