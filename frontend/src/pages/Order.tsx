import { useQuery } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { Link, useParams } from "react-router-dom";

import { api, cancelReason, money, orchestratorState, SagaEvent, STEP_LABELS } from "../api";
import { Loading, Problem } from "../components";
import { Connection, useOrderStream } from "../useOrderStream";

const CONNECTION_TEXT: Record<Connection, string> = {
  connecting: "Connecting to the live view…",
  live: "Live",
  lost: "Connection lost, reconnecting…",
  done: "Finished",
  failed: "The live view stopped",
};

function over(status: string | undefined): boolean {
  return status === "COMPLETED" || status === "CANCELLED";
}

function time(iso: string): string {
  const when = new Date(iso);
  return Number.isNaN(when.getTime()) ? iso : when.toLocaleTimeString();
}

/** "+200 ms", "+1.4 s": how long after the saga's first step, as the TUI shows it. */
export function offset(ms: number): string {
  return ms < 1000 ? `+${Math.round(ms)} ms` : `+${(ms / 1000).toFixed(1)} s`;
}

export function Steps({ events }: { events: SagaEvent[] }) {
  const sorted = [...events].sort((a, b) => a.time.localeCompare(b.time));
  const start = sorted.length ? new Date(sorted[0].time).getTime() : NaN;
  return (
    <ol className="steps" aria-label="order steps">
      {sorted.map((event, index) => {
        const after = new Date(event.time).getTime() - start;
        // the first step at its clock time; the rest by how long after it they came
        const shown = index === 0 || Number.isNaN(after) ? time(event.time) : offset(after);
        return (
          <li key={event.id} data-event={event.type} className={`step step-${event.type}`}>
            <span className="step-label">{STEP_LABELS[event.type] ?? event.type}</span>{" "}
            <time dateTime={event.time} title={time(event.time)}>
              {shown}
            </time>
          </li>
        );
      })}
    </ol>
  );
}

/** An orchestrated order's live line: what the orchestrator waits on, and its timer. */
export function Orchestrator({ events }: { events: SagaEvent[] }) {
  const [now, setNow] = useState(() => Date.now());
  const text = orchestratorState(events, now);
  const active = text !== null; // the clock ticks only while there is something to say
  useEffect(() => {
    if (!active) return;
    const tick = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(tick);
  }, [active]);
  if (text === null) return null;
  return (
    <p className="muted" data-testid="orchestrator">
      {text}
    </p>
  );
}

export function OrderPage() {
  const { id = "" } = useParams();
  const stream = useOrderStream(id);
  // over: its terminal event came live, or the stream's snapshot already says so
  // (an order declined before the page opened; the page's first read is older)
  const ended =
    stream.events.some((e) => e.type === "OrderCompleted" || e.type === "OrderCancelled") ||
    over(stream.order?.status);
  const order = useQuery({
    queryKey: ["order", id],
    queryFn: () => api.order(id),
    // The read that answers after the end may have been sent before it (a
    // refetch while the first read is in flight joins that read): read
    // again until the order says what the stream said.
    refetchInterval: (query) => (ended && !over(query.state.data?.status) ? 250 : false),
  });
  const { refetch } = order;
  useEffect(() => {
    if (ended) void refetch(); // the final status and the reason in words
  }, [ended, refetch]);

  const current = order.data ?? stream.order;
  if (!current && (order.isPending || stream.connection === "connecting")) {
    return <Loading what="your order" />;
  }
  if (!current) return <Problem error={order.error ?? new Error(stream.problem ?? "")} />;
  const status = ended && order.data?.status !== current.status ? "…" : current.status;
  return (
    <section>
      <h1>Order {current.id.slice(0, 8)}</h1>
      <p>
        Status: <strong data-testid="order-status">{status}</strong> ·{" "}
        {money(current.total_cents, current.currency)}
      </p>
      {current.status === "CANCELLED" && (
        <p role="alert" className="problem" data-testid="cancel-reason">
          {cancelReason(current.cancel_reason)}
        </p>
      )}
      {current.status === "COMPLETED" && (
        <p role="status" className="ok">
          Thank you. Your order is on its way.
        </p>
      )}
      <p aria-live="polite" className={stream.connection === "lost" ? "problem" : "muted"}>
        {CONNECTION_TEXT[stream.connection]}
        {stream.problem ? `: ${stream.problem}` : ""}
      </p>
      <Steps events={stream.events} />
      <Orchestrator events={stream.events} />
      <p>
        <Link to="/orders">All your orders</Link>
      </p>
    </section>
  );
}
