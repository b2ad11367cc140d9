import { screen } from "@testing-library/react";
import { Route, Routes } from "react-router-dom";

import { calls, http, HttpResponse, server } from "../test/gateway";
import { renderAt } from "../test/render";
import { ProductPage } from "./Product";

const mug = { sku: "MUG-1", name: "Blue mug", description: "", price_cents: 1200, currency: "EUR" };
function gateway(stockAnswers: Array<[number, unknown]>) {
  server.use(
    http.get("/api/products/MUG-1", () => HttpResponse.json(mug)),
    http.get("/api/inventory/MUG-1", () => {
      const [status, body] = stockAnswers.length > 1 ? stockAnswers.shift()! : stockAnswers[0];
      return HttpResponse.json(body as object, { status });
    }),
  );
  return calls();
}

async function signedIn() {
  const { setToken } = await import("../api");
  setToken("x.eyJyb2xlIjoiY3VzdG9tZXIifQ.y");
}

const page = (
  <Routes>
    <Route path="/products/:sku" element={<ProductPage />} />
  </Routes>
);

test("a product inventory has not stocked yet says so, cannot be added, and is asked about again", async () => {
  await signedIn();
  const notYet: [number, unknown] = [404, { error: { code: "not_found", message: "stock for MUG-1 not found" } }];
  const asked = gateway([notYet, [200, { sku: "MUG-1", available: 5, reserved: 0 }]]);
  renderAt("/products/MUG-1", page);
  expect(await screen.findByText("Not stocked yet")).toBeInTheDocument();
  expect(screen.queryByText(/undefined/)).not.toBeInTheDocument();
  expect(screen.getByRole("button", { name: "Add to cart" })).toBeDisabled();
  // inventory handles ProductCreated: the page asks again and finds the stock
  expect(await screen.findByText("5 in stock", {}, { timeout: 3000 })).toBeInTheDocument();
  expect(screen.getByRole("button", { name: "Add to cart" })).toBeEnabled();
  expect(asked.filter((call) => call === "GET /api/inventory/MUG-1").length).toBe(2);
});

test("with inventory away the stock is not known, and the product can still be ordered", async () => {
  await signedIn();
  gateway([[503, { error: { code: "unavailable", message: "inventory is not answering" } }]]);
  renderAt("/products/MUG-1", page);
  expect(await screen.findByText("Stock cannot be checked right now")).toBeInTheDocument();
  expect(screen.getByRole("button", { name: "Add to cart" })).toBeEnabled();
});
