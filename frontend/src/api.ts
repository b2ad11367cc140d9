// The gateway's API (../shared/API.md), every answer checked by a zod schema
// so a contract drift shows as one clear error, not as undefined on screen.
import { z } from "zod";

export const Product = z.object({
  sku: z.string(),
  name: z.string(),
  description: z.string(),
  price_cents: z.number().int(),
  currency: z.string(),
});
export type Product = z.infer<typeof Product>;

export const ProductPage = z.object({ items: z.array(Product), total: z.number().int() });
export type ProductPage = z.infer<typeof ProductPage>;

export const Stock = z.object({
  sku: z.string(),
  available: z.number().int(),
  reserved: z.number().int(),
});
export type Stock = z.infer<typeof Stock>;

export const CartLine = z.object({
  sku: z.string(),
  quantity: z.number().int(),
  unit_price_cents: z.number().int(),
});
export const Cart = z.object({
  id: z.string(),
  customer_id: z.string(),
  status: z.enum(["OPEN", "CHECKED_OUT"]),
  items: z.array(CartLine),
  total_cents: z.number().int(),
  currency: z.string().nullable().optional(),
});
export type Cart = z.infer<typeof Cart>;

export const OrderStatus = z.enum(["PENDING", "STOCK_RESERVED", "PAID", "COMPLETED", "CANCELLED"]);
export const Order = z.object({
  id: z.string(),
  customer_id: z.string(),
  status: OrderStatus,
  cancel_reason: z.string().nullable().optional(),
  items: z.array(z.object({ sku: z.string(), quantity: z.number().int() }).passthrough()),
  total_cents: z.number().int(),
  currency: z.string(),
  created_at: z.string(),
  updated_at: z.string().optional(),
});
export type Order = z.infer<typeof Order>;
export const OrderList = z.object({ items: z.array(Order) });

export const Token = z.object({ access_token: z.string(), expires_in: z.number().optional() });
export const Registered = z.object({ customer_id: z.string() });
export const CheckoutAccepted = z.object({ order_id: z.string() });

export const SagaEvent = z
  .object({
    id: z.string(),
    type: z.string(),
    source: z.string().optional(),
    time: z.string(),
    data: z.record(z.unknown()).optional(),
    // an orchestrated order's messages; a command's timer (docs/saga.md)
    sagamode: z.string().optional(),
    sagadeadline: z.string().optional(),
  })
  .passthrough();
export type SagaEvent = z.infer<typeof SagaEvent>;

const ErrorBody = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

/** An answer that is not what was asked for: its status and the gateway's words. */
export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message);
  }
  get unavailable(): boolean {
    return this.status === 503 || this.status === 0;
  }
}

let token: string | null = localStorage.getItem("shop.token");
export function currentToken(): string | null {
  return token;
}
export function setToken(value: string | null): void {
  token = value;
  if (value) localStorage.setItem("shop.token", value);
  else localStorage.removeItem("shop.token");
}

