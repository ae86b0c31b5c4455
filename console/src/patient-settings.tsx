// The patient's settings: their name, their signing key (patient-signing-key.tsx), emergency
// (break-glass) access on or off, importing records, a download of all their data (records and
// grants as one FHIR R4 Bundle), and erasing it all behind a confirmation that asks them to
// type a word.
import { FormEvent, useRef, useState } from 'react';
import { ApiError, gql } from './api';
import { ErrorNotice, saveFile, toApiError, useAction, useLoad } from './common';
import { SigningKey } from './patient-signing-key';
import { forgetDeviceKey, signatureHelp, signIfHeld } from './signing';

/** The word a patient types to confirm erasure. */
export const ERASE_WORD = 'ERASE';

export function MySettings({ patientId, onErased }: { patientId: string; onErased: () => void }) {
  return (
    <>
      <DisplayName patientId={patientId} />
      <SigningKey patientId={patientId} />
      <EmergencySetting patientId={patientId} />
      <ImportRecords />
      <ExportMyData />
      <EraseMyData patientId={patientId} onErased={onErased} />
    </>
  );
}

/** A patient's yes/no setting of their profile, and the mutation that sets it. */
type PatientFlag =
  | { field: 'allowEmergencyAccess'; mutation: 'setEmergencyAccess' }
  | { field: 'allowAiDecisions'; mutation: 'setAiDecisions' };

/** Each flag's choice, as choicePayload takes it and as its payload names it. */
const CHOICES: Record<PatientFlag['field'], { arg: string; name: string }> = {
  allowEmergencyAccess: { arg: 'EMERGENCY_ACCESS', name: 'emergency-access' },
  allowAiDecisions: { arg: 'AI_DECISIONS', name: 'ai-decisions' },
};

/**
 * One of the patient's yes/no settings: loaded, set (a second press while saving is ignored),
 * and, once set, `said(allow)` for the status line.
 */
export function usePatientFlag(
  patientId: string,
  { field, mutation }: PatientFlag,
  said: (allow: boolean) => string,
) {
  const profile = useLoad(
    () =>
      gql<{ patient: Partial<Record<string, boolean>> | null }>(
        `query($p: ID!) { patient(id: $p) { ${field} } }`,
        { p: patientId },
      ),
    [patientId, field],
  );
  const { busy, error, run } = useAction();
  const [status, setStatus] = useState('');
  const set = (allow: boolean) =>
    run(async () => {
      setStatus('');
      // Turning it back on is signed whenever this browser holds the patient's key: the ledger
      // asks for the signature only of a patient who accepts only signed consent (whether they
      // do may have changed since the page loaded) and passes it by otherwise.
      const choice = CHOICES[field];
      const signature = allow
        ? await signIfHeld(
            patientId,
            () =>
              gql<{ choicePayload: string }>(
                'query($c: PatientChoice!) { choicePayload(choice: $c, allow: true) }',
                { c: choice.arg },
              ).then((d) => d.choicePayload),
            { type: 'custodia.patient-choice/v1', patientId, choice: choice.name, allow: true },
            true,
          )
        : null;
      await gql(
        `mutation($allow: Boolean!, $s: String) { ${mutation}(allow: $allow, signature: $s) { id } }`,
        { allow, s: signature },
      );
      await profile.reload();
      setStatus(said(allow));
    });
  return {
    allowed: profile.data?.patient?.[field],
    error: profile.error ?? error,
    busy,
    status,
    set,
  };
}

/**
 * The name clinicians see for the patient in their list of patients (registerPatient sets it
 * on the existing profile); without one they see an id.
 */
