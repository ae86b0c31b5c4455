// The clinician's pages: my patients (from the grants made to me) and a patient's chart, with
// a lab value over time as a plot.
import { FormEvent, useEffect, useMemo, useState } from 'react';
import { ApiError, gql } from './api';
import { ErrorNotice, formatTime, toApiError, useLoad } from './common';
import { LineChart } from './LineChart';
import {
  codeOf,
  dateOf,
  HealthRecord,
  INTEGRITY_WORDS,
  labPoint,
  RECORD_FIELDS,
  summaryOf,
} from './records';

/** Lab values worth plotting, by LOINC code. */
const LABS: Record<string, string> = {
  '4548-4': 'HbA1c',
  '2345-7': 'Glucose',
  '2093-3': 'Total cholesterol',
  '39156-5': 'BMI',
  '8480-6': 'Systolic blood pressure',
};

interface PatientAccess {
  patient: { id: string; displayName: string | null };
  grants: { purpose: string; resourceTypes: string[] }[];
  emergencyUntil: string | null;
}

export function MyPatients({ onOpen }: { onOpen: (patientId: string) => void }) {
  const { data, error } = useLoad(
    () =>
      gql<{ myPatients: { items: PatientAccess[] } }>(
        `query { myPatients(first: 100) { items { patient { id displayName } grants { purpose resourceTypes } emergencyUntil } } }`,
      ),
    [],
  );
  const patients = data?.myPatients.items ?? [];
  return (
    <section aria-labelledby="patients-h">
      <h2 id="patients-h">My patients</h2>
      <p>Patients with an active grant to you or your organisation, or a running emergency.</p>
      <ErrorNotice error={error} />
      {data && patients.length === 0 && <p>No patient has granted you access.</p>}
      <ul className="cards">
        {patients.map(({ patient, grants, emergencyUntil }) => (
          <li key={patient.id} className="card">
            <p>
              <strong>{patient.displayName ?? 'Unnamed patient'}</strong> <code>{patient.id}</code>
            </p>
            <p className="muted">
              {grants
                .map(
                  (g) =>
                    `${g.purpose.toLowerCase()}: ${g.resourceTypes.length ? g.resourceTypes.join(', ') : 'all records'}`,
                )
                .join('; ')}
              {emergencyUntil ? ` · emergency until ${formatTime(emergencyUntil)} UTC` : ''}
            </p>
            <button
              type="button"
              onClick={() => onOpen(patient.id)}
              aria-label={`Open chart for ${patient.displayName ?? patient.id}`}
            >
              Open chart
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

export function Chart({ initialPatientId }: { initialPatientId: string }) {
  const [input, setInput] = useState(initialPatientId);
  const [patientId, setPatientId] = useState(initialPatientId);
  const open = (e: FormEvent) => {
    e.preventDefault();
    setPatientId(input.trim());
  };
  return (
    <section aria-labelledby="chart-h">
      <h2 id="chart-h">Patient chart</h2>
      <form className="row" onSubmit={open}>
        <label>
          Patient id
          <input value={input} onChange={(e) => setInput(e.target.value)} autoComplete="off" />
        </label>
        <button type="submit">Open</button>
      </form>
      {patientId && <ChartOf key={patientId} patientId={patientId} />}
    </section>
  );
}

function ChartOf({ patientId }: { patientId: string }) {
  const { data, error, loading, reload } = useLoad(
    () =>
      gql<{ records: { items: HealthRecord[] } }>(
        `query($p: ID!) { records(patientId: $p, first: 100) { items { ${RECORD_FIELDS} } } }`,
        { p: patientId },
      ),
    [patientId],
  );
  const items = useMemo(() => data?.records.items ?? [], [data]);
  const byType = useMemo(() => {
    const m = new Map<string, HealthRecord[]>();
    for (const r of items) m.set(r.resourceType, [...(m.get(r.resourceType) ?? []), r]);
    return [...m.entries()].sort(([a], [b]) => a.localeCompare(b));
  }, [items]);
  const labCodes = useMemo(
    () =>
      Object.keys(LABS).filter((c) =>
        items.some((r) => r.resourceType === 'Observation' && codeOf(r.resource) === c),
      ),
    [items],
  );
  const [lab, setLab] = useState('4548-4');
  const shownLab = labCodes.includes(lab) ? lab : labCodes[0];

  return (
    <div>
      <div className="row">
        <button type="button" onClick={() => void reload()}>
          Refresh
        </button>
      </div>
      {error?.code === 'CONSENT_REQUIRED' ? (
        <>
          <div role="alert" className="error" data-code="CONSENT_REQUIRED">
            <strong>No consent: this patient has not granted you access to their records</strong>
            <span className="detail">
              (or has revoked it). Ask the patient to grant you access in their console; in an
              emergency, declare break-glass access with a reason.
            </span>
          </div>
          <BreakGlass patientId={patientId} onDeclared={reload} />
        </>
      ) : (
        <ErrorNotice error={error} />
      )}

      <EmergencyCountdown patientId={patientId} />
      {loading && <p aria-live="polite">Loading…</p>}
      {data && items.length === 0 && <p>No records that you may read.</p>}
      {shownLab && <LabPlot items={items} code={shownLab} onPick={setLab} codes={labCodes} />}
      {byType.map(([type, records]) => (
        <section key={type} aria-label={type} className="panel">
          <h3>
            {type} ({records.length})
          </h3>
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">What</th>
                  <th scope="col">Date</th>
                  <th scope="col">Integrity</th>
                </tr>
              </thead>
              <tbody>
                {[...records]
                  .sort((a, b) =>
                    (dateOf(b.resource) ?? b.createdAt).localeCompare(
                      dateOf(a.resource) ?? a.createdAt,
                    ),
                  )
                  .map((r) => (
                    <tr key={r.id}>
                      <td>{summaryOf(r.resource)}</td>
                      <td>{formatTime(dateOf(r.resource) ?? r.createdAt)}</td>
                      <td>{INTEGRITY_WORDS[r.integrity]}</td>
                    </tr>
                  ))}
              </tbody>
            </table>
          </div>
        </section>
      ))}
    </div>
  );
}

function LabPlot(props: {
  items: HealthRecord[];
  code: string;
  codes: string[];
  onPick: (code: string) => void;
}) {
  const { items, code } = props;
  const points = useMemo(
    () =>
      items
        .filter((r) => r.resourceType === 'Observation' && codeOf(r.resource) === code)
        .map((r) => labPoint(r.resource))
        .filter((p) => p !== undefined)
        .sort((a, b) => a.date.localeCompare(b.date)),
    [items, code],
  );
  const unit = points[0]?.unit ?? '';
  const labels = useMemo(() => points.map((p) => p.date.slice(0, 10)), [points]);
  const series = useMemo(
    () => [
      { label: `${LABS[code]} (${unit})`, values: points.map((p) => p.value), color: '#1d4ed8' },
    ],
    [points, code, unit],
  );
  return (
    <div className="panel">
      <label>
        Lab value
        <select value={code} onChange={(e) => props.onPick(e.target.value)}>
          {props.codes.map((c) => (
            <option key={c} value={c}>
              {LABS[c]} (LOINC {c})
            </option>
          ))}
        </select>
      </label>
      <LineChart
        testId="lab-chart"
        title={`${LABS[code]} over time, in ${unit}`}
        labels={labels}
        series={series}
        xTitle="Date"
        yTitle={unit}
      />
    </div>
  );
}

/** Break-glass: READ for 60 minutes with a reason, always shown to the patient. */
function BreakGlass({
  patientId,
  onDeclared,
}: {
  patientId: string;
  onDeclared: () => Promise<void>;
}) {
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const { declareEmergency } = await gql<{ declareEmergency: { expiresAt: string } }>(
        `mutation($p: ID!, $r: String!) { declareEmergency(patientId: $p, reason: $r) { expiresAt } }`,
        { p: patientId, r: reason.trim() },
      );
      emergencies.set(patientId, declareEmergency.expiresAt);
      await onDeclared();
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  }
  return (
    <form className="panel" onSubmit={(e) => void submit(e)} aria-labelledby="bg-h">
      <h3 id="bg-h">Emergency (break-glass) access</h3>
      <p>
        Read access for 60 minutes, unless the patient refused it. The patient sees it, with your
        reason.
      </p>
      <label>
        Reason
        <input required value={reason} onChange={(e) => setReason(e.target.value)} />
      </label>
      <ErrorNotice error={error} />
      <button type="submit" className="danger" disabled={busy}>
        {busy ? 'Declaring…' : 'Declare an emergency'}
      </button>
    </form>
  );
}

/** When this session's emergencies end, by patient: in memory, like the token. */
const emergencies = new Map<string, string>();

/** The time left of an emergency declared in this session, updated every second. */
export function EmergencyCountdown({ patientId }: { patientId: string }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  const until = emergencies.get(patientId);
  if (!until) return null;
  const left = Math.max(0, new Date(until).getTime() - now);
  const minutes = Math.floor(left / 60000);
  const seconds = Math.floor((left % 60000) / 1000);
  return (
    <p className="emergency" role="status" data-testid="emergency">
      {left > 0
        ? `Emergency access: ${minutes} min ${String(seconds).padStart(2, '0')} s left`
        : 'Emergency access has ended.'}
    </p>
  );
}
