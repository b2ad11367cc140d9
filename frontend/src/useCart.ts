// The customer's open cart: made on the first add, kept by id.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { api, ApiError, Cart } from "./api";
import { useSession } from "./session";

export function useCart() {
  const session = useSession();
  const client = useQueryClient();
  const cart = useQuery({
    queryKey: ["cart", session.cartId],
    queryFn: async () => {
      try {
        return await api.cart(session.cartId!);
      } catch (error) {
        if (error instanceof ApiError && (error.status === 404 || error.status === 403)) {
          session.setCartId(null); // gone, or someone else's: start a new one
          return null;
        }
        throw error;
      }
    },
    enabled: session.signedIn && session.cartId !== null,
  });
  // A read of the cart still in flight when a change is answered may have
  // seen the cart before it: cancelled, it cannot land after the change and
  // undo it on screen. A read started later sees the change.
  const put = async (next: Cart) => {
    await client.cancelQueries({ queryKey: ["cart", next.id] });
    client.setQueryData(["cart", next.id], next);
  };

  const add = useMutation({
    mutationFn: async ({ sku, quantity }: { sku: string; quantity: number }) => {
      let id = session.cartId;
      if (!id || cart.data?.status === "CHECKED_OUT") {
        const made = await api.newCart();
        id = made.id;
        await put(made);
        session.setCartId(id); // kept even when the add below fails
      }
      return api.addItem(id, sku, quantity);
    },
    onSuccess: put,
  });
  const setQuantity = useMutation({
    mutationFn: ({ sku, quantity }: { sku: string; quantity: number }) =>
      api.setQuantity(session.cartId!, sku, quantity),
    onSuccess: put,
  });
  const remove = useMutation({
    mutationFn: (sku: string) => api.removeItem(session.cartId!, sku),
    onSuccess: put,
  });
  return { cart, add, setQuantity, remove };
}
