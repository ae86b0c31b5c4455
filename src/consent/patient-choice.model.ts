import { registerEnumType } from '@nestjs/graphql';
import type { PatientChoiceName } from '@custodia/chaincode/signed-consent';

/** A patient's yes/no choice that, for a signed-only patient, turns back on only signed. */
export enum PatientChoice {
  EMERGENCY_ACCESS = 'EMERGENCY_ACCESS',
  AI_DECISIONS = 'AI_DECISIONS',
}

registerEnumType(PatientChoice, {
  name: 'PatientChoice',
  description:
    'A choice of the patient that, once they accept only signed consent, turns back on only with their signature.',
});

/** The chaincode's name of each choice (in choicePayload). */
export const CHOICE_NAMES: Readonly<Record<PatientChoice, PatientChoiceName>> = {
  [PatientChoice.EMERGENCY_ACCESS]: 'emergency-access',
  [PatientChoice.AI_DECISIONS]: 'ai-decisions',
};
