import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes } from "react-router-dom";

import { answering } from "../test/gateway";
import { renderAt } from "../test/render";
import { ProductsPage } from "./Products";

const mug = { sku: "MUG-1", name: "Blue mug", description: "", price_cents: 1200, currency: "EUR" };

test("lists products, searches and pages", async () => {
  const calls = answering({
    "GET /api/products?q=&limit=12&offset=0": [200, { items: [mug], total: 30 }],
    "GET /api/products?q=tea&limit=12&offset=0": [200, { items: [], total: 0 }],
    "GET /api/products?q=&limit=12&offset=12": [200, { items: [{ ...mug, sku: "MUG-2", name: "Red mug" }], total: 30 }],
  });
  renderAt("/", <Routes><Route path="/" element={<ProductsPage />} /></Routes>);
  expect(await screen.findByRole("link", { name: "Blue mug" })).toBeInTheDocument();
  expect(screen.getByText("€12.00")).toBeInTheDocument();
  expect(screen.getByText("Page 1 of 3")).toBeInTheDocument();

  await userEvent.click(screen.getByRole("button", { name: "Next" }));
  expect(await screen.findByRole("link", { name: "Red mug" })).toBeInTheDocument();
  expect(calls).toContain("GET /api/products?q=&limit=12&offset=12");

  await userEvent.type(screen.getByLabelText("Search"), "tea");
  await userEvent.click(screen.getByRole("button", { name: "Search" }));
  expect(await screen.findByText(/No product matches “tea”/)).toBeInTheDocument();
});

test("a service that is down says so", async () => {
  answering({ "GET /api/products": [503, {}] });
  renderAt("/", <Routes><Route path="/" element={<ProductsPage />} /></Routes>);
  expect(await screen.findByRole("alert")).toHaveTextContent(/busy or a part of it is down/);
});
