// The patient's signing key: make one in this browser and register it on the ledger, add this
// browser when their keys were made elsewhere (signed by one of those, e.g. with `npx custodia
// sign`), remove a lost device's key, and accept only grants they signed. The key itself and
// the signing are in signing.ts.
import { FormEvent, useRef, useState } from 'react';
import { ApiError, gql } from './api';
import { ErrorNotice, formatTime, useAction, useLoad } from './common';
import {
  DeviceKey,
  forgetDeviceKey,
  loadDeviceKey,
  makeDeviceKey,
  publicPart,
  saveDeviceKey,
  signatureHelp,
  signIfHeld,
  thumbprintOf,
} from './signing';

interface PatientKey {
  id: string;
  publicKeyJwk: Record<string, unknown>;
  createdAt: string;
}

/** A grant the patient made, as far as turning signed-only on concerns it. */
interface OwnGrant {
  id: string;
  grantee: { type: string; id: string };
  status: string;
  patientSigned: boolean;
}

interface KeyState {
  keys: PatientKey[];
  requireSigned: boolean;
  /** The key this browser holds for the patient, registered or not. */
  local: DeviceKey | null;
  /** The patient's grants in force that they did not sign: signed-only suspends them. */
  unsigned: OwnGrant[];
}

async function loadKeys(patientId: string): Promise<KeyState> {
  const [data, local] = await Promise.all([
    gql<{
      patientKeys: PatientKey[];
      patient: { requireSignedConsent: boolean } | null;
      consents: OwnGrant[];
    }>(
      `query($p: ID!) { patientKeys(patientId: $p) { id publicKeyJwk createdAt }
         patient(id: $p) { requireSignedConsent }
         consents(status: ACTIVE) { id grantee { type id } status patientSigned } }`,
      { p: patientId },
    ),
    loadDeviceKey(patientId),
  ]);
  return {
    keys: data.patientKeys,
    requireSigned: data.patient?.requireSignedConsent ?? false,
    local,
    unsigned: data.consents.filter((g) => !g.patientSigned),
  };
}

/** A grant's grantee in words, for the list of what signed-only would suspend. */
function granteeWords(g: OwnGrant): string {
  const kind = { CLINICIAN: 'clinician', ORGANIZATION: 'organisation', STUDY: 'study' }[
    g.grantee.type
  ];
  return `${kind ?? g.grantee.type.toLowerCase()} ${g.grantee.id}`;
}

const KEY_CHANGE = 'custodia.patient-key/v1';

