// The patient's records as a timeline: one group per resource type, each in order of the
// records' clinical date (`effectiveAt`), each record with its integrity against the ledger.
import { formatTime } from './common';
import { clinicalDate, HealthRecord, INTEGRITY_WORDS, summaryOf } from './records';

export interface TimelineGroup {
  resourceType: string;
  records: HealthRecord[];
}

/** Records grouped by resource type (types alphabetically), each group oldest first. */
export function timelineOf(records: readonly HealthRecord[]): TimelineGroup[] {
  const groups = new Map<string, HealthRecord[]>();
  for (const r of records) {
    const group = groups.get(r.resourceType) ?? [];
    group.push(r);
    groups.set(r.resourceType, group);
  }
  return [...groups]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([resourceType, group]) => ({
      resourceType,
      records: group.sort(
        (a, b) =>
          Date.parse(clinicalDate(a)) - Date.parse(clinicalDate(b)) || a.id.localeCompare(b.id),
      ),
    }));
}

/**
 * Each type is a disclosure (a native <details>, so Enter and Space open and close it) holding
 * an ordered list: the order is the timeline, for a screen reader as for the eye.
 */
export function RecordTimeline({ records }: { records: readonly HealthRecord[] }) {
  const groups = timelineOf(records);
  return (
    <section aria-labelledby="timeline-h" className="timeline">
      <h3 id="timeline-h">Timeline</h3>
      <p className="muted">By type; in each, oldest first (dates in UTC).</p>
      {groups.map((g) => (
        <details
          key={g.resourceType}
          open
          className="timeline-group"
          data-testid="timeline-group"
          data-type={g.resourceType}
        >
          <summary>
            {g.resourceType} ({g.records.length} {g.records.length === 1 ? 'record' : 'records'})
          </summary>
          <ol className="timeline-list" aria-label={`${g.resourceType}, oldest first`}>
            {g.records.map((r) => (
              <li key={r.id} data-testid="timeline-item" data-record={r.id}>
                <time dateTime={clinicalDate(r)}>{formatTime(clinicalDate(r))}</time>
                <span className="timeline-what">{summaryOf(r.resource)}</span>
                {r.sensitivity === 'RESTRICTED' && <span className="badge">Restricted</span>}
                <span
                  className={`integrity integrity-${r.integrity.toLowerCase()}`}
                  data-testid="timeline-integrity"
                >
                  {INTEGRITY_WORDS[r.integrity]}
                </span>
              </li>
            ))}
          </ol>
        </details>
      ))}
    </section>
  );
}
