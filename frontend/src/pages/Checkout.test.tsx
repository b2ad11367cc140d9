import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes } from "react-router-dom";

import { answering, bodyOf } from "../test/gateway";
import { renderAt } from "../test/render";
import { CheckoutPage } from "./Checkout";

const cart = {
  id: "c1",
  customer_id: "u1",
  status: "OPEN",
  items: [{ sku: "MUG-1", quantity: 2, unit_price_cents: 1200 }],
  total_cents: 2400,
  currency: "EUR",
};

test("checks out with the chosen test card and address, then shows the order", async () => {
  localStorage.setItem("shop.token", "x.eyJyb2xlIjoiY3VzdG9tZXIifQ.y");
  localStorage.setItem("shop.cart", "c1");
  const { setToken } = await import("../api");
  setToken("x.eyJyb2xlIjoiY3VzdG9tZXIifQ.y");
  const calls = answering({
    "GET /api/carts/c1": [200, cart],
    "POST /api/carts/c1/checkout": [202, { order_id: "o-1" }],
  });
  renderAt(
    "/checkout",
    <Routes>
      <Route path="/checkout" element={<CheckoutPage />} />
      <Route path="/orders/:id" element={<p>order page</p>} />
    </Routes>,
  );
  expect(await screen.findByText("€24.00")).toBeInTheDocument();
  await userEvent.click(screen.getByLabelText(/Card declined/));
  await userEvent.type(screen.getByLabelText("Name"), "Ada Lovelace");
  await userEvent.type(screen.getByLabelText("Address"), "12 St James's Square");
  await userEvent.type(screen.getByLabelText("City"), "London");
  await userEvent.type(screen.getByLabelText("Postal code"), "SW1Y 4JH");
  await userEvent.click(screen.getByRole("button", { name: "Place order" }));
  expect(await screen.findByText("order page")).toBeInTheDocument();
  expect(calls).toContain("POST /api/carts/c1/checkout");
  expect(bodyOf("POST /api/carts/c1/checkout")).toMatchObject({
    payment: { card_token: "tok_chargeDeclined" },
    shipping_address: { name: "Ada Lovelace", city: "London", country: "GB" },
  });
  expect(localStorage.getItem("shop.cart")).toBeNull();
});
