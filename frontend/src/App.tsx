import { Link, NavLink, Route, Routes, useNavigate } from "react-router-dom";

import { SessionProvider, useSession } from "./session";
import { AdminPage } from "./pages/Admin";
import { CartPage } from "./pages/Cart";
import { CheckoutPage } from "./pages/Checkout";
import { OrderPage } from "./pages/Order";
import { OrdersPage } from "./pages/Orders";
import { ProductPage } from "./pages/Product";
import { ProductsPage } from "./pages/Products";
import { SignInPage } from "./pages/SignIn";

function Navigation() {
  const session = useSession();
  const navigate = useNavigate();
  return (
    <header className="top">
      <Link to="/" className="brand">
        shop
      </Link>
      <nav aria-label="main">
        <NavLink to="/">Products</NavLink>
        <NavLink to="/cart">Cart</NavLink>
        {session.signedIn && <NavLink to="/orders">Orders</NavLink>}
        {session.isAdmin && <NavLink to="/admin">Admin</NavLink>}
        {session.signedIn ? (
          <button
            type="button"
            className="link"
            onClick={() => {
              session.signOut();
              navigate("/");
            }}
          >
            Sign out {session.email ? `(${session.email})` : ""}
          </button>
        ) : (
          <NavLink to="/signin">Sign in</NavLink>
        )}
      </nav>
    </header>
  );
}

export function App() {
  return (
    <SessionProvider>
      <Navigation />
      <main>
        <Routes>
          <Route path="/" element={<ProductsPage />} />
          <Route path="/products/:sku" element={<ProductPage />} />
          <Route path="/cart" element={<CartPage />} />
          <Route path="/checkout" element={<CheckoutPage />} />
          <Route path="/orders" element={<OrdersPage />} />
          <Route path="/orders/:id" element={<OrderPage />} />
          <Route path="/signin" element={<SignInPage />} />
          <Route path="/admin" element={<AdminPage />} />
          <Route path="*" element={<p role="alert">No such page. <Link to="/">Back to the products</Link></p>} />
        </Routes>
      </main>
    </SessionProvider>
  );
}
