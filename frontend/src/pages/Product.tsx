import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useParams } from "react-router-dom";

import { api, money } from "../api";
import { Loading, Problem } from "../components";
import { useSession } from "../session";
import { useCart } from "../useCart";

export function ProductPage() {
  const { sku = "" } = useParams();
  const session = useSession();
  const product = useQuery({ queryKey: ["product", sku], queryFn: () => api.product(sku) });
  const stock = useQuery({ queryKey: ["stock", sku], queryFn: () => api.stock(sku) });
  const { add } = useCart();
  const [quantity, setQuantity] = useState(1);

  if (product.isPending) return <Loading what="the product" />;
  if (product.error) return <Problem error={product.error} />;
  const p = product.data;
  const available = stock.data?.available;
  const soldOut = available !== undefined && available <= 0;
  return (
    <section>
      <p>
        <Link to="/">← Products</Link>
      </p>
      <h1>{p.name}</h1>
      <p>{p.description}</p>
      <p className="price">{money(p.price_cents, p.currency)}</p>
      <p aria-live="polite" className={soldOut ? "problem" : "muted"}>
        {stock.isPending ? "Checking stock…" : soldOut ? "Out of stock" : `${available} in stock`}
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
          <button type="submit" disabled={soldOut || add.isPending}>
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