export function SigningKey({ patientId }: { patientId: string }) {
  const loaded = useLoad(() => loadKeys(patientId), [patientId]);
  const { busy, error, run } = useAction();
  const [status, setStatus] = useState('');
  /** A key made here that waits for a signature by one of the patient's other keys. */
  const [pending, setPending] = useState<{ key: DeviceKey; payload: string } | null>(null);
  const [pasted, setPasted] = useState('');
  const [otherKey, setOtherKey] = useState('');
  /** Turning signed-only on, waiting for the patient to confirm the grants it suspends. */
  const [confirming, setConfirming] = useState(false);
  const heading = useRef<HTMLHeadingElement>(null);

  const state = loaded.data;
  const registered = state?.local ? state.keys.some((k) => k.id === state.local!.kid) : false;

  const act = (what: () => Promise<string>) =>
    run(async () => {
      setStatus('');
      let said: string;
      try {
        said = await what();
      } catch (e) {
        // What failed may have changed elsewhere (a key added or removed in another browser):
        // what the panel offers next is what holds now.
        await loaded.reload();
        throw e;
      }
      await loaded.reload();
      setStatus(said);
    });

  /** Back to the panel when the form that held the focus goes. */
  const refocus = () => setTimeout(() => heading.current?.focus(), 0);

  /** The patient's first key: registering it needs no signature. */
  const makeFirst = () =>
    act(async () => {
      const key = await makeDeviceKey();
      // Kept before it is registered: a registered key this browser could not keep would be
      // one the patient can never sign with, nor add another key beside.
      await saveDeviceKey(patientId, key).catch(() => {
        throw new ApiError(
          'INTERNAL',
          'This browser cannot keep a key (is it a private window?), so none was made.',
        );
      });
      try {
        await gql(`mutation($k: JSON!) { registerPatientKey(publicKeyJwk: $k) { id } }`, {
          k: key.publicJwk,
        });
      } catch (e) {
        await forgetDeviceKey(patientId).catch(() => undefined);
        throw e;
      }
      return 'This browser now signs your grants with your key, registered on the ledger.';
    });

  /** A key for this browser beside keys made elsewhere: the payload another key must sign. */
  const startAdding = () =>
    act(async () => {
      const key = await makeDeviceKey();
      const { keyPayload } = await gql<{ keyPayload: string }>(
        `query($k: JSON!) { keyPayload(publicKeyJwk: $k, remove: false) }`,
        { k: key.publicJwk },
      );
      setPending({ key, payload: keyPayload });
      setPasted('');
      return 'Sign the text below with one of your keys, then paste the signature.';
    });

  const finishAdding = (e: FormEvent) => {
    e.preventDefault();
    if (!pending) return;
    return act(async () => {
      await gql(
        `mutation($k: JSON!, $s: String) { registerPatientKey(publicKeyJwk: $k, signature: $s) { id } }`,
        {
          k: pending.key.publicJwk,
          s: pasted.trim(),
        },
      );
      await saveDeviceKey(patientId, pending.key);
      setPending(null);
      refocus();
      return 'This browser’s key is registered: it now signs your grants.';
    });
  };

  const remove = (k: PatientKey) =>
    act(async () => {
      const signature = await signIfHeld(
        patientId,
        () =>
          gql<{ keyPayload: string }>(
            `query($k: JSON!) { keyPayload(publicKeyJwk: $k, remove: true) }`,
            { k: k.publicKeyJwk },
          ).then((d) => d.keyPayload),
        { type: KEY_CHANGE, patientId, keyId: k.id, remove: true },
        true,
      );
      await gql(
        `mutation($k: JSON!, $s: String!) { removePatientKey(publicKeyJwk: $k, signature: $s) { id } }`,
        {
          k: k.publicKeyJwk,
          s: signature ?? '',
        },
      );
      return 'The key is removed: it can no longer sign for you.';
    });

  /** Another key (a backup made with `custodia keygen`), its addition signed here. */
  const addOther = (e: FormEvent) => {
    e.preventDefault();
    return act(async () => {
      let jwk: unknown;
      try {
        jwk = JSON.parse(otherKey);
      } catch {
        jwk = null;
      }
      // Only the public part is ever sent: a key file pasted whole holds the secret part too.
      const secret = typeof jwk === 'object' && jwk !== null && 'd' in jwk;
      if (secret) setOtherKey('');
      const key = publicPart(jwk);
      if (!key) {
        throw new ApiError(
          'BAD_USER_INPUT',
          'That is not a public key. Paste what `custodia keygen` printed when it made the key: a line that starts with {"kty":"EC".',
        );
      }
      const { keyPayload } = await gql<{ keyPayload: string }>(
        `query($k: JSON!) { keyPayload(publicKeyJwk: $k, remove: false) }`,
        { k: key },
      );
      // The payload must name the key pasted: its thumbprint, computed here.
      const keyId = await thumbprintOf(key);
      const signature = await signIfHeld(
        patientId,
        async () => keyPayload,
        { type: KEY_CHANGE, patientId, keyId, remove: false },
        true,
      );
      await gql(
        `mutation($k: JSON!, $s: String) { registerPatientKey(publicKeyJwk: $k, signature: $s) { id } }`,
        { k: key, s: signature },
      );
      setOtherKey('');
      return secret
        ? 'The key is registered: it can sign for you too. You pasted the key file itself, which holds its secret part: only the public part was used, and nothing secret left this page. Keep that file private.'
        : 'The key is registered: it can sign for you too.';
    });
  };

  const forget = () =>
    act(async () => {
      await forgetDeviceKey(patientId);
      return 'This browser no longer holds a key for you.';
    });

  const setRequired = (require: boolean) =>
    act(async () => {
      setConfirming(false);
      const signature = require
        ? null
        : await signIfHeld(
            patientId,
            () =>
              gql<{ settingPayload: string }>(
                'query { settingPayload(requireSignedConsent: false) }',
              ).then((d) => d.settingPayload),
            { type: 'custodia.signed-consent/v1', patientId, requireSignedConsent: false },
            true,
          );
      await gql(
        `mutation($r: Boolean!, $s: String) { requireSignedConsent(require: $r, signature: $s) { id } }`,
        { r: require, s: signature },
      );
      return require
        ? 'Only grants you signed count now; unsigned ones are suspended until you turn this off.'
        : 'Grants your organisation wrote for you count again.';
    });

  /** On at once when nothing would stop counting; else first say what would. */
  const toggleRequired = () => {
    if (!state) return;
    if (state.requireSigned) return void setRequired(false);
    if (state.unsigned.length > 0) return setConfirming(true);
    return void setRequired(true);
  };

  const copyPayload = () => {
    if (pending) void navigator.clipboard?.writeText(pending.payload).catch(() => undefined);
  };

  return (
    <section aria-labelledby="signing-h" className="panel">
      <h2 id="signing-h" ref={heading} tabIndex={-1}>
        Your signing key
      </h2>
      <p>
        With a signing key, the grants you make carry your own signature, which the ledger checks on
        every hospital’s computers: no one at a hospital can make a grant in your name. The key
        stays in this browser and cannot be copied out of it. If this browser’s data is cleared, its
        key is gone, and a new key can only be added with a signature from a key you still have:
        keep a second key somewhere safe (Custodia’s command-line tool makes one with{' '}
        <code>custodia keygen</code>).
      </p>
      <ErrorNotice error={loaded.error ?? error} help={signatureHelp(error, 'here')} />
      {state && (
        <>
          <p data-testid="signing-state" data-registered={String(registered)}>
            {registered && (
              <>
                This browser signs for you with key <code>{state.local!.kid.slice(0, 12)}</code>.
              </>
            )}
            {!registered && state.local && (
              <>
                This browser holds key <code>{state.local.kid.slice(0, 12)}</code>, which is no
                longer registered (it was removed): it cannot sign for you.{' '}
                <button type="button" aria-disabled={busy} onClick={() => void forget()}>
                  Forget it
                </button>
              </>
            )}
            {!state.local && state.keys.length === 0 && 'You have no signing key yet.'}
            {!state.local &&
              state.keys.length > 0 &&
              'Your keys were made elsewhere; this browser holds none of them. Adding one here needs a signature by a key you made with the command-line tool.'}
          </p>
          {!state.local && state.keys.length === 0 && (
            <button type="button" aria-disabled={busy} onClick={() => void makeFirst()}>
              Make a signing key in this browser
            </button>
          )}
          {!registered && state.keys.length > 0 && !pending && (
            <button type="button" aria-disabled={busy} onClick={() => void startAdding()}>
              Add a key for this browser
            </button>
          )}
          {pending && (
            <form onSubmit={(e) => void finishAdding(e)} className="panel">
              <p id="add-key-how">
                Sign the text below with one of your registered keys (with the command-line tool:
                save it to a file and run{' '}
                <code>custodia sign --key my-key.json &lt; that-file</code>
                ), then paste the signature it prints.
              </p>
              <pre data-testid="key-payload" className="payload">
                {pending.payload}
              </pre>
              <button type="button" onClick={copyPayload}>
                Copy the text
              </button>
              <label>
                Signature
                <input
                  required
                  autoFocus
                  value={pasted}
                  onChange={(e) => setPasted(e.target.value)}
                  aria-describedby="add-key-how"
                  autoComplete="off"
                  spellCheck={false}
                />
              </label>
              <div className="row">
                <button type="submit" aria-disabled={busy}>
                  Register this browser’s key
                </button>
                <button
                  type="button"
                  onClick={() => {
                    setPending(null);
                    refocus();
                  }}
                >
                  Cancel
                </button>
              </div>
            </form>
          )}
          {state.keys.length > 0 && (
            <ul className="cards" aria-label="Your registered keys">
              {state.keys.map((k) => (
                <li key={k.id} className="card" data-testid="patient-key">
                  <p>
                    Key <code>{k.id.slice(0, 12)}</code>, registered {formatTime(k.createdAt)} UTC
                    {k.id === state.local?.kid ? ' · this browser' : ''}
                  </p>
                  {registered && k.id !== state.local?.kid && (
                    <button
                      type="button"
                      className="danger"
                      aria-disabled={busy}
                      onClick={() => void remove(k)}
                    >
                      Remove<span className="visually-hidden"> key {k.id.slice(0, 12)}</span>
                    </button>
                  )}
                </li>
              ))}
            </ul>
          )}
          {registered && (
            <form onSubmit={(e) => void addOther(e)} className="row">
              <label>
                Add a backup key: paste the public key the command-line tool printed when it made it
                <input
                  required
                  value={otherKey}
                  onChange={(e) => setOtherKey(e.target.value)}
                  autoComplete="off"
                  spellCheck={false}
                  placeholder='{"kty":"EC","crv":"P-256","x":"…","y":"…"}'
                />
              </label>
              <button type="submit" aria-disabled={busy}>
                Add this key
              </button>
            </form>
          )}
          {state.keys.length > 0 && (
            <>
              <label className="inline">
                <input
                  type="checkbox"
                  role="switch"
                  checked={state.requireSigned}
                  aria-describedby="signed-only-why"
                  aria-disabled={busy}
                  onChange={toggleRequired}
                />
                Accept only grants I signed
              </label>
              <p id="signed-only-why" className="muted">
                Once on, the ledger refuses any grant in your name that you did not sign, and every
                unsigned grant stops counting, including ones you made here before you had a key.
                Turning it off, and turning emergency access or AI decisions back on, then need your
                signature. While it is off, your hospital may still write grants for you.
              </p>
              {confirming && (
                <div role="alert" className="panel" data-testid="signed-only-confirm">
                  <p>
                    {state.unsigned.length === 1
                      ? 'This grant is not signed, and would stop counting:'
                      : `These ${state.unsigned.length} grants are not signed, and would stop counting:`}
                  </p>
                  <ul>
                    {state.unsigned.map((g) => (
                      <li key={g.id}>{granteeWords(g)}</li>
                    ))}
                  </ul>
                  <p>
                    They come back if you turn this off again. To keep one, grant it again from this
                    browser (signed) and revoke the old one.
                  </p>
                  <div className="row">
                    <button
                      type="button"
                      aria-disabled={busy}
                      onClick={() => void setRequired(true)}
                    >
                      Accept only signed grants
                    </button>
                    <button
                      type="button"
                      onClick={() => {
                        setConfirming(false);
                        refocus();
                      }}
                    >
                      Cancel
                    </button>
                  </div>
                </div>
              )}
            </>
          )}
        </>
      )}
      <p aria-live="polite" className="status" data-testid="signing-status">
        {status}
      </p>
    </section>
  );
}
