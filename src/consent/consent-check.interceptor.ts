// Enforces @ConsentChecked: the answer of such an operation may only hold data of patients
// the policy decision point permitted in that same operation. A resolver that forgets the
// PDP (or a refactoring that bypasses it) fails closed with INTERNAL and an error log, instead
// of disclosing records.
import { CallHandler, ExecutionContext, Injectable, Logger, NestInterceptor } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { Observable, map } from 'rxjs';
import { CONSENT_CHECK_KEY } from '../auth';
import { InternalError } from '../common/errors';
import { DecisionScope, runInDecisionScope } from './decision-scope';

@Injectable()
export class ConsentCheckInterceptor implements NestInterceptor {
  private readonly logger = new Logger('ConsentCheck');

  constructor(private readonly reflector: Reflector) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const checked = this.reflector.getAllAndOverride<boolean>(CONSENT_CHECK_KEY, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (!checked) return next.handle();
    const scope = new DecisionScope();
    // handle() binds the handler to the async context it is called in: the scope's.
    return runInDecisionScope(scope, () => next.handle()).pipe(
      map((answer) => {
        const uncovered = uncoveredPatients(answer, scope);
        if (uncovered === 0) return answer;
        this.logger.error(
          { handler: context.getHandler().name, uncovered },
          'operation answered without a permitting consent decision',
        );
        throw new InternalError('The answer was withheld: its consent check did not run.');
      }),
    );
  }
}

/**
 * How many patients the answer discloses that no permitting decision covered. An answer
 * naming no patient (a report on one record) needs at least one permitting decision.
 */
export function uncoveredPatients(answer: unknown, scope: DecisionScope): number {
  if (answer === null || answer === undefined) return 0;
  const patients = disclosedPatients(answer);
  if (patients.size === 0) return scope.permitted.size > 0 ? 0 : 1;
  return [...patients].filter((p) => !scope.permitted.has(p)).length;
}

function disclosedPatients(answer: unknown): Set<string> {
  const found = new Set<string>();
  const add = (x: unknown) => {
    const id = (x as { patientId?: unknown } | null)?.patientId;
    if (typeof id === 'string') found.add(id);
  };
  add(answer);
  const items = (answer as { items?: unknown }).items;
  if (Array.isArray(items)) items.forEach(add);
  return found;
}
