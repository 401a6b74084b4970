// A page the browser brings back from its back-forward cache (Back, Forward) shows what was
// true when it was left: a story since split or renamed, a delivery since sent. Load it again.
// (Pages are also sent with Cache-Control: no-store, so a Back that is not such a restore
// asks the server too.)
addEventListener("pageshow", function (event) {
  if (event.persisted) {
    location.reload();
  }
});
