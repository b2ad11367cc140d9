import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useParams } from "react-router-dom";

import { api, ApiError, money } from "../api";
import { Loading, Problem } from "../components";
import { useSession } from "../session";
import { useCart } from "../useCart";

export function ProductPage() {
  const { sku = "" } = useParams();
  const session = useSession();
  const product = useQuery({ queryKey: ["product", sku], queryFn: () => api.product(sku) });
  const stock = useQuery({
    queryKey: ["stock", sku],
    queryFn: () => api.stock(sku),
    staleTime: 0, // every order moves it: asked again on every visit
    // a product just added has no stock until inventory has handled its
    // ProductCreated: ask again until it has
    refetchInterval: (query) => (notYet(query.state.error) ? 1000 : false),
  });
  const { add } = useCart();
  const [quantity, setQuantity] = useState(1);

  if (product.isPending) return <Loading what="the product" />;
  if (product.error) return <Problem error={product.error} />;
  const p = product.data;
  const available = stock.data?.available;
  const soldOut = available !== undefined && available <= 0;
  // not stocked yet: nothing to sell. Inventory away: the order can still be
  // placed, and the saga reserves the stock when inventory is back.
  const unstocked = available === undefined && notYet(stock.error);
  return (
    <section>
      <p>
        <Link to="/">← Products</Link>
      </p>
      <h1>{p.name}</h1>
      <p>{p.description}</p>
      <p className="price">{money(p.price_cents, p.currency)}</p>
      <p
        aria-live="polite"
        aria-busy={stock.isFetching}
        data-testid="stock"
        className={soldOut ? "problem" : "muted"}
      >
        {stockText(stock.isPending, stock.error, available)}
      </p>
      {session.signedIn ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            add.mutate({ sku: p.sku, quantity });
          }}
        >
          <label htmlFor="quantity">Quantity</label>
          <input
            id="quantity"
            type="number"
            min={1}
            max={99}
            value={quantity}
            onChange={(e) => setQuantity(Math.max(1, Number(e.target.value) || 1))}
          />
          <button type="submit" disabled={soldOut || unstocked || add.isPending}>
            Add to cart
          </button>
          {add.isSuccess && (
            <p role="status">
              Added. <Link to="/cart">Go to the cart</Link>
            </p>
          )}
          <Problem error={add.error} />
        </form>
      ) : (
        <p>
          <Link to="/signin">Sign in</Link> to buy.
        </p>
      )}
    </section>
  );
}

function notYet(error: unknown): boolean {
  return error instanceof ApiError && error.status === 404;
}

function stockText(pending: boolean, error: unknown, available: number | undefined): string {
  if (available !== undefined) return available > 0 ? `${available} in stock` : "Out of stock";
  if (pending) return "Checking stock…";
  if (notYet(error)) return "Not stocked yet";
  return "Stock cannot be checked right now";
}
