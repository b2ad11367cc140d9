import { useQuery } from "@tanstack/react-query";
import { Link } from "react-router-dom";

import { api, money } from "../api";
import { Loading, Problem, SignInFirst } from "../components";
import { useSession } from "../session";

export function OrdersPage() {
  const session = useSession();
  const orders = useQuery({ queryKey: ["orders"], queryFn: api.orders, enabled: session.signedIn });
  if (!session.signedIn) return <SignInFirst to="see your orders" />;
  if (orders.isPending) return <Loading what="your orders" />;
  if (orders.error) return <Problem error={orders.error} />;
  const items = [...orders.data.items].sort((a, b) => b.created_at.localeCompare(a.created_at));
  return (
    <section>
      <h1>Your orders</h1>
      {items.length === 0 && <p className="muted">No order yet.</p>}
      <ul className="list">
        {items.map((o) => (
          <li key={o.id}>
            <Link to={`/orders/${o.id}`}>Order {o.id.slice(0, 8)}</Link> ·{" "}
            {new Date(o.created_at).toLocaleString()} · {money(o.total_cents, o.currency)} ·{" "}
            <strong>{o.status}</strong>
          </li>
        ))}
      </ul>
    </section>
  );
}
