import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes } from "react-router-dom";

import { calls, http, HttpResponse, problem, server } from "./test/gateway";
import { renderAt } from "./test/render";
import { CartPage } from "./pages/Cart";
import { ProductPage } from "./pages/Product";

const mug = { sku: "MUG-1", name: "Blue mug", description: "", price_cents: 1200, currency: "EUR" };
const cart = (items: unknown[]) => ({
  id: "c2",
  customer_id: "u1",
  status: "OPEN",
  items,
  total_cents: 1200 * items.length,
  currency: "EUR",
});

test("the first add to a new cart is not undone by a read of that cart answered after it", async () => {
  localStorage.removeItem("shop.cart");
  const { setToken } = await import("./api");
  setToken("x.eyJyb2xlIjoiY3VzdG9tZXIifQ.y");
  // the gateway as a loaded machine may answer: a read of the new cart that
  // saw it empty comes back only after the add has been answered
  let added!: () => void;
  const addAnswered = new Promise<void>((resolve) => (added = resolve));
  let items: unknown[] = []; // the cart service's state
  let read!: () => void;
  const readStarted = new Promise<void>((resolve) => (read = resolve));
  server.use(
    http.get("/api/products/MUG-1", () => HttpResponse.json(mug)),
    http.get("/api/inventory/MUG-1", () => HttpResponse.json({ sku: "MUG-1", available: 5, reserved: 0 })),
    http.post("/api/carts", () => HttpResponse.json(cart([]), { status: 201 })),
    http.post("/api/carts/c2/items", async () => {
      // the add is applied after a read of the cart has begun (if one comes)
      await Promise.race([readStarted, new Promise((resolve) => setTimeout(resolve, 50))]);
      items = [{ sku: "MUG-1", quantity: 1, unit_price_cents: 1200 }];
      setTimeout(added, 20);
      return HttpResponse.json(cart(items));
    }),
    http.get("/api/carts/c2", async () => {
      read();
      const seen = HttpResponse.json(cart(items)); // what it read, answered late if it read before the add
      if (items.length === 0) {
        await addAnswered;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return seen;
    }),
    http.all("/api/*", () => problem(404, "not_found", "no")),
  );
  renderAt(
    "/products/MUG-1",
    <Routes>
      <Route path="/products/:sku" element={<ProductPage />} />
      <Route path="/cart" element={<CartPage />} />
    </Routes>,
  );
  await userEvent.click(await screen.findByRole("button", { name: "Add to cart" }));
  await userEvent.click(await screen.findByRole("link", { name: "Go to the cart" }));
  await new Promise((resolve) => setTimeout(resolve, 100)); // any late read has landed
  expect(screen.getByRole("link", { name: "Check out" })).toBeInTheDocument();
  expect(calls()).toContain("GET /api/carts/c2"); // the read that raced the add did happen
});