export async function call<T>(
  schema: z.ZodType<T>,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let answer: Response;
  try {
    answer = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network", "The shop cannot be reached. Check your connection.");
  }
  const text = await answer.text();
  const json: unknown = text ? safeJson(text) : undefined;
  if (!answer.ok) {
    const parsed = ErrorBody.safeParse(json);
    if (answer.status === 503) {
      throw new ApiError(503, "unavailable", "The shop is busy or a part of it is down. Try again in a moment.");
    }
    if (parsed.success) throw new ApiError(answer.status, parsed.data.error.code, parsed.data.error.message);
    throw new ApiError(answer.status, "http", `The shop answered ${answer.status}.`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw new ApiError(500, "contract", `Unexpected answer from ${path}: ${parsed.error.issues[0]?.message}`);
  }
  return parsed.data;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export const api = {
  products: (q: string, limit: number, offset: number) =>
    call(
      ProductPage,
      "GET",
      `/api/products?${new URLSearchParams({ q, limit: String(limit), offset: String(offset) })}`,
    ),
  product: (sku: string) => call(Product, "GET", `/api/products/${encodeURIComponent(sku)}`),
  stock: (sku: string) => call(Stock, "GET", `/api/inventory/${encodeURIComponent(sku)}`),
  register: (email: string, password: string) =>
    call(Registered, "POST", "/api/auth/register", { email, password }),
  signIn: (email: string, password: string) =>
    call(Token, "POST", "/api/auth/token", { email, password }),
  newCart: () => call(Cart, "POST", "/api/carts"),
  cart: (id: string) => call(Cart, "GET", `/api/carts/${id}`),
  addItem: (id: string, sku: string, quantity: number) =>
    call(Cart, "POST", `/api/carts/${id}/items`, { sku, quantity }),
  setQuantity: (id: string, sku: string, quantity: number) =>
    call(Cart, "PUT", `/api/carts/${id}/items/${encodeURIComponent(sku)}`, { quantity }),
  removeItem: (id: string, sku: string) =>
    call(Cart, "DELETE", `/api/carts/${id}/items/${encodeURIComponent(sku)}`),
  checkout: (id: string, cardToken: string, address: Address) =>
    call(CheckoutAccepted, "POST", `/api/carts/${id}/checkout`, {
      payment: { card_token: cardToken },
      shipping_address: address,
    }),
  order: (id: string) => call(Order, "GET", `/api/orders/${id}`),
  orders: () => call(OrderList, "GET", "/api/orders"),
  createProduct: (product: Product & { initial_stock: number }) =>
    call(Product, "POST", "/api/products", product),
  restock: (sku: string, quantity: number) =>
    call(Stock, "POST", `/api/inventory/${encodeURIComponent(sku)}/restock`, { quantity }),
};

export interface Address {
  name: string;
  line1: string;
  city: string;
  postal_code: string;
  country: string;
}

export function money(cents: number, currency: string | null | undefined): string {
  try {
    return new Intl.NumberFormat("en-GB", { style: "currency", currency: currency ?? "EUR" }).format(
      cents / 100,
    );
  } catch {
    return `${(cents / 100).toFixed(2)} ${currency ?? ""}`;
  }
}

/** A cancel reason in plain words. */
export function cancelReason(reason: string | null | undefined): string {
  switch (reason) {
    case "out_of_stock":
      return "Some items ran out of stock. Nothing was charged and the stock is back on the shelf.";
    case "payment_declined":
      return "Your card was declined. Nothing was charged and the items are back in stock.";
    case "timeout":
      return "The order could not be finished in time. Any charge has been refunded.";
    default:
      return reason ? `The order was cancelled (${reason}).` : "The order was cancelled.";
  }
}

/** What each saga event means to a customer. */
export const STEP_LABELS: Record<string, string> = {
  CartCheckedOut: "Checked out",
  OrderCreated: "Order placed",
  StockReserved: "Items reserved",
  StockReservationFailed: "Items out of stock",
  PaymentSucceeded: "Payment accepted",
  PaymentFailed: "Payment declined",
  ShippingCreated: "Shipment created",
  OrderCompleted: "Order completed",
  OrderCancelled: "Order cancelled",
  StockReleased: "Items back in stock",
  PaymentRefunded: "Payment refunded",
  // an orchestrated order: the orchestrator's commands (docs/saga.md)
  ReserveStock: "Asked inventory to reserve the items",
  ChargePayment: "Asked payment to charge the card",
  CreateShipment: "Asked shipping to ship",
  ShipStock: "Told inventory the items left",
  ReleaseStock: "Asked inventory to put the items back",
  RefundPayment: "Asked payment to refund",
  CancelShipment: "Asked shipping to cancel",
  SagaStepCompensated: "A step undone",
};

/** Who answers each of the orchestrator's commands. */
const ANSWERED_BY: Record<string, string> = {
  ReserveStock: "inventory",
  ChargePayment: "payment",
  CreateShipment: "shipping",
  ReleaseStock: "inventory",
  RefundPayment: "payment",
  CancelShipment: "shipping",
};

/**
 * An orchestrated order's state, as the TUI and `shopctl why` say it:
 * "Orchestrator: waiting on the payment reply since 2.1 s; its timer fires
 * in 27.9 s". Null for a choreographed order, or one that is over.
 */
export function orchestratorState(events: SagaEvent[], now: number): string | null {
  if (!events.some((e) => e.sagamode === "orchestrated")) return null;
  if (events.some((e) => e.type === "OrderCompleted" || e.type === "OrderCancelled")) return null;
  const last = [...events].sort((a, b) => a.time.localeCompare(b.time)).at(-1);
  if (!last) return null;
  const since = ((now - new Date(last.time).getTime()) / 1000).toFixed(1);
  const participant = ANSWERED_BY[last.type];
  let text = participant
    ? `Orchestrator: waiting on the ${participant} reply since ${since} s`
    : `Orchestrator: deciding the next step (after ${last.type}, ${since} s)`;
  if (participant && typeof last.sagadeadline === "string") {
    const left = (new Date(last.sagadeadline).getTime() - now) / 1000;
    text += left >= 0 ? `; its timer fires in ${left.toFixed(1)} s` : "; its timer fired";
  }
  return text;
}
