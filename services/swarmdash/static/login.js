// The sign-in form: a link from `swarmdash token` carries the token after "#" (never sent
// to a server, so never in a log); an older link carries it in "?token=". Either is moved
// into the form and removed from the address bar. Signing in takes a click: a page never
// signs its visitor in by itself, so a link cannot sign someone in as another viewer.
"use strict";

(() => {
  const field = document.getElementById("token");
  const fromHash = new URLSearchParams(window.location.hash.slice(1)).get("token");
  const fromQuery = new URLSearchParams(window.location.search).get("token");
  const token = fromHash || fromQuery;
  if (token) {
    field.value = token;
    window.history.replaceState(null, "", window.location.pathname);
  }
  field.focus();
})();
