import { screen, within } from "@testing-library/react";
import { Route, Routes } from "react-router-dom";

import { answering } from "../test/gateway";
import { renderAt } from "../test/render";
import { CartPage } from "./Cart";

const cart = {
  id: "c1",
  customer_id: "u1",
  status: "OPEN",
  items: [
    { sku: "MUG-1", quantity: 2, unit_price_cents: 1200 },
    { sku: "GONE-9", quantity: 1, unit_price_cents: 500 },
  ],
  total_cents: 2900,
  currency: "EUR",
};

test("a cart line shows the product's name beside its SKU, or the SKU when the catalog has none", async () => {
  localStorage.setItem("shop.cart", "c1");
  const { setToken } = await import("../api");
  setToken("x.eyJyb2xlIjoiY3VzdG9tZXIifQ.y");
  const calls = answering({
    "GET /api/carts/c1": [200, cart],
    "GET /api/products/MUG-1": [
      200,
      { sku: "MUG-1", name: "Blue mug", description: "", price_cents: 1200, currency: "EUR" },
    ],
  });
  renderAt("/cart", <Routes><Route path="/cart" element={<CartPage />} /></Routes>);
  const mug = await screen.findByRole("link", { name: /Blue mug/ });
  expect(mug).toHaveAttribute("href", "/products/MUG-1");
  expect(within(mug).getByText("MUG-1")).toHaveClass("sku");
  // the catalog answers 404 for GONE-9: its line still names it by SKU
  expect(await screen.findByRole("link", { name: "GONE-9" })).toHaveAttribute("href", "/products/GONE-9");
  expect(calls).toContain("GET /api/products/GONE-9");
  expect(screen.getByText("€29.00")).toBeInTheDocument();
});
