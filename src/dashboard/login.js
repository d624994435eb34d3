// The 401 page (no data on it). A reload of the dashboard lands here, since
// the token left the address bar once the page had it; the tab still keeps it
// in sessionStorage, so go back with it once. A token in the address bar that
// brought us here was refused: forget it, take it out of the address bar, say so.
(function () {
  var KEY = 'stated.token';
  if (new URLSearchParams(location.search).has('token')) {
    sessionStorage.removeItem(KEY);
    history.replaceState(null, '', location.pathname);
    document.getElementById('why').textContent = 'That token was refused (unknown or revoked).';
    return;
  }
  var token = sessionStorage.getItem(KEY);
  if (token) location.replace('/?token=' + encodeURIComponent(token));
})();
