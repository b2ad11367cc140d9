import { useMutation, useQueryClient } from "@tanstack/react-query";
import { FormEvent, useState } from "react";
import { Link } from "react-router-dom";

import { api } from "../api";
import { Problem } from "../components";
import { useSession } from "../session";

export function AdminPage() {
  const session = useSession();
  const client = useQueryClient();
  const [product, setProduct] = useState({
    sku: "",
    name: "",
    description: "",
    price: "",
    currency: "EUR",
    stock: "10",
  });
  const [restock, setRestock] = useState({ sku: "", quantity: "10" });
  const create = useMutation({
    mutationFn: () =>
      api.createProduct({
        sku: product.sku,
        name: product.name,
        description: product.description,
        price_cents: Math.round(Number(product.price) * 100),
        currency: product.currency,
        initial_stock: Number(product.stock),
      }),
    onSuccess: () => client.invalidateQueries({ queryKey: ["products"] }),
  });
  const refill = useMutation({
    mutationFn: () => api.restock(restock.sku, Number(restock.quantity)),
    onSuccess: (stock) => client.setQueryData(["stock", stock.sku], stock),
  });
  if (!session.isAdmin) {
    return (
      <p role="alert">
        This page is for the shop's admin. <Link to="/signin">Sign in as admin</Link>
      </p>
    );
  }
  const input = (key: keyof typeof product, label: string, type = "text") => (
    <p>
      <label htmlFor={`product-${key}`}>{label}</label>
      <input
        id={`product-${key}`}
        type={type}
        required={key !== "description"}
        step={type === "number" ? "any" : undefined}
        value={product[key]}
        onChange={(e) => setProduct({ ...product, [key]: e.target.value })}
      />
    </p>
  );
  return (
    <section>
      <h1>Admin</h1>
      <form
        aria-label="add a product"
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          create.mutate();
        }}
      >
        <h2>Add a product</h2>
        {input("sku", "SKU")}
        {input("name", "Name")}
        {input("description", "Description")}
        {input("price", "Price", "number")}
        {input("currency", "Currency")}
        {input("stock", "Initial stock", "number")}
        <button type="submit" disabled={create.isPending}>
          Add product
        </button>
        {create.isSuccess && <p role="status">Added {create.data.sku}.</p>}
        <Problem error={create.error} />
      </form>
      <form
        aria-label="restock"
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          refill.mutate();
        }}
      >
        <h2>Restock</h2>
        <p>
          <label htmlFor="restock-sku">SKU</label>
          <input
            id="restock-sku"
            required
            value={restock.sku}
            onChange={(e) => setRestock({ ...restock, sku: e.target.value })}
          />
        </p>
        <p>
          <label htmlFor="restock-quantity">Quantity</label>
          <input
            id="restock-quantity"
            type="number"
            min={1}
            required
            value={restock.quantity}
            onChange={(e) => setRestock({ ...restock, quantity: e.target.value })}
          />
        </p>
        <button type="submit" disabled={refill.isPending}>
          Restock
        </button>
        {refill.isSuccess && (
          <p role="status">
            {refill.data.sku}: {refill.data.available} available
          </p>
        )}
        <Problem error={refill.error} />
      </form>
    </section>
  );
}
