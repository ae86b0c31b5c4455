// Caller mistakes, however hostile, are answered as the caller's mistakes: BAD_USER_INPUT
// (HTTP 400 when the request itself is malformed), a message that does not quote the value,
// nothing logged above info, and nothing written.
import { MAX_INPUT_DEPTH } from '../src/common/well-formed';
import { observation } from './helpers/fhir';
import { LEVEL } from './helpers/log-lines';
import { registerSimulatedNode } from './helpers/simulated-node';
import { TestApi } from './helpers/test-api';

/** Every hostile value below carries this, so that an echo of it is easy to see. */
const MARK = 'Jane Doe';
const NUL = `${MARK}\u0000`;

const LIST = `query($p: ID!, $type: String, $cat: String, $first: Int, $after: String) {
  records(patientId: $p, resourceType: $type, category: $cat, first: $first, after: $after) {
    items { id } nextCursor } }`;
const CREATE = `mutation($input: CreateRecordInput!) { createRecord(input: $input) { id } }`;
const CONSENTS = `query($p: ID) { consents(patientId: $p) { id } }`;
const EMERGENCY = `mutation($p: ID!, $r: String!) { declareEmergency(patientId: $p, reason: $r) { id } }`;
const GRANT = `mutation($input: GrantConsentInput!) { grantConsent(input: $input) { id } }`;

interface Answer {
  status: number;
  text: string;
  body: { data?: unknown; errors?: { message: string; extensions: Record<string, unknown> }[] };
}

const cursor = (position: unknown) => Buffer.from(JSON.stringify(position)).toString('base64url');
const SOME_ID = '00000000-0000-4000-8000-000000000000';

/** `levels` arrays, one inside the other, as JSON text (JSON.stringify would overflow). */
const deepArray = (levels: number) => `${'['.repeat(levels)}1${']'.repeat(levels)}`;

/** An extension holding an extension, `levels` deep, as JSON text. */
const deepExtension = (levels: number) =>
  '{"url":"http://example.org/x","extension":['.repeat(levels) +
  '{"url":"http://example.org/x","valueString":"y"}' +
  ']}'.repeat(levels);

