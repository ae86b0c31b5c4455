// The clinician's pages: my patients (from the grants made to me) and a patient's chart, with
// the latest vital signs, a lab value over time as a plot, and AI risk assessment
// (clinician-assess.tsx).
import {
  createContext,
  FormEvent,
  ReactNode,
  useContext,
  useEffect,
  useMemo,
  useState,
} from 'react';
import { AssessRisk } from './clinician-assess';
import { ApiError, gql, gqlPartial } from './api';
import { ErrorNotice, formatTime, toApiError, useLoad, WithheldNotice } from './common';
import { LineChart } from './LineChart';
import { allPages, Paged } from './paging';
import {
  allRecordsOf,
  clinicalDate,
  codeOf,
  HealthRecord,
  INTEGRITY_WORDS,
  labPoint,
  newestFirst,
  Quantity,
  quantityOf,
  quantityText,
  RECORD_FIELDS,
  summaryOf,
  unitWords,
  valueText,
  WITHHELD_HELP,
} from './records';

/** Lab values worth plotting, by LOINC code. */
const LABS: Record<string, string> = {
  '4548-4': 'HbA1c',
  '2345-7': 'Glucose',
  '2093-3': 'Total cholesterol',
  '39156-5': 'BMI',
  '8480-6': 'Systolic blood pressure',
};

interface GrantToMe {
  purpose: string;
  actions: string[];
  resourceTypes: string[];
  categories: string[];
  includeRestricted: boolean;
}

interface PatientAccess {
  patient: { id: string; displayName: string | null };
  grants: GrantToMe[];
  emergencyUntil: string | null;
}

/** What a grant allows, in a line: "treatment: read Observation in laboratory". */
function grantWords(g: GrantToMe): string {
  const actions = g.actions.map((a) => a.toLowerCase()).join(' and ');
  const types = g.resourceTypes.length ? g.resourceTypes.join(', ') : 'all record types';
  const categories = g.categories.length ? ` in ${g.categories.join(', ')}` : '';
  const restricted = g.includeRestricted ? ', restricted included' : '';
  return `${g.purpose.toLowerCase()}: ${actions} ${types}${categories}${restricted}`;
}

