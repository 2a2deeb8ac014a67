import { useState } from "preact/hooks";
import { ApiError, auth, type User } from "../api/rest";
import { navigate, onLinkClick } from "./router";

interface Props {
  mode: "login" | "register";
  onSignedIn(user: User): void;
}

export function AuthForm({ mode, onSignedIn }: Props) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [fields, setFields] = useState<Record<string, string[]>>({});
  const registering = mode === "register";
  // Set once registration asked for the emailed link: the address it went to.
  const [sent, setSent] = useState<string | null>(null);
  // The emailed link lands on /login?verified=1 (or 0 when the link was invalid or expired).
  const verified = new URLSearchParams(window.location.search).get("verified");

  async function submit(event: Event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setFields({});
    try {
      if (registering) {
        const registration = await auth.register(email, password);
        if (registration.email_verification_required) {
          setSent(registration.email);
          return;
        }
      }
      const user = await auth.login(email, password);
      onSignedIn(user?.email ? user : await auth.me());
      navigate({ name: "chat", conversationId: null }, { replace: true });
    } catch (caught) {
      if (caught instanceof ApiError) {
        setFields(caught.fields);
        const retry = caught.retryAfter ? ` Try again in ${caught.retryAfter} s.` : "";
        setError(Object.keys(caught.fields).length && caught.code === "bad_request" ? "Please fix the fields below." : caught.message + retry);
      } else {
        setError("Something went wrong. Please try again.");
      }
    } finally {
      setBusy(false);
    }
  }

  const fieldError = (name: string) =>
    fields[name]?.length ? (
      <p class="field-error" id={`${name}-error`}>
        {fields[name].join(" ")}
      </p>
    ) : null;

  return (
    <main class="auth">
      <form class="auth-card" onSubmit={submit} noValidate aria-labelledby="auth-title">
        <h1 id="auth-title">{registering ? "Create your account" : "Log in"}</h1>
        {sent && (
          <p class="notice" role="status" data-testid="verification-sent">
            We sent a link to {sent}. Open it to confirm the address, then log in. (If the address
            already has an account, the email says so instead.)
          </p>
        )}
        {!registering && verified && (
          <p class="notice" role="status" data-testid="verification-result">
            {verified === "1"
              ? "Your address is confirmed. Log in to start."
              : "That link is invalid or has expired. Register again to get a new one."}
          </p>
        )}
        {error && (
          <p class="form-error" role="alert">
            {error}
          </p>
        )}
        {fields.__all__ && fieldError("__all__")}
        <label for="email">Email</label>
        <input
          id="email"
          data-testid="email"
          type="email"
          autocomplete="email"
          required
          value={email}
          aria-invalid={fields.email ? "true" : undefined}
          aria-describedby={fields.email ? "email-error" : undefined}
          onInput={(e) => setEmail((e.target as HTMLInputElement).value)}
        />
        {fieldError("email")}
        <label for="password">Password</label>
        <input
          id="password"
          data-testid="password"
          type="password"
          autocomplete={registering ? "new-password" : "current-password"}
          required
          value={password}
          aria-invalid={fields.password ? "true" : undefined}
          aria-describedby={fields.password ? "password-error" : undefined}
          onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
        />
        {fieldError("password")}
        <button type="submit" data-testid="submit" class="primary" disabled={busy}>
          {busy ? "Please wait…" : registering ? "Create account" : "Log in"}
        </button>
        <p class="auth-switch">
          {registering ? (
            <>
              Already have an account?{" "}
              <a href="/login" data-testid="login-link" onClick={(e) => onLinkClick(e, { name: "login" })}>
                Log in
              </a>
            </>
          ) : (
            <>
              New here?{" "}
              <a href="/register" data-testid="register-link" onClick={(e) => onLinkClick(e, { name: "register" })}>
                Create an account
              </a>
            </>
          )}
        </p>
      </form>
    </main>
  );
}