function DisplayName({ patientId }: { patientId: string }) {
  const { data, error: loadError } = useLoad(
    () =>
      gql<{ patient: { displayName: string | null } }>(
        `query($p: ID!) { patient(id: $p) { displayName } }`,
        { p: patientId },
      ),
    [patientId],
  );
  const [name, setName] = useState<string | null>(null);
  const { busy, error, run } = useAction();
  const [status, setStatus] = useState('');
  const shown = name ?? data?.patient?.displayName ?? '';

  const save = (e: FormEvent) => {
    e.preventDefault();
    setStatus('');
    return run(async () => {
      const { registerPatient } = await gql<{ registerPatient: { displayName: string | null } }>(
        `mutation($n: String) { registerPatient(displayName: $n) { displayName } }`,
        { n: shown.trim() },
      );
      setName(registerPatient.displayName ?? '');
      setStatus('Saved: clinicians you give access see this name.');
    });
  };

  return (
    <section aria-labelledby="name-h" className="panel">
      <h2 id="name-h">Your name</h2>
      <p>
        The name clinicians you give access to see in their list of patients. Without one they see
        only a long id, and cannot tell you from another patient.
      </p>
      <ErrorNotice error={error ?? loadError} />
      <form onSubmit={(e) => void save(e)} className="row">
        <label>
          Name shown to clinicians
          <input
            value={shown}
            onChange={(e) => setName(e.target.value)}
            maxLength={200}
            autoComplete="name"
          />
        </label>
        <button type="submit" disabled={busy || !shown.trim()}>
          {busy ? 'Saving…' : 'Save name'}
        </button>
      </form>
      <p aria-live="polite" className="status" data-testid="name-status">
        {status}
      </p>
    </section>
  );
}

function EmergencySetting({ patientId }: { patientId: string }) {
  const { allowed, error, busy, status, set } = usePatientFlag(
    patientId,
    { field: 'allowEmergencyAccess', mutation: 'setEmergencyAccess' },
    (allow) => (allow ? 'Emergency access is now on.' : 'Emergency access is now off.'),
  );

  return (
    <section aria-labelledby="emergency-h" className="panel">
      <h2 id="emergency-h">Emergency access</h2>
      <p>
        When it is on, a clinician you have not given access to may declare an emergency, giving a
        reason, and read your records for 60 minutes. Every such read is shown to you, highlighted,
        under “Who read my records”. When it is off, nobody may read your records without your
        consent, even in an emergency.
      </p>
      <ErrorNotice error={error} help={signatureHelp(error)} />
      {allowed !== undefined && (
        <>
          <p data-testid="emergency-state" data-allowed={String(allowed)}>
            Emergency access is <strong>{allowed ? 'on' : 'off'}</strong>.
          </p>
          <button
            type="button"
            className={allowed ? 'danger' : undefined}
            // Not disabled while saving: the keyboard's focus stays on the button.
            aria-disabled={busy}
            onClick={() => void set(!allowed)}
          >
            {busy ? 'Saving…' : allowed ? 'Turn emergency access off' : 'Turn emergency access on'}
          </button>
        </>
      )}
      <p aria-live="polite" className="status">
        {status}
      </p>
    </section>
  );
}

interface ImportReport {
  created: number;
  updated: number;
  unchanged: number;
  skipped: number;
  skippedTypes: string[];
}

/**
 * Brings in records from elsewhere: a FHIR R4 Bundle file (a Synthea or hospital export, or
 * this console's own download) through importBundle, all entries or none.
 */
function ImportRecords() {
  const { busy, error, run } = useAction();
  const [report, setReport] = useState<ImportReport | null>(null);
  const file = useRef<HTMLInputElement>(null);

  const importFile = (e: FormEvent) => {
    e.preventDefault();
    const chosen = file.current?.files?.[0];
    if (!chosen) return;
    setReport(null);
    return run(async () => {
      let bundle: unknown;
      try {
        bundle = JSON.parse(await chosen.text());
      } catch {
        throw new ApiError('BAD_USER_INPUT', `${chosen.name} is not a JSON file.`);
      }
      const { importBundle } = await gql<{ importBundle: ImportReport }>(
        `mutation($b: JSON!) { importBundle(bundle: $b) { created updated unchanged skipped skippedTypes } }`,
        { b: bundle },
      );
      setReport(importBundle);
      if (file.current) file.current.value = '';
    });
  };

  return (
    <section aria-labelledby="import-h" className="panel">
      <h2 id="import-h">Bring in records from elsewhere</h2>
      <p>
        A FHIR R4 Bundle file from another hospital or app (or a download from here). Every entry is
        checked first: one that is not valid stops the import, and nothing is added.
      </p>
      <form onSubmit={(e) => void importFile(e)} className="row">
        <label>
          Bundle file (JSON)
          <input
            ref={file}
            type="file"
            required
            accept=".json,application/json,application/fhir+json"
          />
        </label>
        <button type="submit" disabled={busy}>
          {busy ? 'Importing…' : 'Import records'}
        </button>
      </form>
      <ErrorNotice error={error} />
      {report && (
        <p role="status" data-testid="import-done">
          Imported {report.created} new {report.created === 1 ? 'record' : 'records'}
          {report.updated > 0 ? `, updated ${report.updated} brought in before` : ''}
          {report.unchanged > 0
            ? `; ${report.unchanged} brought in before ${report.unchanged === 1 ? 'was' : 'were'} already here, unchanged`
            : ''}
          {report.skipped > 0
            ? `; set aside ${report.skipped} that hold no one's health data (${report.skippedTypes.join(', ')})`
            : ''}
          .
        </p>
      )}
    </section>
  );
}