export function MyPatients({ onOpen }: { onOpen: (patientId: string) => void }) {
  const { data, error, loading } = useLoad(
    () =>
      allPages<PatientAccess>((after) =>
        gql<{ myPatients: Paged<PatientAccess> }>(
          `query($after: String) { myPatients(first: 100, after: $after) {
             items { patient { id displayName }
               grants { purpose actions resourceTypes categories includeRestricted }
               emergencyUntil }
             nextCursor } }`,
          { after },
        ).then((d) => d.myPatients),
      ),
    [],
  );
  const patients = data ?? [];
  return (
    <section aria-labelledby="patients-h">
      <h2 id="patients-h">My patients</h2>
      <p>Patients with an active grant to you or your organisation, or a running emergency.</p>
      <ErrorNotice error={error} />
      {loading && <p aria-live="polite">Loading…</p>}
      {data && patients.length === 0 && <p>No patient has granted you access.</p>}
      <ul className="cards">
        {patients.map(({ patient, grants, emergencyUntil }) => (
          <li key={patient.id} className="card" data-testid="my-patient" data-patient={patient.id}>
            <p>
              <strong>{patient.displayName ?? 'Unnamed patient'}</strong> <code>{patient.id}</code>
            </p>
            {grants.length > 0 && (
              <ul className="muted grant-lines" aria-label="Granted to you">
                {grants.map((g, i) => (
                  <li key={i} data-testid="patient-grant">
                    {grantWords(g)}
                  </li>
                ))}
              </ul>
            )}
            {emergencyUntil && (
              <p className="muted">Emergency access until {formatTime(emergencyUntil)} UTC</p>
            )}
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
  // Every page of the records: a chart that stopped at the first hundred would hide a patient's
  // older conditions and allergies, and plot a lab value's newest points only.
  const { data, error, loading, reload } = useLoad(() => allRecordsOf(patientId), [patientId]);
  // Counts the chart's reloads (Refresh, an emergency declared): what depends on the access
  // to this patient, such as the AI decisions, is read again with it.
  const [reloads, setReloads] = useState(0);
  const refresh = async () => {
    setReloads((n) => n + 1);
    await reload();
  };
  const items = useMemo(() => data?.records ?? [], [data]);
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
        <button type="button" onClick={() => void refresh()}>
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
          <BreakGlass patientId={patientId} onDeclared={refresh} />
        </>
      ) : (
        <ErrorNotice error={error} />
      )}

      {/* Refused, the server no longer honours an emergency this page declared (the patient
          turned emergency access off, or erased their data): no countdown for it. */}
      {error?.code !== 'CONSENT_REQUIRED' && <EmergencyCountdown patientId={patientId} />}
      {loading && <p aria-live="polite">Loading…</p>}
      {data && <LatestVitals patientId={patientId} loaded={data} />}
      {data && (
        <WithheldNotice errors={data.withheld} one="record" many="records" help={WITHHELD_HELP} />
      )}
      {data && items.length === 0 && data.withheld.length === 0 && (
        <p>No records that you may read.</p>
      )}
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
                {[...records].sort(newestFirst).map((r) => (
                  <tr key={r.id} data-record={r.id}>
                    <td>{summaryOf(r.resource)}</td>
                    <td>
                      <time dateTime={clinicalDate(r)}>{formatTime(clinicalDate(r))}</time>
                    </td>
                    <td>{INTEGRITY_WORDS[r.integrity]}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
      ))}
      <AssessRisk patientId={patientId} chartReloads={reloads} />
    </div>
  );
}

/** The vital signs shown, each with the LOINC codes that carry it (the first preferred). */
const VITALS: { name: string; codes: string[] }[] = [
  { name: 'Heart rate', codes: ['8867-4'] },
  { name: 'Blood pressure', codes: ['85354-9'] },
  // Body temperature, else where it was taken: oral, axillary, tympanic, rectal.
  { name: 'Body temperature', codes: ['8310-5', '8331-1', '8328-7', '8333-7', '8332-9'] },
  { name: 'Respiratory rate', codes: ['9279-1'] },
  { name: 'Oxygen saturation (SpO₂)', codes: ['59408-5', '2708-6'] },
  { name: 'Body weight', codes: ['29463-7'] },
  { name: 'Body mass index (BMI)', codes: ['39156-5'] },
];
const SYSTOLIC = '8480-6';
const DIASTOLIC = '8462-4';
const VITAL_CODES = [...VITALS.flatMap((v) => v.codes), SYSTOLIC, DIASTOLIC];

interface Dated extends Quantity {
  date: string | undefined;
}

interface Coded {
  code?: { coding?: { code?: string }[] };
  valueQuantity?: Parameters<typeof quantityOf>[0];
}

function hasCode(part: Coded, code: string): boolean {
  return (part.code?.coding ?? []).some((c) => c.code === code);
}

/**
 * The newest value for `code` among `records`: an Observation with that code, or a component
 * with it (a blood-pressure panel carries systolic and diastolic as components).
 */
function newestValue(records: HealthRecord[], code: string): Dated | undefined {
  let best: Dated | undefined;
  for (const r of records) {
    const resource = r.resource as Coded & { component?: Coded[] };
    const date = clinicalDate(r);
    const parts = [resource, ...(resource.component ?? [])];
    for (const part of parts) {
      if (!hasCode(part, code)) continue;
      const found = quantityOf(part.valueQuantity);
      const q = found && { ...found, date };
      if (q && (!best || (q.date ?? '') > (best.date ?? ''))) best = q;
    }
  }
  return best;
}

interface VitalRow {
  name: string;
  value: string | null;
  date: string | undefined;
}

function vitalRows(records: HealthRecord[]): VitalRow[] {
  return VITALS.map(({ name, codes }) => {
    if (codes[0] === '85354-9') {
      const sys = newestValue(records, SYSTOLIC);
      const dia = newestValue(records, DIASTOLIC);
      if (!sys && !dia) return { name, value: null, date: undefined };
      const unit = unitWords(sys?.unit || dia?.unit || '');
      // A bound keeps its comparator ("> 180"): it is not the pressure measured.
      const value = `${sys ? valueText(sys) : '—'}/${dia ? valueText(dia) : '—'} ${unit}`.trim();
      const dates = [sys?.date, dia?.date].filter((d): d is string => !!d).sort();
      return { name, value, date: dates[dates.length - 1] };
    }
    const found = codes
      .map((c) => newestValue(records, c))
      .filter((q): q is Dated => !!q)
      .sort((a, b) => (b.date ?? '').localeCompare(a.date ?? ''))[0];
    return found
      ? { name, value: quantityText(found), date: found.date }
      : { name, value: null, date: undefined };
  });
}

/** The newest value of each vital sign (`latestObservations`), with its unit and date. */
function LatestVitals({ patientId, loaded }: { patientId: string; loaded: unknown }) {
  const { data, error } = useLoad(
    () =>
      gqlPartial<{ latestObservations: HealthRecord[] }>(
        `query($p: ID!, $codes: [String!]!) { latestObservations(patientId: $p, codes: $codes) { ${RECORD_FIELDS} } }`,
        { p: patientId, codes: VITAL_CODES },
      ),
    // Fetched again whenever the chart's records are (the Refresh button).
    [patientId, loaded],
  );
  const rows = useMemo(() => vitalRows(data?.data.latestObservations ?? []), [data]);
  return (
    <section className="panel" aria-labelledby="vitals-h" data-testid="vitals">
      <h3 id="vitals-h">Latest vital signs</h3>
      <ErrorNotice error={error} />
      {data && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Vital sign</th>
                <th scope="col">Latest value</th>
                <th scope="col">Date</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <tr key={row.name} data-vital={row.name}>
                  <th scope="row">{row.name}</th>
                  {row.value === null ? (
                    <td colSpan={2} className="muted">
                      No value recorded
                    </td>
                  ) : (
                    <>
                      <td>{row.value}</td>
                      <td>{row.date ? formatTime(row.date) : '—'}</td>
                    </>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {data && (
        <WithheldNotice
          errors={data.errors}
          one="newer value"
          many="newer values"
          help={WITHHELD_HELP}
        />
      )}
    </section>
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
        .map(labPoint)
        .filter((p) => p !== undefined)
        .sort((a, b) => a.date.localeCompare(b.date)),
    [items, code],
  );
  const unit = unitWords(points[0]?.unit ?? '');
  const labels = useMemo(() => points.map((p) => p.date.slice(0, 10)), [points]);
  // A value given as a bound ("< 0.5") is no point on the line: it is in the table, as written.
  const series = useMemo(
    () => [
      {
        label: `${LABS[code]} (${unit})`,
        values: points.map((p) => (p.comparator ? null : p.value)),
        texts: points.map(valueText),
        color: '#1d4ed8',
      },
    ],
    [points, code, unit],
  );
  const bounds = points.filter((p) => p.comparator).length;
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
      {bounds > 0 && (
        <p className="muted" data-testid="lab-bounds">
          {bounds === 1 ? 'One value was' : `${bounds} values were`} recorded only as a bound (such
          as {'“< 0.5”'}), not measured exactly: {bounds === 1 ? 'it is' : 'they are'} in the table
          but not on the line.
        </p>
      )}
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
  const emergencies = useEmergencies();
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

/** When the emergencies declared in this session end, by patient id. */
type Emergencies = Map<string, string>;

const SessionEmergencies = createContext<Emergencies | null>(null);

/**
 * Holds the emergencies the signed-in clinician declares, in memory like the token: mounted
 * with the signed-in pages, so that signing out forgets them and the next person to sign in
 * on this tab is not shown someone else's countdown.
 */
export function EmergencySession({ children }: { children: ReactNode }) {
  const [emergencies] = useState<Emergencies>(() => new Map());
  return <SessionEmergencies.Provider value={emergencies}>{children}</SessionEmergencies.Provider>;
}

function useEmergencies(): Emergencies {
  const emergencies = useContext(SessionEmergencies);
  if (!emergencies) throw new Error('A patient chart is shown only inside an EmergencySession.');
  return emergencies;
}

/** The time left of an emergency declared in this session, updated every second. */
export function EmergencyCountdown({ patientId }: { patientId: string }) {
  const emergencies = useEmergencies();
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
