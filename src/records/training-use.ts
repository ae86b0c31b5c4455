// What a training node's TRAIN event tells its patient: the study, run and round that used their
// records. It travels as the event's reason, sealed under the patient's data key, so the run id
// (not public: runs are the researchers') is shown to that patient alone and erased with them.

/** The round a node trains for: the run's study, the run and the round number. */
export interface TrainingRoundRef {
  studyId: string;
  runId: string;
  round: number;
}

/**
 * The reason of a TRAIN event. The console reads it back (console/src/patient-studies.tsx,
 * `parseTrainingUse`): change both together.
 */
export function trainingUseReason({ studyId, runId, round }: TrainingRoundRef): string {
  return `Training run ${runId}, round ${round} (study ${studyId})`;
}
