import { useMutation } from "@tanstack/react-query";
import { FormEvent, useState } from "react";
import { useNavigate } from "react-router-dom";

import { api } from "../api";
import { Problem } from "../components";
import { useSession } from "../session";

export function SignInPage() {
  const session = useSession();
  const navigate = useNavigate();
  const [mode, setMode] = useState<"signin" | "signup">("signin");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const submit = useMutation({
    mutationFn: async () => {
      if (mode === "signup") await api.register(email, password);
      return api.signIn(email, password);
    },
    onSuccess: ({ access_token }) => {
      session.signIn(email, access_token);
      navigate("/");
    },
  });
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    submit.mutate();
  };
  return (
    <section>
      <h1>{mode === "signin" ? "Sign in" : "Create an account"}</h1>
      <form onSubmit={onSubmit}>
        <p>
          <label htmlFor="email">Email</label>
          <input
            id="email"
            type="email"
            required
            autoComplete="email"
            value={email}
            onChange={(e) => setEmail(e.target.value)}
          />
        </p>
        <p>
          <label htmlFor="password">Password</label>
          <input
            id="password"
            type="password"
            required
            // length rules are sign-up's: the sandbox's own admin password is "admin"
            minLength={mode === "signup" ? 8 : undefined}
            autoComplete={mode === "signin" ? "current-password" : "new-password"}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </p>
        <button type="submit" disabled={submit.isPending}>
          {mode === "signin" ? "Sign in" : "Sign up"}
        </button>
        <Problem error={submit.error} />
      </form>
      <p>
        {mode === "signin" ? "New here? " : "Have an account? "}
        <button
          type="button"
          className="link"
          onClick={() => setMode(mode === "signin" ? "signup" : "signin")}
        >
          {mode === "signin" ? "Create an account" : "Sign in"}
        </button>
      </p>
    </section>
  );
}
