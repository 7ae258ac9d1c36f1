import { type FormEvent, useState } from "react";
import { type Session, signIn } from "../api.js";

/** The bearer token form: checked with the service before anything else is shown. */
export function SignIn({ notice, onSignedIn }: { notice?: string; onSignedIn: (s: Session) => void }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      onSignedIn(await signIn(token.trim()));
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="signin">
      <h1>queue-service</h1>
      <form onSubmit={submit} aria-describedby="signin-help">
        <label htmlFor="token">Bearer token</label>
        <input id="token" type="password" autoComplete="off" value={token} onChange={(e) => setToken(e.target.value)} required />
        <button type="submit" disabled={busy || !token.trim()}>
          {busy ? "Checking…" : "Sign in"}
        </button>
        <p id="signin-help" className="muted">
          A token from <code>AUTH_TOKENS</code>, or <code>data/admin-token</code> on a development machine. It is kept in this tab only.
        </p>
        {notice && !error && <p role="status">{notice}</p>}
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}
