import { Link } from "react-router-dom";

import { money } from "../api";
import { Loading, ProductName, Problem, SignInFirst } from "../components";
import { useSession } from "../session";
import { useCart } from "../useCart";

export function CartPage() {
  const session = useSession();
  const { cart, setQuantity, remove } = useCart();
  if (!session.signedIn) return <SignInFirst to="see your cart" />;
  if (cart.isLoading) return <Loading what="your cart" />;
  const data = cart.data;
  if (!data || data.items.length === 0 || data.status === "CHECKED_OUT") {
    return (
      <section>
        <h1>Cart</h1>
        <p>
          Your cart is empty. <Link to="/">Browse the products</Link>
        </p>
        <Problem error={cart.error} />
      </section>
    );
  }
  return (
    <section>
      <h1>Cart</h1>
      <table>
        <caption className="visually-hidden">Items in your cart</caption>
        <thead>
          <tr>
            <th scope="col">Item</th>
            <th scope="col">Quantity</th>
            <th scope="col">Price</th>
            <th scope="col">
              <span className="visually-hidden">Remove</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {data.items.map((line) => (
            <tr key={line.sku}>
              <td>
                <Link to={`/products/${encodeURIComponent(line.sku)}`}>
                  <ProductName sku={line.sku} />
                </Link>
              </td>
              <td>
                <input
                  type="number"
                  min={1}
                  max={99}
                  aria-label={`Quantity of ${line.sku}`}
                  defaultValue={line.quantity}
                  onBlur={(e) => {
                    const quantity = Math.max(1, Number(e.target.value) || 1);
                    if (quantity !== line.quantity) setQuantity.mutate({ sku: line.sku, quantity });
                  }}
                />
              </td>
              <td>{money(line.unit_price_cents * line.quantity, data.currency)}</td>
              <td>
                <button
                  type="button"
                  aria-label={`Remove ${line.sku}`}
                  onClick={() => remove.mutate(line.sku)}
                >
                  Remove
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <p className="total">
        Total <strong>{money(data.total_cents, data.currency)}</strong>
      </p>
      <Problem error={cart.error ?? setQuantity.error ?? remove.error} />
      <Link className="button" to="/checkout">
        Check out
      </Link>
    </section>
  );
}
