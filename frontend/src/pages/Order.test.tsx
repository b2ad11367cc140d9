import { render, screen } from "@testing-library/react";
import { Route, Routes } from "react-router-dom";

import { http, HttpResponse, server } from "../test/gateway";
import { renderAt } from "../test/render";
import { orchestratorState } from "../api";
import { offset, OrderPage, Steps } from "./Order";

const order = (status: string, cancel_reason: string | null = null) => ({
  id: "o-1",
  customer_id: "u-1",
  status,
  cancel_reason,
  items: [{ sku: "MUG-1", quantity: 1 }],
  total_cents: 1200,
  currency: "EUR",
  created_at: "2026-11-25T10:00:00Z",
});

const sse = (text: string) => new HttpResponse(text, { headers: { "content-type": "text/event-stream" } });

test("each saga step in words, in the order they happened", () => {
  render(
    <Steps
      events={[
        { id: "2", type: "PaymentFailed", time: "2026-11-25T10:00:00.300Z" },
        { id: "1", type: "OrderCreated", time: "2026-11-25T10:00:00.100Z" },
        { id: "3", type: "StockReleased", time: "2026-11-25T10:00:00.400Z" },
      ]}
    />,
  );
  const steps = screen.getAllByRole("listitem").map((li) => li.querySelector(".step-label")?.textContent);
  expect(steps).toEqual(["Order placed", "Payment declined", "Items back in stock"]);
  // the first at its clock time, the others by how long after it they came
  const times = screen.getAllByRole("listitem").map((li) => li.querySelector("time")?.textContent);
  expect(times.slice(1)).toEqual(["+200 ms", "+300 ms"]);
  expect(times[0]).toBe(new Date("2026-11-25T10:00:00.100Z").toLocaleTimeString());
});

test("offsets of a second and more read in seconds", () => {
  expect(offset(1450)).toBe("+1.4 s");
  expect(offset(12)).toBe("+12 ms");
});

test("an order the stream's snapshot calls over is read again: its reason shows", async () => {
  // The page's first read saw the order running; by the time the stream
  // opened it was declined, and the stream has only the snapshot to say so.
  const reads = [order("PENDING"), order("CANCELLED", "payment_declined")];
  server.use(
    http.get("/api/orders/o-1/stream", () =>
      sse(`event: snapshot\ndata: ${JSON.stringify(order("CANCELLED", "payment_declined"))}\n\n`),
    ),
    http.get("/api/orders/o-1", () => HttpResponse.json(reads.length > 1 ? reads.shift() : reads[0])),
  );
  renderAt(
    "/orders/o-1",
    <Routes>
      <Route path="/orders/:id" element={<OrderPage />} />
    </Routes>,
  );
  expect(await screen.findByTestId("cancel-reason")).toHaveTextContent(/card was declined/);
  expect(screen.getByTestId("order-status")).toHaveTextContent("CANCELLED");
});

test("a read sent before the end and answered after it is read again", async () => {
  // The first read is slow: the stream shows the cancellation first, and a
  // refetch then would only join that read, which answers PENDING.
  let reads = 0;
  const cancelled = { id: "e9", type: "OrderCancelled", time: "2026-11-25T10:00:00.4Z" };
  server.use(
    http.get("/api/orders/o-1/stream", () =>
      sse(
        `event: snapshot\ndata: ${JSON.stringify(order("PENDING"))}\n\n` +
          `event: OrderCancelled\nid: e9\ndata: ${JSON.stringify(cancelled)}\n\n`,
      ),
    ),
    http.get("/api/orders/o-1", async () => {
      reads += 1;
      const first = reads === 1;
      if (first) await new Promise((resolve) => setTimeout(resolve, 300));
      return HttpResponse.json(first ? order("PENDING") : order("CANCELLED", "payment_declined"));
    }),
  );
  renderAt(
    "/orders/o-1",
    <Routes>
      <Route path="/orders/:id" element={<OrderPage />} />
    </Routes>,
  );
  expect(await screen.findByTestId("cancel-reason", {}, { timeout: 3000 })).toHaveTextContent(/card was declined/);
  expect(screen.getByTestId("order-status")).toHaveTextContent("CANCELLED");
});

test("an orchestrated order says what its orchestrator waits on, and when its timer fires", () => {
  const events = [
    { id: "1", type: "OrderCreated", time: "2026-11-25T10:00:00.000Z", sagamode: "orchestrated" },
    {
      id: "2",
      type: "ChargePayment",
      time: "2026-11-25T10:00:00.100Z",
      sagamode: "orchestrated",
      sagadeadline: "2026-11-25T10:00:30.100Z",
    },
  ];
  const now = new Date("2026-11-25T10:00:02.200Z").getTime();
  expect(orchestratorState(events, now)).toBe(
    "Orchestrator: waiting on the payment reply since 2.1 s; its timer fires in 27.9 s",
  );
  // choreographed, or over: nothing to say
  expect(orchestratorState(events.map((e) => ({ ...e, sagamode: undefined })), now)).toBeNull();
  const over = [...events, { id: "3", type: "OrderCancelled", time: "2026-11-25T10:00:30.2Z", sagamode: "orchestrated" }];
  expect(orchestratorState(over, now)).toBeNull();
  render(<Steps events={events} />);
  const labels = screen.getAllByRole("listitem").map((li) => li.querySelector(".step-label")?.textContent);
  expect(labels).toEqual(["Order placed", "Asked payment to charge the card"]);
});
