// The order's saga live, from the gateway's SSE stream. fetch-event-source
// (not EventSource) because the stream needs the Authorization header; it
// reconnects after a lost connection, and each new connection starts with a
// snapshot of the order, so nothing stays wrong for long.
import { EventStreamContentType, fetchEventSource } from "@microsoft/fetch-event-source";
import { useEffect, useState } from "react";

import { currentToken, Order, SagaEvent } from "./api";

export type Connection = "connecting" | "live" | "lost" | "done" | "failed";

const TERMINAL = new Set(["OrderCompleted", "OrderCancelled"]);

class Fatal extends Error {}
class Retry extends Error {}

export interface OrderStream {
  order: Order | null;
  events: SagaEvent[];
  connection: Connection;
  problem: string | null;
}

export function useOrderStream(orderId: string, retryMs = 1000): OrderStream {
  const [order, setOrder] = useState<Order | null>(null);
  const [events, setEvents] = useState<SagaEvent[]>([]);
  const [connection, setConnection] = useState<Connection>("connecting");
  const [problem, setProblem] = useState<string | null>(null);

  useEffect(() => {
    const control = new AbortController();
    let over = false;
    const token = currentToken();
    void fetchEventSource(`/api/orders/${orderId}/stream`, {
      headers: token ? { Authorization: `Bearer ${token}` } : {},
      signal: control.signal,
      openWhenHidden: true,
      async onopen(answer) {
        const type = answer.headers.get("content-type") ?? "";
        if (answer.ok && type.startsWith(EventStreamContentType)) {
          setConnection("live");
          setProblem(null);
          return;
        }
        if (answer.status >= 400 && answer.status < 500 && answer.status !== 429) {
          throw new Fatal(answer.status === 404 ? "This order does not exist." : `The shop answered ${answer.status}.`);
        }
        throw new Retry();
      },
      onmessage(message) {
        if (message.event === "snapshot") {
          const parsed = Order.safeParse(JSON.parse(message.data));
          if (parsed.success) {
            setOrder(parsed.data);
            if (parsed.data.status === "COMPLETED" || parsed.data.status === "CANCELLED") over = true;
          }
          return;
        }
        const parsed = SagaEvent.safeParse(JSON.parse(message.data));
        if (!parsed.success) return;
        const event = parsed.data;
        setEvents((seen) => (seen.some((e) => e.id === event.id) ? seen : [...seen, event]));
        if (TERMINAL.has(event.type)) over = true;
      },
      onclose() {
        if (over) {
          setConnection("done");
          control.abort();
          return;
        }
        throw new Retry(); // closed before the end: connect again
      },
      onerror(error) {
        if (error instanceof Fatal) {
          setConnection("failed");
          setProblem(error.message);
          throw error; // stops retrying
        }
        setConnection("lost");
        return retryMs;
      },
    }).catch(() => undefined);
    return () => control.abort();
  }, [orderId, retryMs]);

  return { order, events, connection, problem };
}
