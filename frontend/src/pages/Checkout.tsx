import { useMutation } from "@tanstack/react-query";
import { FormEvent, useState } from "react";
import { Link, useNavigate } from "react-router-dom";

import { Address, api, money } from "../api";
import { Problem } from "../components";
import { useSession } from "../session";
import { useCart } from "../useCart";

export const CARDS = [
  { token: "tok_visa", label: "Visa, approved" },
  { token: "tok_mastercard", label: "Mastercard, approved" },
  { token: "tok_chargeDeclined", label: "Card declined" },
  { token: "tok_chargeDeclinedInsufficientFunds", label: "Insufficient funds" },
  { token: "tok_processingError", label: "Processing error" },
];

export function CheckoutPage() {
  const session = useSession();
  const { cart } = useCart();
  const navigate = useNavigate();
  const [card, setCard] = useState("tok_visa");
  const [address, setAddress] = useState<Address>({
    name: "",
    line1: "",
    city: "",
    postal_code: "",
    country: "GB",
  });
  const checkout = useMutation({
    mutationFn: () => api.checkout(session.cartId!, card, address),
    onSuccess: ({ order_id }) => {
      session.setCartId(null);
      navigate(`/orders/${order_id}`);
    },
  });
  if (!session.signedIn || !cart.data || cart.data.items.length === 0) {
    return (
      <p>
        Nothing to check out. <Link to="/">Browse the products</Link>
      </p>
    );
  }
  const field = (key: keyof Address, label: string, autoComplete: string) => (
    <p>
      <label htmlFor={`address-${key}`}>{label}</label>
      <input
        id={`address-${key}`}
        required
        autoComplete={autoComplete}
        value={address[key]}
        onChange={(e) => setAddress({ ...address, [key]: e.target.value })}
      />
    </p>
  );
  const submit = (e: FormEvent) => {
    e.preventDefault();
    checkout.mutate();
  };
  return (
    <section>
      <h1>Checkout</h1>
      <p>
        Total <strong>{money(cart.data.total_cents, cart.data.currency)}</strong>
      </p>
      <form onSubmit={submit}>
        <fieldset>
          <legend>Test card</legend>
          {CARDS.map((c) => (
            <p key={c.token}>
              <input
                type="radio"
                id={`card-${c.token}`}
                name="card"
                value={c.token}
                checked={card === c.token}
                onChange={() => setCard(c.token)}
              />
              <label htmlFor={`card-${c.token}`}>
                {c.label} <code>{c.token}</code>
              </label>
            </p>
          ))}
        </fieldset>
        <fieldset>
          <legend>Shipping address</legend>
          {field("name", "Name", "name")}
          {field("line1", "Address", "address-line1")}
          {field("city", "City", "address-level2")}
          {field("postal_code", "Postal code", "postal-code")}
          {field("country", "Country (two letters)", "country")}
        </fieldset>
        <button type="submit" disabled={checkout.isPending}>
          Place order
        </button>
        <Problem error={checkout.error} />
      </form>
    </section>
  );
}
