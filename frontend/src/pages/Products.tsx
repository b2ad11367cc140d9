import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useSearchParams } from "react-router-dom";

import { api, money } from "../api";
import { Loading, Problem } from "../components";

export const PAGE_SIZE = 12;

export function ProductsPage() {
  const [params, setParams] = useSearchParams();
  const q = params.get("q") ?? "";
  const page = Math.max(Number(params.get("page") ?? "1") || 1, 1);
  const [typed, setTyped] = useState(q);
  const products = useQuery({
    queryKey: ["products", q, page],
    queryFn: () => api.products(q, PAGE_SIZE, (page - 1) * PAGE_SIZE),
    placeholderData: keepPreviousData,
  });
  const pages = products.data ? Math.max(Math.ceil(products.data.total / PAGE_SIZE), 1) : 1;
  const go = (next: { q?: string; page?: number }) =>
    setParams({ q: next.q ?? q, page: String(next.page ?? page) });

  return (
    <section>
      <h1>Products</h1>
      <form
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          go({ q: typed, page: 1 });
        }}
      >
        <label htmlFor="search">Search</label>
        <input
          id="search"
          type="search"
          value={typed}
          onChange={(e) => setTyped(e.target.value)}
          placeholder="mug, tea…"
        />
        <button type="submit">Search</button>
      </form>
      {products.isPending && <Loading what="products" />}
      <Problem error={products.error} />
      {products.data && products.data.items.length === 0 && (
        <p className="muted">No product matches “{q}”.</p>
      )}
      <ul className="grid" aria-label="products">
        {products.data?.items.map((p) => (
          <li key={p.sku} className="card">
            <Link to={`/products/${encodeURIComponent(p.sku)}`}>
              <strong>{p.name}</strong>
            </Link>
            <span className="price">{money(p.price_cents, p.currency)}</span>
            <span className="muted">{p.sku}</span>
          </li>
        ))}
      </ul>
      {products.data && pages > 1 && (
        <nav aria-label="pages" className="pager">
          <button type="button" disabled={page <= 1} onClick={() => go({ page: page - 1 })}>
            Previous
          </button>
          <span>
            Page {page} of {pages}
          </span>
          <button type="button" disabled={page >= pages} onClick={() => go({ page: page + 1 })}>
            Next
          </button>
        </nav>
      )}
    </section>
  );
}