/** The file name of an export: the day it was made, so that several do not overwrite. */
export function exportFileName(at = new Date()): string {
  return `my-health-records-${at.toISOString().slice(0, 10)}.json`;
}

/** Downloads the patient's records and grants (exportMyData) as a FHIR R4 Bundle file. */
function ExportMyData() {
  const { busy, error, run } = useAction();
  const [done, setDone] = useState<number | null>(null);

  const download = () => {
    setDone(null);
    return run(async () => {
      const { exportMyData } = await gql<{ exportMyData: { entry?: unknown[] } }>(
        `query { exportMyData }`,
      );
      const json = JSON.stringify(exportMyData, null, 2);
      saveFile(new Blob([json], { type: 'application/fhir+json' }), exportFileName());
      setDone(exportMyData.entry?.length ?? 0);
    });
  };

  return (
    <section aria-labelledby="export-h" className="panel">
      <h2 id="export-h">Download my data</h2>
      <p>
        All your records and the grants you have given, as one FHIR R4 file that another system (or
        this one, after erasure) can import. Take it before erasing your data.
      </p>
      <button type="button" onClick={() => void download()} disabled={busy}>
        {busy ? 'Preparing…' : 'Download my data'}
      </button>
      {done !== null && (
        <p role="status" data-testid="export-done">
          Downloaded {done} {done === 1 ? 'entry' : 'entries'}.
        </p>
      )}
      <ErrorNotice error={error} />
    </section>
  );
}

function EraseMyData({ patientId, onErased }: { patientId: string; onErased: () => void }) {
  const [confirming, setConfirming] = useState(false);
  const [word, setWord] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const start = useRef<HTMLButtonElement>(null);
  const input = useRef<HTMLInputElement>(null);

  function open() {
    setConfirming(true);
    setWord('');
    setError(null);
    // The confirmation appears where the button was: take the keyboard there.
    setTimeout(() => input.current?.focus(), 0);
  }

  function cancel() {
    setConfirming(false);
    setWord('');
    setTimeout(() => start.current?.focus(), 0);
  }

  async function erase(e: FormEvent) {
    e.preventDefault();
    if (word.trim() !== ERASE_WORD) return;
    setBusy(true);
    setError(null);
    try {
      await gql<{ eraseMyData: boolean }>(`mutation { eraseMyData(confirm: true) }`);
      // This browser's signing key goes with the rest (a browser without IndexedDB held none).
      await forgetDeviceKey(patientId).catch(() => undefined);
      onErased();
    } catch (err) {
      setError(toApiError(err));
      setBusy(false);
    }
  }

  return (
    <section aria-labelledby="erase-h" className="panel">
      <h2 id="erase-h">Erase my data</h2>
      <p>
        Erasing revokes every grant you have given (on the ledger), destroys the keys your records
        are encrypted with and deletes the records. It cannot be undone. The ledger keeps only
        fingerprints that reveal nothing once the keys are gone. You are signed out afterwards.
        Download your data first if you may want it again.
      </p>
      {!confirming && (
        <button type="button" className="danger" ref={start} onClick={open}>
          Erase my data…
        </button>
      )}
      {confirming && (
        <form
          onSubmit={(e) => void erase(e)}
          className="confirm"
          aria-labelledby="erase-confirm-h"
          data-testid="erase-confirmation"
        >
          <h3 id="erase-confirm-h">Erase everything? This cannot be undone.</h3>
          <label>
            Type {ERASE_WORD} to confirm
            <input
              ref={input}
              value={word}
              onChange={(e) => setWord(e.target.value)}
              autoComplete="off"
              autoCapitalize="characters"
              spellCheck={false}
            />
          </label>
          <ErrorNotice error={error} />
          <div className="row">
            <button type="submit" className="danger" disabled={busy || word.trim() !== ERASE_WORD}>
              {busy ? 'Erasing…' : 'Erase all my data now'}
            </button>
            <button type="button" onClick={cancel} disabled={busy}>
              Cancel, keep my data
            </button>
          </div>
        </form>
      )}
    </section>
  );
}
