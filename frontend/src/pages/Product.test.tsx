import { screen } from "@testing-library/react";
import { Route, Routes } from "react-router-dom";

import { renderAt } from "../test/render";
import { ProductPage } from "./Product";

afterEach(() => vi.unstubAllGlobals());

const mug = { sku: "MUG-1", name: "Blue mug", description: "", price_cents: 1200, currency: "EUR" };
const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

function gateway(stockAnswers: Array<[number, unknown]>) {
  const asked: string[] = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: RequestInfo | URL) => {
      const url = String(input);
      asked.push(url);
      if (url === "/api/products/MUG-1") return json(200, mug);
      if (url === "/api/inventory/MUG-1") {
        const [status, body] = stockAnswers.length > 1 ? stockAnswers.shift()! : stockAnswers[0];
        return json(status, body);
      }
      return json(404, { error: { code: "not_found", message: "no" } });
    }),
  );
  return asked;
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
  expect(asked.filter((url) => url === "/api/inventory/MUG-1").length).toBe(2);
});

test("with inventory away the stock is not known, and the product can still be ordered", async () => {
  await signedIn();
  gateway([[503, { error: { code: "unavailable", message: "inventory is not answering" } }]]);
  renderAt("/products/MUG-1", page);
  expect(await screen.findByText("Stock cannot be checked right now")).toBeInTheDocument();
  expect(screen.getByRole("button", { name: "Add to cart" })).toBeEnabled();
});
