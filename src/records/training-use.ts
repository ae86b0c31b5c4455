// What a training node's TRAIN event tells its patient: the study, run and round that used their
// records. It travels as the event's reason, sealed under the patient's data key, so the run id
// (not public: runs are the researchers') is shown to that patient alone and erased with them.

/** The round a node trains for: the run's study, the run and the round number. */
export interface TrainingRoundRef {
  studyId: string;
  runId: string;
  round: number;
}

/** The reason of a TRAIN event; `parseTrainingUse` reads it back (AccessEvent.trainingUse). */
export function trainingUseReason({ studyId, runId, round }: TrainingRoundRef): string {
  return `Training run ${runId}, round ${round} (study ${studyId})`;
}

const REASON = /^Training run (\S+), round (\d+) \(study (\S+)\)$/;

/**
 * The round a TRAIN event's reason names, or null: an event logged before nodes named the
 * round, or whose reason is gone with the patient's key.
 */
export function parseTrainingUse(reason: string | null): TrainingRoundRef | null {
  const m = reason === null ? null : REASON.exec(reason);
  return m ? { runId: m[1], round: Number(m[2]), studyId: m[3] } : null;
}
