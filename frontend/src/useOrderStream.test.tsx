import { renderHook, waitFor } from "@testing-library/react";

import { calls, http, HttpResponse, server } from "./test/gateway";
import { useOrderStream } from "./useOrderStream";

const order = (status: string) => ({
  id: "o-1",
  customer_id: "u-1",
  status,
  cancel_reason: null,
  items: [{ sku: "MUG-1", quantity: 1 }],
  total_cents: 1200,
  currency: "EUR",
  created_at: "2026-11-25T10:00:00Z",
});

const sse = (text: string) => new HttpResponse(text, { headers: { "content-type": "text/event-stream" } });

test("a stream cut before the end reconnects and finishes from a fresh snapshot", async () => {
  const answers = [
    // the first connection: a snapshot, one step, then the connection is lost
    sse(
      `event: snapshot\ndata: ${JSON.stringify(order("PENDING"))}\n\n` +
        `event: StockReserved\nid: e1\ndata: ${JSON.stringify({ id: "e1", type: "StockReserved", time: "2026-11-25T10:00:00.1Z" })}\n\n`,
    ),
    // the second: the order moved on meanwhile; it completes
    sse(
      `event: snapshot\ndata: ${JSON.stringify(order("PAID"))}\n\n` +
        `event: OrderCompleted\nid: e3\ndata: ${JSON.stringify({ id: "e3", type: "OrderCompleted", time: "2026-11-25T10:00:00.3Z" })}\n\n`,
    ),
  ];
  server.use(http.get("/api/orders/o-1/stream", () => answers.shift() ?? new HttpResponse("", { status: 500 })));

  const { result } = renderHook(() => useOrderStream("o-1", 10));
  await waitFor(() => expect(result.current.connection).toBe("done"), { timeout: 3000 });
  expect(calls()).toEqual(["GET /api/orders/o-1/stream", "GET /api/orders/o-1/stream"]);
  expect(result.current.order?.status).toBe("PAID");
  expect(result.current.events.map((e) => e.type)).toEqual(["StockReserved", "OrderCompleted"]);
});

test("an order that is not the customer's stops with one sentence", async () => {
  server.use(http.get("/api/orders/o-2/stream", () => HttpResponse.json({}, { status: 404 })));
  const { result } = renderHook(() => useOrderStream("o-2", 10));
  await waitFor(() => expect(result.current.connection).toBe("failed"));
  expect(result.current.problem).toBe("This order does not exist.");
  expect(calls()).toEqual(["GET /api/orders/o-2/stream"]);
});