describe('input errors', () => {
  let api: TestApi;
  let patient: string;
  let patientId: string;
  let clinician: string;
  let researcher: string;
  let node: string;

  beforeAll(async () => {
    // No background anchoring of the access log while the suite counts what was written.
    api = await TestApi.start({ AUDIT_ANCHOR_INTERVAL_MS: '3600000' }, { captureLogs: true });
    patient = await api.token('alice', 'PATIENT');
    clinician = await api.token('dr-grey', 'CLINICIAN', 'org1');
    researcher = await api.token('res', 'RESEARCHER');
    node = (await registerSimulatedNode(api, await api.token('admin', 'ADMIN'))).token;
    patientId = (
      await api.ok<{ registerPatient: { id: string } }>(
        'mutation { registerPatient { id } }',
        {},
        patient,
      )
    ).registerPatient.id;
    await api.ok(CREATE, { input: { resource: observation() } }, patient);
    await api.grantRead(patient, 'dr-grey');
  });
  afterAll(() => api?.stop());

  /** Rows in every table a call could write to, the ledger's included. */
  async function written(): Promise<Record<string, number>> {
    const { rows } = await api.db.query(`SELECT
      (SELECT count(*) FROM records) AS records,
      (SELECT count(*) FROM consent_grants) AS grants,
      (SELECT count(*) FROM emergency_accesses) AS emergencies,
      (SELECT count(*) FROM access_events) AS access_events,
      (SELECT count(*) FROM ledger_blocks) AS ledger_blocks`);
    return rows[0] as Record<string, number>;
  }

  async function send(path: string, init: RequestInit = {}, token?: string): Promise<Answer> {
    const res = await fetch(`${api.url}${path}`, {
      ...init,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(init.headers as Record<string, string>),
      },
    });
    const text = await res.text();
    let body: Answer['body'] = {};
    try {
      body = JSON.parse(text) as Answer['body'];
    } catch {
      // not JSON: the assertions on `body` say so
    }
    return { status: res.status, text, body };
  }

  /** A GraphQL POST whose body is given as JSON text (so that it can nest past JSON.stringify). */
  const postRaw = (body: string, token = patient, headers: Record<string, string> = {}) =>
    send(
      '/graphql',
      { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body },
      token,
    );
  const post = (query: string, variables: Record<string, unknown> = {}, token = patient) =>
    postRaw(JSON.stringify({ query, variables }), token);
  /** A GraphQL GET (with the preflight header Apollo's CSRF guard asks of a GET). */
  const get = (query: string) =>
    send(
      `/graphql?query=${encodeURIComponent(query)}`,
      { headers: { 'apollo-require-preflight': 'true' } },
      patient,
    );

  /**
   * Runs one hostile call and checks what every caller mistake must be: the status, the code,
   * no echo of the value, nothing above info in the log, nothing written.
   */
  async function refused(
    call: () => Promise<Answer>,
    {
      status,
      field,
      message,
      requestLogged = true,
    }: {
      status: number;
      field?: string;
      message?: RegExp;
      /** False where the body parser or router answers before the request logger runs. */
      requestLogged?: boolean;
    },
    echoes: string[] = [MARK],
  ): Promise<Answer> {
    const before = await written();
    const mark = api.logs!.all.length;
    const answer = await call();
    expect(answer.status).toBe(status);
    expect(answer.body.errors?.[0]?.extensions.code).toBe('BAD_USER_INPUT');
    if (field) expect(answer.body.errors?.[0]?.extensions.field).toBe(field);
    if (message) expect(answer.body.errors?.[0]?.message).toMatch(message);
    for (const echo of echoes) expect(answer.text).not.toContain(echo);
    const logged = requestLogged
      ? await api.logs!.requestsFinished(mark)
      : api.logs!.all.slice(mark);
    expect(logged.filter((e) => e.level > LEVEL.info)).toEqual([]);
    expect(await written()).toEqual(before);
    return answer;
  }

  /** A clinician's treatment READ grant with these terms changed, as the patient posts it. */
  const grantWith = (terms: Record<string, unknown>) =>
    post(GRANT, {
      input: {
        granteeType: 'CLINICIAN',
        granteeId: 'dr-house',
        purpose: 'TREATMENT',
        actions: ['READ'],
        ...terms,
      },
    });

  describe('text others read as its writer wrote it', () => {
    const rows = async () =>
      (
        await api.db.query(
          'SELECT (SELECT count(*) FROM patients)::int AS patients, (SELECT count(*) FROM studies)::int AS studies',
        )
      ).rows[0];

    it('refuses a display name that reads in another order (a bidi override) or spans lines, registering no one', async () => {
      const newcomer = await api.token('bidi-newcomer', 'PATIENT');
      const before = await rows();
      for (const [name, message] of [
        ['\u202Eevil', /bidirectional control characters/],
        ['Ann\u2066Smith', /bidirectional control characters/],
        ['Ann\nSmith', /one line of text/],
        ['Ann\u001b[31mSmith', /one line of text/],
      ] as const) {
        await refused(
          () =>
            post(
              'mutation($n: String) { registerPatient(displayName: $n) { id } }',
              { n: name },
              newcomer,
            ),
          { status: 200, field: 'displayName', message },
          [],
        );
      }
      expect(await rows()).toEqual(before);
    });

    it('refuses a study title in the catalogue patients consent from that reads otherwise, creating none', async () => {
      const researcher = await api.token('bidi-researcher', 'RESEARCHER');
      const before = await rows();
      await refused(
        () =>
          post(
            `mutation($t: String!) { createStudy(input: { title: $t, features: ["2345-7"], label: "44054006", minNodes: 1 }) { id } }`,
            { t: 'Diabetes \u202Ekcir' },
            researcher,
          ),
        { status: 200, field: 'input.title', message: /bidirectional control characters/ },
        [],
      );
      expect(await rows()).toEqual(before);
    });
  });

  describe('text PostgreSQL cannot hold', () => {
    it('refuses a NUL in records(resourceType)', () =>
      refused(() => post(LIST, { p: patientId, type: NUL }), {
        status: 200,
        field: 'resourceType',
        message: /NUL/,
      }));

    it('refuses a number no double holds (1e400), as a literal or a variable, writing nothing', async () => {
      const observation = (value: string) =>
        `{ resourceType: "Observation", status: "final", code: { text: "x" }, valueQuantity: { value: ${value} } }`;
      await refused(
        () =>
          post(`mutation { createRecord(input: { resource: ${observation('1e400')} }) { id } }`),
        { status: 200, field: 'input.resource.valueQuantity.value', message: /finite number/ },
      );
      await refused(
        () =>
          postRaw(
            `{"query":${JSON.stringify(CREATE)},"variables":{"input":{"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":-1e999}}}}}`,
            patient,
          ),
        { status: 200, field: 'input.resource.valueQuantity.value', message: /finite number/ },
      );
    });

    it('refuses a NUL in records(category)', () =>
      refused(() => post(LIST, { p: patientId, cat: NUL }), { status: 200, field: 'category' }));

    it("refuses a NUL in a clinician's records(patientId)", () =>
      refused(() => post(LIST, { p: NUL }, clinician), { status: 200, field: 'patientId' }));

    it('refuses a NUL in consents(patientId)', () =>
      refused(() => post(CONSENTS, { p: NUL }, clinician), { status: 200, field: 'patientId' }));

    it('refuses a NUL in a declared emergency’s reason, declaring nothing', () =>
      refused(
        () => post(EMERGENCY, { p: patientId, r: `unconscious on arrival, ${NUL}` }, clinician),
        { status: 200, field: 'reason' },
      ));

    it('refuses an unpaired surrogate, which is not Unicode', () =>
      refused(() => post(LIST, { p: patientId, type: `${MARK}\ud800` }), {
        status: 200,
        field: 'resourceType',
        message: /surrogate/,
      }));

    it('refuses a NUL written into the document as a literal', () =>
      refused(
        () =>
          postRaw(
            JSON.stringify({
              query: `{ records(patientId: "${patientId}", resourceType: "${MARK}\\u0000") { nextCursor } }`,
            }),
          ),
        { status: 200, field: 'resourceType' },
      ));

    it('refuses a NUL in a string inside a FHIR resource, naming its path', () =>
      refused(
        () =>
          post(CREATE, {
            input: { resource: { ...observation(), code: { ...observation().code, text: NUL } } },
          }),
        { status: 200, field: 'input.resource.code.text' },
      ));

    it('refuses a NUL in a property name inside a FHIR resource', () =>
      refused(() => post(CREATE, { input: { resource: { ...observation(), [NUL]: 'x' } } }), {
        status: 200,
        field: 'input.resource',
      }));

    it('refuses a date PostgreSQL cannot store, granting nothing', () =>
      refused(
        () => grantWith({ validFrom: '-010000-01-01T00:00:00Z' }),
        { status: 200, field: 'input.validFrom' },
        ['-010000'],
      ));

    it.each([
      [
        'without a time zone (which machines would read in zones of their own)',
        '2030-01-01T00:00:00',
      ],
      ['on a day the calendar has not', '2030-02-30T00:00:00Z'],
      ['at a leap second', '2030-06-30T23:59:60Z'],
    ])('refuses a date-time %s, granting nothing', (_name, validUntil) =>
      refused(() => grantWith({ validUntil }), { status: 200, field: 'input.validUntil' }),
    );

    it('refuses a search date the calendar has not', () =>
      refused(
        () =>
          post(
            `query($p: ID!, $s: DateTime) { records(patientId: $p, since: $s) { nextCursor } }`,
            {
              p: patientId,
              s: '2011-02-30T00:00:00Z',
            },
          ),
        { status: 200, field: 'since' },
      ));

    it.each([
      ['a resource type FHIR has not', { resourceTypes: ['Foo'] }, 'input.resourceTypes'],
      [
        'a resource type in the wrong case',
        { resourceTypes: ['observation'] },
        'input.resourceTypes',
      ],
      [
        'a type that holds no patient data',
        { resourceTypes: ['Organization'] },
        'input.resourceTypes',
      ],
      [
        'READ for a study',
        { granteeType: 'STUDY', granteeId: 'study-1', purpose: 'TREATMENT', actions: ['READ'] },
        'input.actions',
      ],
    ])('refuses a grant with %s, which could match nothing', (_name, terms, field) =>
      refused(() => grantWith(terms), { status: 200, field }, []),
    );

    it.each([
      ['a zero-width space', 'dr-house\u200b'],
      ['a zero-width joiner', 'dr\u200dhouse'],
      ['a byte-order mark', '\ufeffdr-house'],
      ['a no-break space', 'dr\u00a0house'],
      ['a paragraph separator', 'dr-house\u2029'],
      ['a trailing space', 'dr-house '],
    ])(
      'refuses a grantee id holding %s, which would read as another id, granting nothing',
      (_name, granteeId) =>
        refused(
          () => grantWith({ granteeId }),
          { status: 200, field: 'input.granteeId', message: /invisible characters/ },
          [],
        ),
    );

    it.each([
      ['an id no study has', 'nope'],
      ['a UUID of no study', SOME_ID],
    ])('refuses a STUDY grant to %s, granting nothing', (_name, granteeId) =>
      refused(
        () =>
          grantWith({ granteeType: 'STUDY', granteeId, purpose: 'RESEARCH', actions: ['TRAIN'] }),
        { status: 200, field: 'input.granteeId', message: /names no study/ },
        [],
      ),
    );

    it('refuses a date-time that is not one, granting nothing', () =>
      refused(() => grantWith({ validUntil: MARK }), { status: 200, field: 'input.validUntil' }));
  });

  describe('ids that cannot exist', () => {
    const KEYS = `query($p: ID!) { patientKeys(patientId: $p) { id } }`;

    // As record(id), recordHistory and the REST run ids: an id this server could never have minted is
    // answered as one it does not hold, so the shape of an id tells the caller nothing.
    it.each([
      ['not a UUID', MARK],
      ['empty', ''],
      ['a UUID with spaces around it', ` ${SOME_ID} `],
      ['a UUID of no patient', SOME_ID],
    ])('answers patientKeys(patientId) %s as not found, not quoting it', async (_name, p) => {
      const answer = await post(KEYS, { p });
      expect(answer.status).toBe(200);
      expect(answer.body.errors?.map((e) => e.extensions.code)).toEqual(['NOT_FOUND']);
      expect(answer.text).not.toContain(MARK);
    });

    it('refuses a NUL in patientKeys(patientId), like every other text', () =>
      refused(() => post(KEYS, { p: NUL }), { status: 200, field: 'patientId' }));
  });

  describe('pages', () => {
    it.each([
      ['the largest safe integer', 9007199254740991],
      ['−8.7e15', -8.7e15],
    ])('refuses a cursor holding %s as one this API did not issue', (_name, ms) =>
      refused(
        () => post(LIST, { p: patientId, after: cursor([ms, SOME_ID]) }),
        { status: 200, field: 'after', message: /not a cursor this API issued/ },
        [String(ms)],
      ),
    );

    it.each([0, -1, 101])('refuses first = %d', (first) =>
      refused(() => post(LIST, { p: patientId, first }), { status: 200, field: 'first' }),
    );

    it('refuses first beyond a 32-bit integer as a request error', () =>
      refused(() => post(LIST, { p: patientId, first: 2 ** 40 }), { status: 400 }, [
        String(2 ** 40),
      ]));
  });

  describe('nesting', () => {
    const create = (resourceJson: string) =>
      postRaw(
        `{"query":${JSON.stringify(CREATE)},"variables":{"input":{"resource":${resourceJson}}}}`,
      );
    const observationWith = (property: string, json: string) =>
      `${JSON.stringify(observation()).slice(0, -1)},"${property}":${json}}`;

    it('refuses a 20,000-deep array in a resource, naming the limit', () =>
      refused(() => create(observationWith('note', deepArray(20_000))), {
        status: 200,
        message: new RegExp(`more than ${MAX_INPUT_DEPTH} levels`),
      }));

    it('refuses a 3,000-deep extension in a resource', async () => {
      const answer = await refused(
        () => create(observationWith('extension', `[${deepExtension(3_000)}]`)),
        { status: 200 },
      );
      expect(answer.body.errors?.[0]?.extensions.field).toMatch(
        /^input\.resource\.extension\[0\]\.extension\[0\]/,
      );
    });

    it('accepts a resource nested well within the limit', async () => {
      const answer = await create(observationWith('extension', `[${deepExtension(20)}]`));
      expect(answer.body.errors).toBeUndefined();
    });

    it('refuses a deeply nested literal in the document before parsing it', () =>
      refused(
        () =>
          postRaw(
            JSON.stringify({
              query: `mutation { createRecord(input: { resource: ${deepArray(2_400)} }) { id } }`,
            }),
          ),
        { status: 400, message: /nests brackets more than \d+ levels/ },
      ));
  });

  describe('malformed GraphQL requests (GraphQL over HTTP: 4xx)', () => {
    it('answers a syntax error with 400', () =>
      refused(() => post(`{ me { id `), { status: 400, message: /^Syntax Error/ }));

    it('answers a syntax error without quoting the string it stumbled on', () =>
      refused(() => post(`{ me "${MARK}" }`), { status: 400, message: /^Syntax Error/ }));

    it('answers a subscription (this API has none) with 400, unauthenticated or not', async () => {
      await refused(() => post('subscription { me { id } }'), {
        status: 400,
        message: /no subscription operations/,
      });
      const anonymous = await fetch(`${api.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: 'subscription { me { id } }' }),
      });
      expect(anonymous.status).toBe(400);
      const body = (await anonymous.json()) as { errors: { extensions: { code: string } }[] };
      expect(body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    });

    it('answers a whole-profile export asked for twice with 400, through aliases or fragments', async () => {
      await refused(() => post('{ a: exportMyData b: exportMyData }'), {
        status: 400,
        message: /exportMyData may be asked for once per operation, not 2 times/,
      });
      await refused(() => post('{ ...F a: exportMyData } fragment F on Query { exportMyData }'), {
        status: 400,
        message: /exportMyData may be asked for once/,
      });
    });

    it('answers a GET with a syntax error with 400', () =>
      refused(() => get('{ me { id '), { status: 400 }));

    it('answers the token limit with 400', () =>
      refused(() => post(`{ me { ${'id '.repeat(6000)} } }`), {
        status: 400,
        message: /more than 5000 tokens/,
      }));

    it('answers the depth limit with 400', () => {
      let selection = 'name';
      for (let i = 0; i < 10; i++) selection = `ofType { ${selection} }`;
      return refused(() => post(`{ __type(name: "Query") { fields { type { ${selection} } } } }`), {
        status: 400,
        message: /depth/i,
      });
    });

    it('answers the alias limit with 400', () =>
      refused(
        () => post(`{ ${Array.from({ length: 16 }, (_, i) => `a${i}: me { id }`).join(' ')} }`),
        { status: 400, message: /alias/i },
      ));

    it('answers the cost limit with 400', () =>
      refused(() => post(`{ me { ${'id '.repeat(4000)} } }`), { status: 400, message: /cost/i }));

    it('answers the directives limit with 400', async () => {
      const answer = await refused(
        () => post(`{ me ${'@include(if: true) '.repeat(21)} { id } }`),
        { status: 400 },
      );
      expect(answer.body.errors?.some((e) => /directives/i.test(e.message))).toBe(true);
    });

    it('answers a variable of the wrong type with 400, not quoting it', () =>
      refused(() => post(LIST, { p: patientId, first: MARK }), {
        status: 400,
        message: /^Variable "\$first" got an invalid value; Expected type "Int"\.$/,
      }));

    it('answers a literal of the wrong type in the document with 400, not quoting it', () =>
      refused(
        () => post(`{ records(patientId: "${patientId}", first: "${MARK}") { nextCursor } }`),
        {
          status: 400,
          message: /^Expected value of type "Int"\.$/,
        },
      ));

    it('answers an unknown enum literal in the document with 400, not quoting it', () =>
      refused(
        () =>
          post(`mutation { createRecord(input: { resource: {}, sensitivity: Jane_Doe }) { id } }`),
        { status: 400, message: /^Expected value of type "Sensitivity"\.$/ },
        ['Jane_Doe'],
      ));

    it('answers an invalid enum value in an input object with 400, naming the path', () =>
      refused(
        () =>
          post(GRANT, {
            input: { granteeType: 'CLINICIAN', granteeId: 'x', purpose: MARK, actions: ['READ'] },
          }),
        { status: 400, message: /at "input\.purpose"/ },
      ));

    it('answers an unknown operation name with 400, not quoting it', () =>
      refused(() => postRaw(JSON.stringify({ query: '{ me { id } }', operationName: MARK })), {
        status: 400,
      }));

    it('answers a request without a query with 400', () =>
      refused(() => postRaw(JSON.stringify({ variables: {} })), { status: 400 }));

    it('answers a mutation sent with GET with 405', () =>
      refused(() => get('mutation { registerPatient { id } }'), { status: 405 }));

    it('answers a text/plain body (a possible CSRF) with 400', () =>
      refused(
        () =>
          send(
            '/graphql',
            {
              method: 'POST',
              headers: { 'content-type': 'text/plain' },
              body: JSON.stringify({ query: '{ me { id } }' }),
            },
            patient,
          ),
        { status: 400 },
      ));

    it('answers a body of another content type with 400', () =>
      refused(
        () =>
          send(
            '/graphql',
            {
              method: 'POST',
              headers: { 'content-type': 'application/xml', 'apollo-require-preflight': 'true' },
              body: `<query>${MARK}</query>`,
            },
            patient,
          ),
        { status: 400 },
      ));

    it('answers a batch (batching is off) with 400', () =>
      refused(() => postRaw(JSON.stringify([{ query: '{ me { id } }' }])), { status: 400 }));

    it('answers a body that is not JSON with 400', () =>
      refused(() => postRaw(`{"query": "${MARK}`), { status: 400, requestLogged: false }));

    it('answers a body over the limit with 413', () =>
      refused(
        () =>
          postRaw(
            JSON.stringify({ query: '{ me { id } }', variables: { x: 'x'.repeat(1_100_000) } }),
          ),
        { status: 413, requestLogged: false },
      ));
  });

  describe('REST routes', () => {
    it.each(['99999999999999999999', '9999999999', '0', '-1', '1.5'])(
      'refuses round %s of a model',
      (round) =>
        refused(
          () => send(`/fl/runs/${SOME_ID}/rounds/${round}/model`, {}, researcher),
          { status: 400, field: 'round' },
          [],
        ),
    );

    it('refuses a huge round when an update is posted', () =>
      refused(
        () =>
          send(
            `/fl/runs/${SOME_ID}/rounds/9999999999/updates`,
            {
              method: 'POST',
              headers: { 'content-type': 'application/octet-stream', 'x-custodia-manifest': 'x' },
              body: new Uint8Array(8),
            },
            node,
          ),
        { status: 400, field: 'round' },
        [],
      ));

    it('refuses a NUL in a run id', () =>
      refused(() => send(`/fl/runs/Jane%20Doe%00/model`, {}, researcher), {
        status: 400,
        field: 'runId',
      }));

    it('answers a run id that is not a UUID as not found', async () => {
      const answer = await send(`/fl/runs/not-a-run/model`, {}, researcher);
      expect(answer.status).toBe(404);
      expect(answer.body.errors?.[0]?.extensions.code).toBe('NOT_FOUND');
    });

    it.each([
      ['no body', {}],
      ['a JSON body', { headers: { 'content-type': 'application/json' }, body: '{}' }],
    ])('refuses an update with %s', (_name, init: RequestInit) =>
      refused(
        () => send(`/fl/runs/${SOME_ID}/rounds/1/updates`, { method: 'POST', ...init }, node),
        { status: 400 },
      ),
    );

    it('refuses a path that does not decode', () =>
      refused(
        () => send(`/fl/runs/%E0%A4%A/model`, {}, researcher),
        { status: 400, requestLogged: false },
        ['%E0'],
      ));

    it('answers an unknown route as not found, in the contract’s shape, not quoting it', async () => {
      const answer = await send(`/no/${encodeURIComponent(NUL)}`);
      expect(answer.status).toBe(404);
      expect(answer.body.errors?.[0]?.extensions.code).toBe('NOT_FOUND');
      expect(answer.text).not.toContain('Jane');
    });

    it('answers health, metrics and keys whatever their query string', async () => {
      for (const path of ['/health', '/metrics', '/.well-known/jwks.json']) {
        expect((await send(`${path}?x=${encodeURIComponent(NUL)}&n=1e400`)).status).toBe(200);
      }
    });
  });
});
