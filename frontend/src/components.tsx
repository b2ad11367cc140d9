import { useQuery } from "@tanstack/react-query";
import { Link } from "react-router-dom";

import { ApiError, api } from "./api";

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

/** A product's name with its SKU beside it; the SKU alone until the name
 * comes, or when the catalog cannot give it. Shares the product page's query. */
export function ProductName({ sku }: { sku: string }) {
  const product = useQuery({
    queryKey: ["product", sku],
    queryFn: () => api.product(sku),
    staleTime: 5 * 60_000,
  });
  if (!product.data) return <>{sku}</>;
  return (
    <>
      {product.data.name} <span className="muted sku">{sku}</span>
    </>
  );
}
