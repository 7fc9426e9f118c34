// One admin sign-in for every console page: the token lives in sessionStorage (so the
// console and the softphone share it) and may come in the address's `#token=...`
// fragment (a link, or a headless test), which then leaves the address bar so it does
// not linger in history.
export const TOKEN_KEY = "phone-agent-admin-token";

function readFragment(onParams) {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.get("token")) sessionStorage.setItem(TOKEN_KEY, params.get("token"));
  onParams(params);
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  return sessionStorage.getItem(TOKEN_KEY);
}

// Wires the page's #login form and #logout button, then signs in with a token already
// given (fragment or this tab's storage) or shows the form.
export function startSignIn({ signIn, signOut, onParams = () => {} }) {
  const $ = (id) => document.getElementById(id);
  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    const token = $("token").value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    signIn(token);
  });
  $("logout").addEventListener("click", () => signOut());
  const saved = readFragment(onParams);
  if (saved) signIn(saved);
  else signOut();
}
