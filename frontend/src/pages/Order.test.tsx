import { render, screen } from "@testing-library/react";

import { Steps } from "./Order";

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
});
