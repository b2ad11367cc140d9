import { Link } from "react-router-dom";

import { ApiError } from "./api";

/** One clear sentence for what went wrong, with what to do about it. */
export function Problem({ error }: { error: unknown }) {
  if (!error) return null;
  let text = "Something went wrong.";
  if (error instanceof ApiError) {
    text = error.message;
    if (error.status === 401) {
      return (
        <p role="alert" className="problem">
          Please <Link to="/signin">sign in</Link> first.
        </p>
      );
    }
  } else if (error instanceof Error) {
    text = error.message;
  }
  return (
    <p role="alert" className="problem">
      {text}
    </p>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p role="status" aria-live="polite" className="muted">
      Loading {what}…
    </p>
  );
}

/** What a signed-out visitor sees where an account is needed. */
export function SignInFirst({ to }: { to: string }) {
  return (
    <p>
      <Link to="/signin">Sign in</Link> to {to}.
    </p>
  );
}
